#include "fleet_api/client.hpp"

#include <fmt/format.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <stdexcept>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "fleet_api/responses.hpp"
#include "signal/vin.hpp"

namespace ts::fleet_api {

namespace {

using Clock = std::chrono::system_clock;
constexpr std::string_view kTokenPath = "/oauth2/v3/token";
constexpr int kMaxVehiclePages = 100;
constexpr std::chrono::seconds kWarnEvery{10};

bool unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// Percent-encoding for form bodies and query values; `keep` lists extra characters sent as is.
std::string encode(std::string_view text, std::string_view keep = {}) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (unreserved(c) || keep.find(c) != std::string_view::npos) {
      out += c;
    } else {
      auto b = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[b >> 4];
      out += kHex[b & 15];
    }
  }
  return out;
}

// A VIN (or the numeric id the API also accepts) that can go into a path as is: the one rule
// of signal/vin.hpp, shared with the API routes and TESLASYNC_VEHICLES.
using signal::valid_vin;

Error invalid_vin(std::string_view vin) {
  return Error(errc::invalid_request,
               "'" + std::string(vin.substr(0, 40)) + "' is not a VIN (" + std::string(signal::kVinRule) + ")");
}

std::string vins_json(const std::vector<std::string>& vins) {
  boost::json::array a;
  for (const auto& v : vins) a.emplace_back(v);
  return boost::json::serialize(a);
}

std::string status_class(const Result<HttpResponse>& r) {
  if (!r) return "network";
  return std::to_string(r->status / 100) + "xx";
}

bool success(unsigned status) { return status >= 200 && status < 300; }

}  // namespace

struct Client::Metrics {
  std::unique_ptr<core::MetricsRegistry> own;  // when the caller gave none
  core::Family<core::Counter>& requests;
  core::Family<core::Counter>& rate_limited;
  core::Family<core::Counter>& vehicle_unavailable;
  core::Family<core::Counter>& token_refreshes;
  core::Family<core::Counter>& unauthorized_retries;

  explicit Metrics(core::MetricsRegistry& m, std::unique_ptr<core::MetricsRegistry> owned = {})
      : own(std::move(owned)),
        requests(m.counter("teslasync_fleet_api_requests_total",
                           "Fleet API requests by endpoint and status class (2xx, 4xx, 5xx, "
                           "network = no response).",
                           {"endpoint", "status"})),
        rate_limited(m.counter("teslasync_fleet_api_rate_limited_total",
                               "Fleet API responses 429 (rate limited), by endpoint.",
                               {"endpoint"})),
        vehicle_unavailable(m.counter("teslasync_fleet_api_vehicle_unavailable_total",
                                      "Fleet API responses 408/504: the car sleeps or is offline "
                                      "(it was not woken).",
                                      {"endpoint"})),
        token_refreshes(m.counter("teslasync_fleet_api_token_refreshes_total",
                                  "Token requests: kind partner (client credentials) or user "
                                  "(refresh token); result ok or failed.",
                                  {"kind", "result"})),
        unauthorized_retries(m.counter("teslasync_fleet_api_unauthorized_retries_total",
                                       "Requests answered 401 and retried once with a new token.",
                                       {"endpoint"})) {}
};

Client::Client(ClientOptions options) : options_(std::move(options)) {
  if (options_.base_url.empty()) throw std::invalid_argument("base URL: must be set");
  if (options_.client_id.empty()) throw std::invalid_argument("client id: must be set");
  if (options_.auth_url.empty()) options_.auth_url = std::string(kTeslaAuthUrl);
  if (options_.audience.empty()) options_.audience = options_.base_url;
  auto transport = [&](const std::string& url, const char* what) {
    TransportOptions t;
    t.base_url = url;
    t.ca_file = options_.ca_file;
    t.allow_insecure_http = options_.allow_insecure_http;
    t.connect_timeout = options_.connect_timeout;
    t.user_agent = options_.user_agent;
    try {
      return std::make_unique<HttpTransport>(std::move(t));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string(what) + " " + e.what());
    }
  };
  api_ = transport(options_.base_url, "Fleet API");
  auth_ = transport(options_.auth_url, "auth");
  if (options_.metrics != nullptr) {
    metrics_ = std::make_unique<Metrics>(*options_.metrics);
  } else {
    auto own = std::make_unique<core::MetricsRegistry>();
    auto& registry = *own;
    metrics_ = std::make_unique<Metrics>(registry, std::move(own));
  }
  user_.access_token = options_.user_access_token;
  user_.refresh_token = options_.user_refresh_token;
  user_.expires_at = options_.user_access_expires_at;
  // A token given without an expiry is used until the API answers 401.
  if (!user_.access_token.empty() && user_.expires_at == Clock::time_point{}) {
    user_.expires_at = Clock::time_point::max();
  }
}

Client::~Client() = default;

void Client::warn(std::string_view what, const std::string& text) {
  auto log = ts::log::get("fleet_api");
  const auto now = std::chrono::steady_clock::now();
  unsigned suppressed = 0;
  {
    std::lock_guard lock(warn_mutex_);
    if (last_warn_.time_since_epoch().count() != 0 && now - last_warn_ < kWarnEvery) {
      ++suppressed_warnings_;
      log->debug("{}: {}", what, text);
      return;
    }
    last_warn_ = now;
    suppressed = std::exchange(suppressed_warnings_, 0);
  }
  if (suppressed > 0) {
    log->warn("{}: {} ({} similar warning(s) suppressed)", what, text, suppressed);
  } else {
    log->warn("{}: {}", what, text);
  }
}

void Client::count(std::string_view endpoint, const Result<HttpResponse>& r) {
  metrics_->requests.with({std::string(endpoint), status_class(r)}).inc();
}

Result<HttpResponse> Client::token_request(std::string_view grant, std::string form) {
  HttpRequest req;
  req.method = "POST";
  req.target = std::string(kTokenPath);
  req.content_type = "application/x-www-form-urlencoded";
  req.body = std::move(form);
  auto r = auth_->send(req, options_.request_timeout);
  count("token", r);
  if (!r) return r.error();
  if (!success(r->status)) {
    Error e = error_from_response(r->status, r->body, r->header("Retry-After"), Clock::now());
    // The token endpoint says 400/401 (invalid_grant, invalid_client) for bad credentials.
    if (r->status == 400 || r->status == 401 || r->status == 403) {
      e.code = make_error_code(errc::unauthorized);
    }
    if (e.is(errc::rate_limited)) metrics_->rate_limited.with({"token"}).inc();
    e.message = std::string(grant) + " token request refused: " + e.message;
    return e;
  }
  return r;
}

Result<Token> Client::fetch_partner_token_locked() {
  if (options_.client_secret.empty()) {
    return Error(errc::unauthorized, "no client secret configured: cannot get a partner token");
  }
  std::string form = "grant_type=client_credentials&client_id=" + encode(options_.client_id) +
                     "&client_secret=" + encode(options_.client_secret) +
                     "&scope=" + encode(options_.scope) + "&audience=" + encode(options_.audience);
  auto r = token_request("partner", std::move(form));
  Result<Token> token = r ? parse_token_response(r->body, Clock::now()) : Result<Token>(r.error());
  if (!token) {
    metrics_->token_refreshes.with({"partner", "failed"}).inc();
    warn("fleet API partner token", token.error().describe());
    return token;
  }
  metrics_->token_refreshes.with({"partner", "ok"}).inc();
  partner_ = *token;
  ts::log::get("fleet_api")
      ->info("got a partner token (expires in {} s)",
             std::chrono::duration_cast<std::chrono::seconds>(partner_.expires_at - Clock::now())
                 .count());
  return token;
}

Result<Token> Client::refresh_user_token_locked() {
  if (user_.refresh_token.empty()) {
    return Error(errc::unauthorized,
                 "no user refresh token configured: vehicle endpoints need a user token");
  }
  std::string form = "grant_type=refresh_token&client_id=" + encode(options_.client_id) +
                     "&refresh_token=" + encode(user_.refresh_token);
  auto r = token_request("user", std::move(form));
  Result<Token> token = r ? parse_token_response(r->body, Clock::now()) : Result<Token>(r.error());
  if (!token) {
    metrics_->token_refreshes.with({"user", "failed"}).inc();
    warn("fleet API user token refresh", token.error().describe());
    return token;
  }
  metrics_->token_refreshes.with({"user", "ok"}).inc();
  if (token->refresh_token.empty()) token->refresh_token = user_.refresh_token;  // not rotated
  user_ = *token;
  ts::log::get("fleet_api")
      ->info("refreshed the user token (expires in {} s)",
             std::chrono::duration_cast<std::chrono::seconds>(user_.expires_at - Clock::now())
                 .count());
  if (options_.on_user_token) {
    try {
      options_.on_user_token(user_);
    } catch (const std::exception& e) {
      ts::log::get("fleet_api")
          ->error("on_user_token failed: {} (the new token is kept in memory)", e.what());
    }
  }
  return token;
}

Result<Token> Client::partner_token() {
  std::lock_guard lock(token_mutex_);
  if (!partner_.access_token.empty() &&
      Clock::now() + options_.token_refresh_margin < partner_.expires_at) {
    return partner_;
  }
  return fetch_partner_token_locked();
}

Result<Token> Client::refresh_user_token() {
  std::lock_guard lock(token_mutex_);
  return refresh_user_token_locked();
}

Result<std::string> Client::access_token(Auth auth, const std::string& rejected) {
  std::lock_guard lock(token_mutex_);
  Token& t = auth == Auth::Partner ? partner_ : user_;
  // `rejected` is the token a 401 answered; another thread may have renewed it meanwhile.
  if (!t.access_token.empty() && t.access_token != rejected &&
      Clock::now() + options_.token_refresh_margin < t.expires_at) {
    return t.access_token;
  }
  auto fresh = auth == Auth::Partner ? fetch_partner_token_locked() : refresh_user_token_locked();
  if (!fresh) return fresh.error();
  return fresh->access_token;
}

Result<HttpResponse> Client::call(std::string_view endpoint, Auth auth, std::string method,
                                  std::string target, std::string body) {
  std::string rejected;
  for (int attempt = 0;; ++attempt) {
    auto token = access_token(auth, rejected);
    if (!token) return token.error();
    HttpRequest req;
    req.method = method;
    req.target = target;
    req.body = body;
    if (!body.empty()) req.content_type = "application/json";
    req.headers.emplace_back("Authorization", "Bearer " + *token);
    auto r = api_->send(req, options_.request_timeout);
    count(endpoint, r);
    if (!r) {
      warn(fmt::format("fleet API {}", endpoint), r.error().describe());
      return r.error();
    }
    if (r->status == 401 && attempt == 0) {
      metrics_->unauthorized_retries.with({std::string(endpoint)}).inc();
      rejected = *token;
      continue;
    }
    if (!success(r->status)) {
      Error e = error_from_response(r->status, r->body, r->header("Retry-After"), Clock::now());
      if (e.is(errc::rate_limited)) {
        metrics_->rate_limited.with({std::string(endpoint)}).inc();
        warn(fmt::format("fleet API {}", endpoint), e.describe());
      } else if (e.is(errc::vehicle_unavailable)) {
        metrics_->vehicle_unavailable.with({std::string(endpoint)}).inc();
      } else if (e.is(errc::server_error) || e.is(errc::unauthorized)) {
        warn(fmt::format("fleet API {}", endpoint), e.describe());
      }
      return e;
    }
    ts::log::get("fleet_api")->debug("{} {} -> {}", method, target, r->status);
    return r;
  }
}

Result<std::vector<Vehicle>> Client::vehicles() {
  std::vector<Vehicle> out;
  int page = 1;
  for (int pages = 0; pages < kMaxVehiclePages; ++pages) {
    std::string target = "/api/1/vehicles";
    if (page > 1) target += "?page=" + std::to_string(page);
    auto r = call("vehicles", Auth::User, "GET", target);
    if (!r) return r.error();
    auto parsed = parse_vehicles_response(r->body);
    if (!parsed) return parsed.error();
    for (auto& v : parsed->vehicles) out.push_back(std::move(v));
    if (!parsed->next_page || *parsed->next_page <= page) break;
    page = *parsed->next_page;
  }
  return out;
}

Result<Vehicle> Client::vehicle(std::string_view vin) {
  if (!valid_vin(vin)) return invalid_vin(vin);
  auto r = call("vehicle", Auth::User, "GET", "/api/1/vehicles/" + std::string(vin));
  if (!r) return r.error();
  return parse_vehicle_response(r->body);
}

Result<VehicleData> Client::vehicle_data(std::string_view vin, std::string_view endpoints) {
  if (!valid_vin(vin)) return invalid_vin(vin);
  std::string target = "/api/1/vehicles/" + std::string(vin) + "/vehicle_data";
  if (!endpoints.empty()) target += "?endpoints=" + encode(endpoints, ";");
  auto r = call("vehicle_data", Auth::User, "GET", std::move(target));
  if (!r) return r.error();
  auto data = parse_vehicle_data_response(r->body, signal::now());
  if (data && (data->vehicle.state == VehicleState::Asleep ||
               data->vehicle.state == VehicleState::Offline)) {
    // Tesla may answer from its cache for a car that is not online: not a fresh reading.
    metrics_->vehicle_unavailable.with({"vehicle_data"}).inc();
    return Error(errc::vehicle_unavailable,
                 "vehicle_data answered for a car that is " + data->vehicle.state_text +
                     " (cached data ignored)",
                 r->status);
  }
  return data;
}

Result<Vehicle> Client::wake_up(std::string_view vin) {
  if (!valid_vin(vin)) return invalid_vin(vin);
  ts::log::get("fleet_api")->info("waking vehicle {} (explicit wake_up)", vin);
  auto r = call("wake_up", Auth::User, "POST", "/api/1/vehicles/" + std::string(vin) + "/wake_up");
  if (!r) return r.error();
  return parse_vehicle_response(r->body);
}

Result<ConfigUpdate> Client::create_telemetry_config(const std::vector<std::string>& vins,
                                                     const TelemetryConfig& config) {
  std::string body =
      "{\"vins\":" + vins_json(vins) + ",\"config\":" + telemetry_config_json(config) + "}";
  auto r = call("fleet_telemetry_config_create", Auth::User, "POST",
                "/api/1/vehicles/fleet_telemetry_config", std::move(body));
  if (!r) return r.error();
  return parse_config_update_response(r->body);
}

Result<ConfigUpdate> Client::create_telemetry_config_jws(const std::vector<std::string>& vins,
                                                         std::string_view jws) {
  boost::json::object o;
  o["vins"] = boost::json::parse(vins_json(vins));
  o["token"] = jws;
  auto r = call("fleet_telemetry_config_jws", Auth::User, "POST",
                "/api/1/vehicles/fleet_telemetry_config_jws", boost::json::serialize(o));
  if (!r) return r.error();
  return parse_config_update_response(r->body);
}

Result<TelemetryConfigStatus> Client::telemetry_config(std::string_view vin) {
  if (!valid_vin(vin)) return invalid_vin(vin);
  auto r = call("fleet_telemetry_config_get", Auth::User, "GET",
                "/api/1/vehicles/" + std::string(vin) + "/fleet_telemetry_config");
  if (!r) return r.error();
  return parse_config_status_response(r->body);
}

Result<ConfigUpdate> Client::delete_telemetry_config(std::string_view vin) {
  if (!valid_vin(vin)) return invalid_vin(vin);
  auto r = call("fleet_telemetry_config_delete", Auth::User, "DELETE",
                "/api/1/vehicles/" + std::string(vin) + "/fleet_telemetry_config");
  if (!r) return r.error();
  return parse_config_update_response(r->body);
}

Result<FleetStatus> Client::fleet_status(const std::vector<std::string>& vins) {
  auto r = call("fleet_status", Auth::User, "POST", "/api/1/vehicles/fleet_status",
                "{\"vins\":" + vins_json(vins) + "}");
  if (!r) return r.error();
  return parse_fleet_status_response(r->body);
}

Result<std::vector<TelemetryError>> Client::vehicle_telemetry_errors(std::string_view vin) {
  if (!valid_vin(vin)) return invalid_vin(vin);
  auto r = call("fleet_telemetry_errors", Auth::User, "GET",
                "/api/1/vehicles/" + std::string(vin) + "/fleet_telemetry_errors");
  if (!r) return r.error();
  return parse_telemetry_errors_response(r->body);
}

Result<std::vector<TelemetryError>> Client::partner_telemetry_errors() {
  std::string target = "/api/1/partner_accounts/fleet_telemetry_errors";
  if (!options_.partner_domain.empty()) target += "?domain=" + encode(options_.partner_domain);
  auto r = call("partner_fleet_telemetry_errors", Auth::Partner, "GET", std::move(target));
  if (!r) return r.error();
  return parse_telemetry_errors_response(r->body);
}

Result<std::vector<std::string>> Client::partner_telemetry_error_vins() {
  std::string target = "/api/1/partner_accounts/fleet_telemetry_error_vins";
  if (!options_.partner_domain.empty()) target += "?domain=" + encode(options_.partner_domain);
  auto r = call("partner_fleet_telemetry_error_vins", Auth::Partner, "GET", std::move(target));
  if (!r) return r.error();
  return parse_error_vins_response(r->body);
}

}  // namespace ts::fleet_api

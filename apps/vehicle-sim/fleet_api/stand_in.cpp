#include "fleet_api/stand_in.hpp"

#include <fmt/format.h>

#include <boost/beast/core/string.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <stdexcept>

#include "fleet_api/vehicle_json.hpp"
#include "signal/signal.hpp"

namespace ts::vehicle_sim {
namespace {

namespace json = boost::json;
using http::Request;
using http::Response;

constexpr const char* kJson = "application/json; charset=utf-8";
constexpr int kDefaultPerPage = 100;
constexpr std::string_view kUnavailable = "vehicle unavailable: vehicle is offline or asleep";
constexpr std::string_view kProxyRequired =
    "Refer to https://developer.tesla.com/docs/fleet-api/fleet-telemetry: fleet telemetry "
    "configs must be signed (send them through the vehicle-command proxy, or use "
    "fleet_telemetry_config_jws)";

const std::vector<std::string_view> kEndpoints = {
    "token",
    "vehicles",
    "vehicle",
    "vehicle_data",
    "wake_up",
    "fleet_telemetry_config_create",
    "fleet_telemetry_config_jws",
    "fleet_telemetry_config_get",
    "fleet_telemetry_config_delete",
    "fleet_status",
    "fleet_telemetry_errors",
    "partner_fleet_telemetry_errors",
    "partner_fleet_telemetry_error_vins",
};

Response json_response(unsigned status, const json::value& body) {
  return Response{status, kJson, json::serialize(body) + "\n", {}};
}

// Tesla's envelope.
Response ok(json::value response) {
  json::object o;
  o["response"] = std::move(response);
  return json_response(200, o);
}

Response api_error(unsigned status, std::string_view error, std::string_view description = "") {
  json::object o;
  o["response"] = nullptr;
  o["error"] = error;
  o["error_description"] = description;
  return json_response(status, o);
}

// `/sim/` answers: {"ok":true,…} or {"error":…}.
Response control_error(unsigned status, const std::string& error) {
  return json_response(status, json::object{{"error", error}});
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parse_form(std::string_view s) {
  std::map<std::string, std::string> out;
  while (!s.empty()) {
    std::string_view pair = s.substr(0, s.find('&'));
    s.remove_prefix(std::min(s.size(), pair.size() + 1));
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    out[percent_decode(pair.substr(0, eq))] =
        eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
  }
  return out;
}

std::map<std::string, std::string> query_of(const Request& req) {
  const auto q = req.target.find('?');
  if (q == std::string::npos) return {};
  return parse_form(std::string_view(req.target).substr(q + 1));
}

std::string header(const Request& req, std::string_view name) {
  for (const auto& [k, v] : req.headers) {
    if (boost::beast::iequals(k, name)) return v;
  }
  return {};
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t pos = 0;
  while (pos < path.size()) {
    std::size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    if (next > pos) parts.push_back(path.substr(pos, next - pos));
    pos = next + 1;
  }
  return parts;
}

std::optional<json::value> parse_json(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return std::nullopt;
  return v;
}

std::optional<std::vector<std::string>> string_list(const json::value* v) {
  if (v == nullptr || !v->is_array()) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& item : v->get_array()) {
    if (!item.is_string()) return std::nullopt;
    out.emplace_back(item.get_string());
  }
  return out;
}

const json::value* member(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it == o.end() ? nullptr : &it->value();
}

std::optional<std::string> base64url_decode(std::string_view in) {
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '-' || c == '+')
      v = 62;
    else if (c == '_' || c == '/')
      v = 63;
    else if (c == '=')
      break;
    else
      return std::nullopt;
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  return out;
}

// Checks a config object as Tesla does on create; "" if it is acceptable, else the error text.
std::string config_problem(const json::object& config) {
  const json::value* hostname = member(config, "hostname");
  if (hostname == nullptr || !hostname->is_string() || hostname->get_string().empty()) {
    return "config.hostname is required";
  }
  const json::value* port = member(config, "port");
  if (port == nullptr) return "config.port is required";
  if (!port->is_int64() && !port->is_uint64()) return "config.port must be an integer";
  const std::int64_t p = port->to_number<std::int64_t>();
  if (p < 1 || p > 65535) return "config.port must be between 1 and 65535";
  if (const json::value* ca = member(config, "ca"); ca && !ca->is_string()) {
    return "config.ca must be a string";
  }
  if (const json::value* exp = member(config, "exp"); exp && !exp->is_number()) {
    return "config.exp must be a number";
  }
  const json::value* fields = member(config, "fields");
  if (fields == nullptr || !fields->is_object() || fields->get_object().empty()) {
    return "config.fields must name at least one field";
  }
  for (const auto& kv : fields->get_object()) {
    vd::Field f{};
    if (!vd::Field_Parse(std::string(kv.key()), &f)) {
      return "Unknown field " + std::string(kv.key());
    }
    if (!kv.value().is_object())
      return "config.fields." + std::string(kv.key()) + " must be an object";
    const json::value* interval = member(kv.value().get_object(), "interval_seconds");
    if (interval == nullptr || !interval->is_number() || interval->to_number<double>() < 1) {
      return "config.fields." + std::string(kv.key()) + ".interval_seconds must be ≥ 1";
    }
  }
  return {};
}

json::object vehicle_state_json(const SimVehicle& v) {
  const auto& s = v.generator.state();
  json::object o;
  o["vin"] = v.vin;
  o["id"] = v.id;
  o["state"] = to_string(v.availability);
  o["held"] = v.held;
  o["waking"] = v.wake_left_s >= 0;
  o["mode"] = to_string(s.mode);
  o["soc"] = std::round(s.soc * 100) / 100;
  o["speed_mph"] = std::round(s.speed_mph * 10) / 10;
  o["key_paired"] = v.key_paired;
  o["wake_up_calls"] = v.wake_up_calls;
  o["vehicle_data_served"] = v.vehicle_data_served;
  o["telemetry_config"] = v.telemetry_config.has_value();
  o["config_synced"] = v.config_synced;
  o["telemetry_errors"] = v.errors.size();
  return o;
}

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

unsigned count_param(const std::map<std::string, std::string>& q, const char* key,
                     unsigned fallback, unsigned max) {
  auto it = q.find(key);
  if (it == q.end()) return fallback;
  char* end = nullptr;
  unsigned long n = std::strtoul(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0' || n > max) {
    throw std::invalid_argument(fmt::format("{} must be an integer from 0 to {}", key, max));
  }
  return static_cast<unsigned>(n);
}

}  // namespace

const std::vector<std::string_view>& StandIn::endpoint_names() { return kEndpoints; }

StandIn::StandIn(StandInOptions options, std::function<double()> now)
    : now_(now ? std::move(now) : steady_seconds),
      fleet_(options.vins, options.fleet),
      tokens_(options.tokens, options.fleet.seed),
      require_jws_(options.require_jws),
      cached_when_unavailable_(options.cached_when_unavailable) {
  if (options.vins.empty()) throw std::invalid_argument("the stand-in needs at least one vehicle");
  std::set<std::string> seen;
  for (const auto& vin : options.vins) {
    if (!seen.insert(vin).second) throw std::invalid_argument("VIN " + vin + " given twice");
  }
  set_error_vins_shape(options.error_vins_shape);
  fleet_.advance_to(now_());
}

void StandIn::set_error_vins_shape(const std::string& shape) {
  if (shape != "fleet_telemetry_error_vins" && shape != "vins" && shape != "bare") {
    throw std::invalid_argument("error-VIN shape must be fleet_telemetry_error_vins, vins or bare");
  }
  error_vins_shape_ = shape;
}

void StandIn::add_fault(Fault fault) {
  if (!fault.endpoint.empty() &&
      std::find(kEndpoints.begin(), kEndpoints.end(), fault.endpoint) == kEndpoints.end()) {
    throw std::invalid_argument("unknown endpoint '" + fault.endpoint + "'");
  }
  if (fault.kind == Fault::Kind::ServerError && (fault.status < 500 || fault.status > 599)) {
    throw std::invalid_argument("status must be 5xx");
  }
  if (fault.count > 0) faults_.push_back(std::move(fault));
}

void StandIn::add_telemetry_error(SimVehicle& v, std::string error_name, std::string error) {
  ++error_serial_;
  SimTelemetryError e;
  e.created_at = signal::format_time(signal::now());
  e.error_name = error_name.empty() ? "config_manager_error" : std::move(error_name);
  e.error = error.empty() ? "InvalidSignature: unknown issuer" : std::move(error);
  e.name = "vehicle-sim-client";
  e.txid = fmt::format("sim-tx-{:06}", error_serial_);
  v.errors.push_back(std::move(e));
}

StandIn::Route StandIn::route(const std::string& method, const std::string& path) {
  const auto p = split_path(path);
  Route r;
  auto expect = [&](const char* m) { r.method_ok = method == m; };
  if (p == std::vector<std::string>{"oauth2", "v3", "token"}) {
    r.endpoint = "token";
    expect("POST");
    return r;
  }
  if (p.size() < 3 || p[0] != "api" || p[1] != "1") return r;
  if (p[2] == "vehicles") {
    if (p.size() == 3) {
      r.endpoint = "vehicles";
      expect("GET");
    } else if (p.size() == 4 && p[3] == "fleet_telemetry_config") {
      r.endpoint = "fleet_telemetry_config_create";
      expect("POST");
    } else if (p.size() == 4 && p[3] == "fleet_telemetry_config_jws") {
      r.endpoint = "fleet_telemetry_config_jws";
      expect("POST");
    } else if (p.size() == 4 && p[3] == "fleet_status") {
      r.endpoint = "fleet_status";
      expect("POST");
    } else if (p.size() == 4) {
      r.endpoint = "vehicle";
      r.vehicle = p[3];
      expect("GET");
    } else if (p.size() == 5) {
      r.vehicle = p[3];
      if (p[4] == "vehicle_data") {
        r.endpoint = "vehicle_data";
        expect("GET");
      } else if (p[4] == "wake_up") {
        r.endpoint = "wake_up";
        expect("POST");
      } else if (p[4] == "fleet_telemetry_errors") {
        r.endpoint = "fleet_telemetry_errors";
        expect("GET");
      } else if (p[4] == "fleet_telemetry_config") {
        r.endpoint =
            method == "DELETE" ? "fleet_telemetry_config_delete" : "fleet_telemetry_config_get";
        r.method_ok = method == "GET" || method == "DELETE";
      }
    }
  } else if (p[2] == "partner_accounts" && p.size() == 4) {
    if (p[3] == "fleet_telemetry_errors") {
      r.endpoint = "partner_fleet_telemetry_errors";
      expect("GET");
    } else if (p[3] == "fleet_telemetry_error_vins") {
      r.endpoint = "partner_fleet_telemetry_error_vins";
      expect("GET");
    }
  }
  return r;
}

Response StandIn::handle(const Request& req) {
  const double now = now_();
  fleet_.advance_to(now);
  const std::string path = req.path();
  if (path == "/sim" || path.starts_with("/sim/")) {
    try {
      return control(req, path);
    } catch (const std::invalid_argument& e) {
      return control_error(400, e.what());
    }
  }
  const Route r = route(req.method, path);
  if (r.endpoint.empty()) {
    return api_error(404, "not_found", "no such endpoint: " + req.method + " " + path);
  }
  ++requests_[r.endpoint];
  Response res;
  if (!r.method_ok) {
    res = api_error(405, "method not allowed", req.method + " " + path);
  } else if (auto fault = take_fault(r.endpoint)) {
    res = std::move(*fault);
  } else {
    res = api(req, r, now);
  }
  ++responses_[r.endpoint][res.status];
  return res;
}

std::optional<Response> StandIn::take_fault(const std::string& endpoint) {
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (!it->endpoint.empty() && it->endpoint != endpoint) continue;
    Fault f = *it;
    if (--it->count == 0) faults_.erase(it);
    ++faults_served_;
    switch (f.kind) {
      case Fault::Kind::RateLimit: {
        Response res = api_error(429, "rate limited",
                                 "Account or server is rate limited (vehicle-sim injected)");
        res.headers.emplace_back("Retry-After", std::to_string(f.retry_after_s));
        return res;
      }
      case Fault::Kind::ServerError:
        return api_error(f.status, "internal server error", "vehicle-sim injected a failure");
      case Fault::Kind::Garbage:
        return Response{200,
                        "text/html; charset=utf-8",
                        "<html><body>502 Bad Gateway (vehicle-sim injected)</body></html>",
                        {}};
      case Fault::Kind::Unauthorized:
        return api_error(401, "invalid bearer token", "vehicle-sim injected a 401");
    }
  }
  return std::nullopt;
}

std::optional<Response> StandIn::check_auth(const Request& req, const std::string& endpoint,
                                            double now) {
  const std::string auth = header(req, "Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.size() <= kBearer.size() ||
      !boost::beast::iequals(auth.substr(0, kBearer.size()), kBearer)) {
    return api_error(401, "missing bearer token", "send Authorization: Bearer <access token>");
  }
  auto kind = tokens_.validate(std::string_view(auth).substr(kBearer.size()), now);
  if (!kind) return api_error(401, "invalid bearer token", "token expired or revoked");
  const bool partner_endpoint = endpoint.starts_with("partner_");
  if (partner_endpoint && *kind != TokenKind::Partner) {
    return api_error(403, "unauthorized", "this endpoint needs a partner token");
  }
  if (!partner_endpoint && *kind != TokenKind::User) {
    return api_error(403, "unauthorized", "this endpoint needs a user (third-party) token");
  }
  return std::nullopt;
}

Response StandIn::api(const Request& req, const Route& r, double now) {
  if (r.endpoint == "token") return token(req, now);
  if (auto denied = check_auth(req, r.endpoint, now)) return std::move(*denied);
  if (r.endpoint == "vehicles") return vehicles(req);
  if (r.endpoint == "fleet_telemetry_config_create") return config_create(req, false);
  if (r.endpoint == "fleet_telemetry_config_jws") return config_create(req, true);
  if (r.endpoint == "fleet_status") return fleet_status(req);
  if (r.endpoint == "partner_fleet_telemetry_errors") return partner_errors();
  if (r.endpoint == "partner_fleet_telemetry_error_vins") return partner_error_vins();
  SimVehicle* v = fleet_.find(r.vehicle);
  if (v == nullptr) return api_error(404, "not_found", "no vehicle " + r.vehicle);
  if (r.endpoint == "vehicle") return ok(vehicle_summary(*v));
  if (r.endpoint == "vehicle_data") return vehicle_data(req, *v);
  if (r.endpoint == "wake_up") {
    fleet_.wake_up(*v);
    return ok(vehicle_summary(*v));
  }
  if (r.endpoint == "fleet_telemetry_config_get") return config_get(*v);
  if (r.endpoint == "fleet_telemetry_config_delete") return config_delete(*v);
  if (r.endpoint == "fleet_telemetry_errors") return vehicle_errors(*v);
  return api_error(404, "not_found", r.endpoint);
}

Response StandIn::token(const Request& req, double now) {
  std::map<std::string, std::string> params = query_of(req);
  const std::string type = header(req, "Content-Type");
  if (type.find("json") != std::string::npos || req.body.starts_with("{")) {
    auto v = parse_json(req.body);
    if (!v || !v->is_object()) {
      return json_response(400, json::object{{"error", "invalid_request"},
                                             {"error_description", "body is not JSON"}});
    }
    for (const auto& kv : v->get_object()) {
      if (kv.value().is_string()) params[std::string(kv.key())] = kv.value().get_string();
    }
  } else {
    for (auto& [k, val] : parse_form(req.body)) params[k] = val;
  }
  TokenReply reply = tokens_.grant(params, now);
  return Response{reply.status, kJson, reply.body + "\n", {}};
}

Response StandIn::vehicles(const Request& req) {
  auto q = query_of(req);
  const auto& all = fleet_.vehicles();
  const int total = static_cast<int>(all.size());
  int per_page = kDefaultPerPage;
  int page = 1;
  try {
    if (q.contains("per_page")) per_page = std::clamp(std::stoi(q["per_page"]), 1, 1000);
    if (q.contains("page")) page = std::max(1, std::stoi(q["page"]));
  } catch (const std::exception&) {
    return api_error(400, "invalid page or per_page");
  }
  const int pages = std::max(1, (total + per_page - 1) / per_page);
  json::array list;
  for (int i = (page - 1) * per_page; i < std::min(total, page * per_page); ++i) {
    list.push_back(vehicle_summary(all[static_cast<std::size_t>(i)]));
  }
  json::object pagination;
  pagination["previous"] = page > 1 ? json::value(page - 1) : json::value(nullptr);
  pagination["next"] = page < pages ? json::value(page + 1) : json::value(nullptr);
  pagination["current"] = page;
  pagination["per_page"] = per_page;
  pagination["count"] = total;
  pagination["pages"] = pages;
  json::object o;
  o["response"] = std::move(list);
  o["pagination"] = std::move(pagination);
  o["count"] = total;
  return json_response(200, o);
}

Response StandIn::vehicle_data(const Request& req, SimVehicle& v) {
  const bool online = v.availability == Availability::Online;
  if (!online && !cached_when_unavailable_) return api_error(408, kUnavailable);
  std::set<std::string> endpoints;
  auto q = query_of(req);
  std::string_view list = q["endpoints"];
  while (!list.empty()) {
    const auto sep = list.find_first_of(";,");
    std::string name(list.substr(0, sep));
    list.remove_prefix(std::min(list.size(), name.size() + 1));
    if (name.empty()) continue;
    if (!is_vehicle_data_endpoint(name)) return api_error(400, "invalid endpoint " + name);
    endpoints.insert(std::move(name));
  }
  if (!online) {
    // The frozen car's data, stamped with the current time like Tesla's cache; not a poll.
    return ok(ts::vehicle_sim::vehicle_data(v, endpoints, now_ms()));
  }
  fleet_.polled(v);
  return ok(ts::vehicle_sim::vehicle_data(v, endpoints, now_ms()));
}

Response StandIn::config_create(const Request& req, bool jws) {
  if (!jws && require_jws_) return api_error(412, kProxyRequired);
  auto body = parse_json(req.body);
  if (!body || !body->is_object())
    return api_error(400, "invalid_request", "body is not a JSON object");
  const json::object& o = body->get_object();
  auto vins = string_list(member(o, "vins"));
  if (!vins || vins->empty())
    return api_error(400, "invalid_request", "vins must be a non-empty list");
  json::object config;
  if (jws) {
    const json::value* token = member(o, "token");
    if (token == nullptr || !token->is_string())
      return api_error(400, "invalid_request", "token is required");
    // header.payload.signature; the stand-in reads the claims but does not verify the
    // Tesla.SS256 signature.
    std::string_view t = token->get_string();
    const auto first = t.find('.');
    const auto second = first == std::string_view::npos ? first : t.find('.', first + 1);
    auto claims = second == std::string_view::npos
                      ? std::nullopt
                      : base64url_decode(t.substr(first + 1, second - first - 1));
    auto parsed = claims ? parse_json(*claims) : std::nullopt;
    if (!parsed || !parsed->is_object())
      return api_error(400, "invalid_request", "token is not a JWS with JSON claims");
    config = parsed->get_object();
  } else {
    const json::value* c = member(o, "config");
    if (c == nullptr || !c->is_object())
      return api_error(400, "invalid_request", "config must be an object");
    config = c->get_object();
  }
  if (std::string problem = config_problem(config); !problem.empty()) {
    return api_error(400, problem);
  }
  if (!config.contains("aud")) config["aud"] = "com.tesla.fleet.TelemetryClient";
  if (!config.contains("iss")) config["iss"] = "vehicle-sim";
  std::vector<SimVehicle*> targets;
  for (const auto& vin : *vins) {
    SimVehicle* v = fleet_.find(vin);
    if (v == nullptr) return api_error(404, "not_found", "no vehicle " + vin);
    targets.push_back(v);
  }
  json::array missing_key;
  int updated = 0;
  const std::string text = json::serialize(config);
  for (SimVehicle* v : targets) {
    if (!v->key_paired) {
      missing_key.emplace_back(v->vin);
      continue;
    }
    v->telemetry_config = text;
    v->config_synced = v->availability == Availability::Online;  // else on its next connection
    ++updated;
  }
  json::object skipped;
  skipped["missing_key"] = std::move(missing_key);
  skipped["unsupported_hardware"] = json::array{};
  skipped["unsupported_firmware"] = json::array{};
  json::object r;
  r["updated_vehicles"] = updated;
  r["skipped_vehicles"] = std::move(skipped);
  return ok(std::move(r));
}

Response StandIn::config_get(SimVehicle& v) {
  json::object r;
  r["synced"] = v.telemetry_config ? v.config_synced : true;
  r["config"] = v.telemetry_config ? json::parse(*v.telemetry_config) : json::value(nullptr);
  r["limit_reached"] = false;
  r["key_paired"] = v.key_paired;
  return ok(std::move(r));
}

Response StandIn::config_delete(SimVehicle& v) {
  const bool had = v.telemetry_config.has_value();
  v.telemetry_config.reset();
  v.config_synced = false;
  return ok(json::object{{"updated_vehicles", had ? 1 : 0}});
}

Response StandIn::fleet_status(const Request& req) {
  auto body = parse_json(req.body);
  auto vins =
      body && body->is_object() ? string_list(member(body->get_object(), "vins")) : std::nullopt;
  if (!vins) return api_error(400, "invalid_request", "vins must be a list");
  json::array paired, unpaired;
  json::object info;
  for (const auto& vin : *vins) {
    SimVehicle* v = fleet_.find(vin);
    if (v == nullptr) continue;
    (v->key_paired ? paired : unpaired).emplace_back(v->vin);
    json::object i;
    i["firmware_version"] = v->generator.profile().version;
    i["fleet_telemetry_version"] = "1.0.0";
    i["vehicle_command_protocol_required"] = true;
    i["total_number_of_keys"] = v->key_paired ? 5 : 4;
    i["safety_screen_streaming_toggle_enabled"] = nullptr;
    info[v->vin] = std::move(i);
  }
  json::object r;
  r["key_paired_vins"] = std::move(paired);
  r["unpaired_vins"] = std::move(unpaired);
  r["vehicle_info"] = std::move(info);
  return ok(std::move(r));
}

namespace {
json::object error_json(const SimVehicle& v, const SimTelemetryError& e) {
  json::object o;
  o["created_at"] = e.created_at;
  o["error"] = e.error;
  o["error_name"] = e.error_name;
  o["name"] = e.name;
  o["txID"] = e.txid;
  o["vin"] = v.vin;
  return o;
}
}  // namespace

Response StandIn::vehicle_errors(SimVehicle& v) {
  json::array list;
  for (const auto& e : v.errors) list.push_back(error_json(v, e));
  return ok(json::object{{"fleet_telemetry_errors", std::move(list)}});
}

Response StandIn::partner_errors() {
  json::array list;
  for (const auto& v : fleet_.vehicles()) {
    for (const auto& e : v.errors) list.push_back(error_json(v, e));
  }
  return ok(json::object{{"fleet_telemetry_errors", std::move(list)}});
}

Response StandIn::partner_error_vins() {
  json::array vins;
  if (error_vins_) {
    for (const auto& vin : *error_vins_) vins.emplace_back(vin);
  } else {
    for (const auto& v : fleet_.vehicles()) {
      if (!v.errors.empty()) vins.emplace_back(v.vin);
    }
  }
  if (error_vins_shape_ == "bare") return json_response(200, vins);
  if (error_vins_shape_ == "vins") {
    return ok(json::object{{"vins", std::move(vins)},
                           {"updated_at", signal::format_time(signal::now())}});
  }
  return ok(json::object{{"fleet_telemetry_error_vins", std::move(vins)}});
}

std::string StandIn::stats_json() const {
  json::object requests;
  for (const auto& [k, n] : requests_) requests[k] = n;
  json::object responses;
  for (const auto& [k, by_status] : responses_) {
    json::object s;
    for (const auto& [status, n] : by_status) s[std::to_string(status)] = n;
    responses[k] = std::move(s);
  }
  json::object wake_up, served;
  for (const auto& v : fleet_.vehicles()) {
    wake_up[v.vin] = v.wake_up_calls;
    served[v.vin] = v.vehicle_data_served;
  }
  json::object tokens;
  tokens["partner_issued"] = tokens_.partner_issued();
  tokens["user_issued"] = tokens_.user_issued();
  tokens["refused"] = tokens_.refused();
  json::object o;
  o["requests"] = std::move(requests);
  o["responses"] = std::move(responses);
  o["wake_up"] = std::move(wake_up);
  o["vehicle_data_served"] = std::move(served);
  o["tokens"] = std::move(tokens);
  o["faults_served"] = faults_served_;
  o["faults_pending"] = faults_.size();
  return json::serialize(o) + "\n";
}

Response StandIn::control(const Request& req, const std::string& path) {
  const auto p = split_path(path);  // p[0] == "sim"
  auto q = query_of(req);
  const std::string& m = req.method;
  if (p.size() == 2 && p[1] == "stats" && m == "GET") {
    return Response{200, kJson, stats_json(), {}};
  }
  if (p.size() == 2 && p[1] == "vehicles" && m == "GET") {
    json::array list;
    for (const auto& v : fleet_.vehicles()) list.push_back(vehicle_state_json(v));
    return json_response(200, list);
  }
  if (p.size() >= 3 && p[1] == "vehicles") {
    SimVehicle* v = fleet_.find(p[2]);
    if (v == nullptr) return control_error(404, "no vehicle " + p[2]);
    if (p.size() == 3 && m == "GET") return json_response(200, vehicle_state_json(*v));
    const std::string action = p.size() == 4 ? p[3] : "";
    if (action == "sleep" && m == "POST") {
      fleet_.put_to_sleep(*v);
    } else if (action == "offline" && m == "POST") {
      fleet_.take_offline(*v);
    } else if (action == "wake" && m == "POST") {
      fleet_.bring_online(*v);
    } else if (action == "mode" && m == "POST") {
      auto mode = parse_mode(q["mode"]);
      if (!mode) return control_error(400, "mode must be parked, driving or charging");
      fleet_.set_mode(*v, *mode);
    } else if (action == "key" && m == "POST") {
      const std::string paired = q["paired"];
      if (paired != "true" && paired != "false")
        return control_error(400, "paired must be true or false");
      v->key_paired = paired == "true";
    } else if (action == "telemetry_errors" && m == "POST") {
      std::string name = q["error_name"], error = q["error"];
      if (auto body = parse_json(req.body); body && body->is_object()) {
        const auto& o = body->get_object();
        if (auto* n = member(o, "error_name"); n && n->is_string()) name = n->get_string();
        if (auto* e = member(o, "error"); e && e->is_string()) error = e->get_string();
      }
      add_telemetry_error(*v, std::move(name), std::move(error));
    } else if (action == "telemetry_errors" && m == "DELETE") {
      v->errors.clear();
    } else {
      return control_error(404, "no control " + m + " " + path);
    }
    return json_response(200, json::object{{"ok", true}, {"vehicle", vehicle_state_json(*v)}});
  }
  if (p.size() == 2 && p[1] == "error_vins") {
    if (m == "DELETE") {
      error_vins_.reset();
    } else if (m == "POST" || m == "PUT") {
      if (q.contains("shape")) set_error_vins_shape(q["shape"]);
      if (!req.body.empty()) {
        auto body = parse_json(req.body);
        std::optional<std::vector<std::string>> vins;
        if (body && body->is_array()) vins = string_list(&*body);
        if (body && body->is_object()) vins = string_list(member(body->get_object(), "vins"));
        if (!vins) return control_error(400, "body must be [\"VIN\", …] or {\"vins\": […]}");
        error_vins_ = std::move(vins);
      }
    } else {
      return control_error(405, "use POST or DELETE");
    }
    return json_response(200, json::object{{"ok", true}, {"shape", error_vins_shape_}});
  }
  if (p.size() >= 2 && p[1] == "faults") {
    if (p.size() == 2 && m == "DELETE") {
      faults_.clear();
      return json_response(200, json::object{{"ok", true}});
    }
    if (p.size() != 3 || m != "POST") return control_error(404, "no control " + m + " " + path);
    Fault f;
    f.endpoint = q["endpoint"];
    f.count = count_param(q, "count", 1, 1'000'000);
    if (p[2] == "rate_limit") {
      f.kind = Fault::Kind::RateLimit;
      f.retry_after_s = count_param(q, "retry_after", 30, 172'800);
    } else if (p[2] == "server_error") {
      f.kind = Fault::Kind::ServerError;
      f.status = count_param(q, "status", 503, 599);
    } else if (p[2] == "garbage") {
      f.kind = Fault::Kind::Garbage;
    } else if (p[2] == "unauthorized") {
      f.kind = Fault::Kind::Unauthorized;
    } else {
      return control_error(404, "faults are rate_limit, server_error, garbage or unauthorized");
    }
    add_fault(std::move(f));
    return json_response(200, json::object{{"ok", true}, {"faults_pending", faults_.size()}});
  }
  if (p.size() == 3 && p[1] == "tokens" && p[2] == "expire" && m == "POST") {
    tokens_.expire_all();
    if (q["refresh"] == "true") tokens_.revoke_refresh_tokens();
    return json_response(200, json::object{{"ok", true}});
  }
  return control_error(404, "no control " + m + " " + path);
}

}  // namespace ts::vehicle_sim

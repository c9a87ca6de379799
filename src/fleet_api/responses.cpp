#include "fleet_api/responses.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>

#include "fleet_api/vehicle_data.hpp"

namespace ts::fleet_api {
namespace {

namespace json = boost::json;
using Clock = std::chrono::system_clock;

Error bad(std::string message) { return Error(errc::bad_response, std::move(message)); }

Result<json::value> parse_json(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) {
    return bad("body is not JSON (" + ec.message() +
               "): " + std::string(body.substr(0, std::min<std::size_t>(body.size(), 120))));
  }
  return v;
}

const json::value* member(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it == o.end() ? nullptr : &it->value();
}

std::string text(const json::object& o, std::string_view key) {
  const json::value* v = member(o, key);
  if (v == nullptr || v->is_null()) return {};
  if (v->is_string()) return std::string(v->get_string());
  return json::serialize(*v);
}

std::optional<double> number(const json::value* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  if (v->is_double() && std::isfinite(v->get_double())) return v->get_double();
  if (v->is_string()) {  // ids sometimes arrive as strings ("id_s")
    std::string s(v->get_string());
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size() && std::isfinite(d)) return d;
  }
  return std::nullopt;
}

std::optional<std::int64_t> integer(const json::object& o, std::string_view key) {
  const json::value* v = member(o, key);
  if (v != nullptr && v->is_int64()) return v->get_int64();
  if (v != nullptr && v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  auto d = number(v);
  if (d && std::nearbyint(*d) == *d && std::fabs(*d) < 9.2e18) {
    return static_cast<std::int64_t>(*d);
  }
  return std::nullopt;
}

std::optional<bool> boolean(const json::object& o, std::string_view key) {
  const json::value* v = member(o, key);
  if (v != nullptr && v->is_bool()) return v->get_bool();
  return std::nullopt;
}

std::vector<std::string> strings(const json::value* v) {
  std::vector<std::string> out;
  if (v == nullptr || !v->is_array()) return out;
  for (const auto& item : v->get_array()) {
    if (item.is_string()) out.emplace_back(item.get_string());
  }
  return out;
}

// The `response` member of Tesla's envelope.
Result<json::value> envelope(std::string_view body) {
  auto v = parse_json(body);
  if (!v) return v.error();
  if (!v->is_object()) return bad("expected a JSON object with \"response\"");
  const json::object& o = v->get_object();
  const json::value* response = member(o, "response");
  if (response == nullptr || response->is_null()) {
    std::string error = text(o, "error");
    return bad(error.empty() ? "no \"response\" in the body" : "no response; error: " + error);
  }
  return *response;
}

Result<json::object> envelope_object(std::string_view body) {
  auto r = envelope(body);
  if (!r) return r.error();
  if (!r->is_object()) return bad("\"response\" is not an object");
  return std::move(r->get_object());
}

Vehicle vehicle_from(const json::object& o) {
  Vehicle v;
  v.id = integer(o, "id").value_or(0);
  if (v.id == 0) v.id = integer(o, "id_s").value_or(0);
  v.vehicle_id = integer(o, "vehicle_id").value_or(0);
  v.vin = text(o, "vin");
  v.display_name = text(o, "display_name");
  v.state_text = text(o, "state");
  v.state = parse_vehicle_state(v.state_text);
  v.in_service = boolean(o, "in_service").value_or(false);
  v.access_type = text(o, "access_type");
  return v;
}

std::optional<TelemetryConfig> config_from(const json::value* v) {
  if (v == nullptr || !v->is_object()) return std::nullopt;
  const json::object& o = v->get_object();
  TelemetryConfig c;
  c.hostname = text(o, "hostname");
  c.port = static_cast<int>(integer(o, "port").value_or(0));
  c.ca = text(o, "ca");
  c.exp = integer(o, "exp");
  c.prefer_typed = boolean(o, "prefer_typed");
  c.delivery_policy = text(o, "delivery_policy");
  c.alert_types = strings(member(o, "alert_types"));
  if (const json::value* fields = member(o, "fields"); fields && fields->is_object()) {
    for (const auto& kv : fields->get_object()) {
      FieldConfig f;
      if (kv.value().is_object()) {
        const json::object& fo = kv.value().get_object();
        f.interval_seconds = static_cast<int>(integer(fo, "interval_seconds").value_or(0));
        f.minimum_delta = number(member(fo, "minimum_delta"));
        if (auto r = integer(fo, "resend_interval_seconds")) {
          f.resend_interval_seconds = static_cast<int>(*r);
        }
      }
      c.fields.emplace(std::string(kv.key()), f);
    }
  }
  c.iss = text(o, "iss");
  c.aud = text(o, "aud");
  return c;
}

TelemetryError telemetry_error_from(const json::object& o) {
  TelemetryError e;
  e.vin = text(o, "vin");
  e.name = text(o, "name");
  e.error_name = text(o, "error_name");
  if (e.error_name.empty()) e.error_name = text(o, "error_code");
  e.error = text(o, "error");
  if (e.error.empty()) e.error = text(o, "error_message");
  e.txid = text(o, "txID");
  if (e.txid.empty()) e.txid = text(o, "txid");
  e.created_at = text(o, "created_at");
  if (e.created_at.empty()) e.created_at = text(o, "reported_at");
  e.created_at_us = signal::parse_time(e.created_at);
  return e;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::string error_message(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (!ec && v.is_object()) {
    const json::object& o = v.get_object();
    std::string error = text(o, "error");
    std::string description = text(o, "error_description");
    if (error.empty()) error = text(o, "message");
    if (!description.empty()) error += (error.empty() ? "" : ": ") + description;
    if (!error.empty()) return error;
  }
  std::string raw = trim(body.substr(0, std::min<std::size_t>(body.size(), 200)));
  return raw;
}

}  // namespace

std::string_view to_string(VehicleState state) noexcept {
  switch (state) {
    case VehicleState::Online:
      return "online";
    case VehicleState::Asleep:
      return "asleep";
    case VehicleState::Offline:
      return "offline";
    case VehicleState::Unknown:
      break;
  }
  return "unknown";
}

VehicleState parse_vehicle_state(std::string_view text) noexcept {
  if (text == "online") return VehicleState::Online;
  if (text == "asleep") return VehicleState::Asleep;
  if (text == "offline") return VehicleState::Offline;
  return VehicleState::Unknown;
}

std::chrono::seconds parse_retry_after(std::string_view header, Clock::time_point now) {
  constexpr std::chrono::seconds kMin{1};
  constexpr std::chrono::seconds kMax{2 * 86400};
  const std::string h = trim(header);
  if (all_digits(h)) {
    if (h.size() > 9) return kMax;
    return std::clamp(std::chrono::seconds(std::stoll(h)), kMin, kMax);
  }
  std::tm tm{};
  const char* end = ::strptime(h.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (h.empty() || end == nullptr || *end != '\0') return kDefaultRetryAfter;
  const auto at = Clock::from_time_t(::timegm(&tm));
  return std::clamp(std::chrono::ceil<std::chrono::seconds>(at - now), kMin, kMax);
}

Error error_from_response(unsigned status, std::string_view body, std::string_view retry_after,
                          Clock::time_point now) {
  std::string message = error_message(body);
  errc code = errc::bad_response;
  if (status == 401) {
    code = errc::unauthorized;
  } else if (status == 404) {
    code = errc::not_found;
  } else if (status == 408 || status == 504) {
    code = errc::vehicle_unavailable;
  } else if (status == 429) {
    code = errc::rate_limited;
  } else if (status >= 400 && status < 500) {
    code = errc::rejected;
  } else if (status >= 500 && status < 600) {
    code = errc::server_error;
  } else if (message.empty()) {
    message = "unexpected HTTP status";
  }
  Error e(code, std::move(message), status);
  if (code == errc::rate_limited) e.retry_after = parse_retry_after(retry_after, now);
  return e;
}

Result<Token> parse_token_response(std::string_view body, Clock::time_point now) {
  auto v = parse_json(body);
  if (!v) return v.error();
  if (!v->is_object()) return bad("token response is not a JSON object");
  const json::object& o = v->get_object();
  Token t;
  t.access_token = text(o, "access_token");
  if (t.access_token.empty()) return bad("token response without access_token");
  t.refresh_token = text(o, "refresh_token");
  t.token_type = text(o, "token_type");
  t.scope = text(o, "scope");
  auto expires_in = integer(o, "expires_in").value_or(0);
  t.expires_at = expires_in > 0 ? now + std::chrono::seconds(expires_in) : Clock::time_point::max();
  return t;
}

Result<VehiclePage> parse_vehicles_response(std::string_view body) {
  auto v = parse_json(body);
  if (!v) return v.error();
  if (!v->is_object()) return bad("expected a JSON object with \"response\"");
  const json::object& o = v->get_object();
  const json::value* response = member(o, "response");
  if (response == nullptr || !response->is_array()) return bad("\"response\" is not a list");
  VehiclePage page;
  for (const auto& item : response->get_array()) {
    if (item.is_object()) page.vehicles.push_back(vehicle_from(item.get_object()));
  }
  if (const json::value* p = member(o, "pagination"); p && p->is_object()) {
    if (auto next = integer(p->get_object(), "next")) page.next_page = static_cast<int>(*next);
  }
  return page;
}

Result<Vehicle> parse_vehicle_response(std::string_view body) {
  auto o = envelope_object(body);
  if (!o) return o.error();
  Vehicle v = vehicle_from(*o);
  if (v.vin.empty() && v.id == 0) return bad("vehicle without vin or id");
  return v;
}

Result<VehicleData> parse_vehicle_data_response(std::string_view body, signal::Timestamp received) {
  auto o = envelope_object(body);
  if (!o) return o.error();
  VehicleData data;
  data.vehicle = vehicle_from(*o);
  data.fields = map_vehicle_data(*o, received);
  data.raw_json = json::serialize(*o);
  return data;
}

Result<ConfigUpdate> parse_config_update_response(std::string_view body) {
  auto o = envelope_object(body);
  if (!o) return o.error();
  ConfigUpdate u;
  auto updated = integer(*o, "updated_vehicles");
  if (!updated) return bad("no updated_vehicles in the response");
  u.updated_vehicles = static_cast<int>(*updated);
  if (const json::value* skipped = member(*o, "skipped_vehicles");
      skipped && skipped->is_object()) {
    for (const auto& kv : skipped->get_object()) {
      u.skipped_vehicles[std::string(kv.key())] = strings(&kv.value());
    }
  }
  return u;
}

Result<TelemetryConfigStatus> parse_config_status_response(std::string_view body) {
  auto o = envelope_object(body);
  if (!o) return o.error();
  TelemetryConfigStatus s;
  s.synced = boolean(*o, "synced").value_or(false);
  s.config = config_from(member(*o, "config"));
  s.limit_reached = boolean(*o, "limit_reached").value_or(false);
  s.key_paired = boolean(*o, "key_paired").value_or(false);
  return s;
}

Result<std::vector<TelemetryError>> parse_telemetry_errors_response(std::string_view body) {
  auto r = envelope(body);
  if (!r) return r.error();
  const json::value* list = nullptr;
  if (r->is_array()) {
    list = &*r;
  } else if (r->is_object()) {
    list = member(r->get_object(), "fleet_telemetry_errors");
    if (list == nullptr) list = member(r->get_object(), "errors");
  }
  if (list == nullptr || list->is_null()) return std::vector<TelemetryError>{};
  if (!list->is_array()) return bad("fleet_telemetry_errors is not a list");
  std::vector<TelemetryError> out;
  for (const auto& item : list->get_array()) {
    if (item.is_object()) out.push_back(telemetry_error_from(item.get_object()));
  }
  return out;
}

Result<std::vector<std::string>> parse_error_vins_response(std::string_view body) {
  auto v = parse_json(body);
  if (!v) return v.error();
  const json::value* list = nullptr;
  if (v->is_array()) {
    list = &*v;
  } else if (v->is_object()) {
    const json::value* response = member(v->get_object(), "response");
    if (response == nullptr) return bad("no \"response\" in the body");
    if (response->is_array()) {
      list = response;
    } else if (response->is_object()) {
      list = member(response->get_object(), "fleet_telemetry_error_vins");
      if (list == nullptr) list = member(response->get_object(), "vins");
      if (list == nullptr) return bad("no fleet_telemetry_error_vins or vins in the response");
    } else if (response->is_null()) {
      return std::vector<std::string>{};
    }
  }
  if (list == nullptr || list->is_null()) return std::vector<std::string>{};
  if (!list->is_array()) return bad("error VINs are not a list");
  std::vector<std::string> out;
  for (const auto& item : list->get_array()) {
    if (item.is_string()) {
      out.emplace_back(item.get_string());
    } else if (item.is_object()) {  // tolerate [{"vin": …}]
      if (std::string vin = text(item.get_object(), "vin"); !vin.empty()) out.push_back(vin);
    }
  }
  return out;
}

Result<FleetStatus> parse_fleet_status_response(std::string_view body) {
  auto o = envelope_object(body);
  if (!o) return o.error();
  FleetStatus s;
  s.key_paired_vins = strings(member(*o, "key_paired_vins"));
  s.unpaired_vins = strings(member(*o, "unpaired_vins"));
  if (const json::value* info = member(*o, "vehicle_info"); info && info->is_object()) {
    for (const auto& kv : info->get_object()) {
      if (!kv.value().is_object()) continue;
      const json::object& io = kv.value().get_object();
      VehicleInfo vi;
      vi.firmware_version = text(io, "firmware_version");
      vi.fleet_telemetry_version = text(io, "fleet_telemetry_version");
      vi.vehicle_command_protocol_required = boolean(io, "vehicle_command_protocol_required");
      if (auto n = integer(io, "total_number_of_keys"))
        vi.total_number_of_keys = static_cast<int>(*n);
      vi.safety_screen_streaming_toggle_enabled =
          boolean(io, "safety_screen_streaming_toggle_enabled");
      s.vehicle_info.emplace(std::string(kv.key()), std::move(vi));
    }
  }
  return s;
}

std::string telemetry_config_json(const TelemetryConfig& c) {
  json::object o;
  o["hostname"] = c.hostname;
  o["port"] = c.port;
  if (!c.ca.empty()) o["ca"] = c.ca;
  if (c.exp) o["exp"] = *c.exp;
  if (c.prefer_typed) o["prefer_typed"] = *c.prefer_typed;
  if (!c.delivery_policy.empty()) o["delivery_policy"] = c.delivery_policy;
  if (!c.alert_types.empty()) {
    json::array a;
    for (const auto& t : c.alert_types) a.emplace_back(t);
    o["alert_types"] = std::move(a);
  }
  json::object fields;
  for (const auto& [name, f] : c.fields) {
    json::object fo;
    fo["interval_seconds"] = f.interval_seconds;
    if (f.minimum_delta) fo["minimum_delta"] = *f.minimum_delta;
    if (f.resend_interval_seconds) fo["resend_interval_seconds"] = *f.resend_interval_seconds;
    fields[name] = std::move(fo);
  }
  o["fields"] = std::move(fields);
  return json::serialize(o);
}

}  // namespace ts::fleet_api

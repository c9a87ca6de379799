#include "ingest/records.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>

namespace ts::ingest {

using signal::Errc;
using signal::make_error_code;
using signal::parse_time;
namespace {

namespace json = boost::json;

Result<json::value> parse(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec) return make_error_code(Errc::not_json);
  return v;
}

/// An optional RFC 3339 member: absent is fine, present must parse.
Result<std::optional<Timestamp>> time_member(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::optional<Timestamp>{};
  if (!v->is_string()) return make_error_code(Errc::unsupported_value);
  auto t = parse_time(v->get_string());
  if (!t) return make_error_code(Errc::unsupported_value);
  return std::optional<Timestamp>{*t};
}

Result<storage::Alert> alert_from(const json::value& v, std::string_view vin, std::string_view name,
                         Timestamp received_at) {
  const auto* o = v.if_object();
  if (!o) return make_error_code(Errc::unsupported_value);
  storage::Alert a{.vin = std::string(vin), .name = std::string(name), .received_at = received_at};
  auto started = time_member(*o, "StartedAt");
  if (!started) return started.error();
  // Absent: the receive time, so that occurrences of an alert without StartedAt stay distinct
  // rows instead of collapsing onto one key (vin, name, 0).
  a.started_at = started->value_or(received_at);
  auto ended = time_member(*o, "EndedAt");
  if (!ended) return ended.error();
  a.ended_at = *ended;
  if (const auto* aud = o->if_contains("Audiences"); aud && !aud->is_null()) {
    if (!aud->is_array()) return make_error_code(Errc::unsupported_value);
    for (const auto& x : aud->get_array()) {
      if (!x.is_string()) return make_error_code(Errc::unsupported_value);
    }
    a.audiences_json = json::serialize(*aud);
  }
  return a;
}

}  // namespace

Result<std::vector<storage::Alert>> parse_alerts(std::string_view vin, std::string_view name,
                                        std::string_view payload, bool history,
                                        Timestamp received_at) {
  auto v = parse(payload);
  if (!v) return v.error();
  std::vector<storage::Alert> out;
  if (history) {
    if (!v->is_array()) return make_error_code(Errc::unsupported_value);
    for (const auto& item : v->get_array()) {
      auto a = alert_from(item, vin, name, received_at);
      if (!a) return a.error();
      out.push_back(std::move(*a));
    }
  } else {
    auto a = alert_from(*v, vin, name, received_at);
    if (!a) return a.error();
    out.push_back(std::move(*a));
  }
  return out;
}

Result<storage::ConnectivityEvent> parse_connectivity(std::string_view vin, std::string_view payload,
                                             Timestamp received_at) {
  auto v = parse(payload);
  if (!v) return v.error();
  const auto* o = v->if_object();
  if (!o) return make_error_code(Errc::unsupported_value);
  const auto* id = o->if_contains("ConnectionId");
  const auto* status = o->if_contains("Status");
  if (!id || !id->is_string() || !status || !status->is_string()) {
    return make_error_code(Errc::unsupported_value);
  }
  auto created = time_member(*o, "CreatedAt");
  if (!created) return created.error();
  return storage::ConnectivityEvent{.vin = std::string(vin),
                           .connection_id = std::string(id->get_string()),
                           .status = std::string(status->get_string()),
                           .ts = created->value_or(received_at),
                           .received_at = received_at};
}

Result<storage::VehicleError> parse_vehicle_error(std::string_view vin, std::string_view name,
                                         std::string_view payload, Timestamp received_at) {
  auto v = parse(payload);
  if (!v) return v.error();
  const auto* o = v->if_object();
  if (!o) return make_error_code(Errc::unsupported_value);
  storage::VehicleError e{.vin = std::string(vin), .name = std::string(name), .received_at = received_at};
  if (const auto* body = o->if_contains("Body")) {
    if (!body->is_string()) return make_error_code(Errc::unsupported_value);
    e.body = body->get_string();
  }
  if (const auto* tags = o->if_contains("Tags"); tags && !tags->is_null()) {
    if (!tags->is_object()) return make_error_code(Errc::unsupported_value);
    e.tags_json = json::serialize(*tags);
  }
  auto created = time_member(*o, "CreatedAt");
  if (!created) return created.error();
  e.created_at = created->value_or(received_at);  // absent: as for alerts
  return e;
}

}  // namespace ts::ingest

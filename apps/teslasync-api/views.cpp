#include "views.hpp"

#include <cstdio>

namespace ts::api {
namespace {

void append_entry_fields(std::string& out, const signal::Value& v, signal::Timestamp ts,
                         signal::Timestamp received_at, signal::Source source) {
  out += "\"kind\":\"";
  out += signal::kind_name(v.kind);
  out += "\",\"value\":";
  signal::append_json(out, v);
  out += ",\"ts\":\"";
  out += signal::format_time(ts);
  out += "\",\"received_at\":\"";
  out += signal::format_time(received_at);
  out += "\",\"source\":\"";
  out += signal::source_name(source);
  out += '"';
}

void append_time_or_null(std::string& out, const std::optional<signal::Timestamp>& t) {
  if (!t) {
    out += "null";
    return;
  }
  out += '"';
  out += signal::format_time(*t);
  out += '"';
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void append_signal(std::string& out, const signal::Signal& s, bool with_vin) {
  out += '{';
  if (with_vin) {
    out += "\"vin\":";
    append_json_string(out, s.vin);
    out += ',';
  }
  out += "\"name\":";
  append_json_string(out, s.name);
  out += ',';
  append_entry_fields(out, s.value, s.ts, s.received_at, s.source);
  out += '}';
}

std::string signal_change_json(const signal::Signal& s) {
  std::string out;
  out.reserve(192);
  append_signal(out, s, true);
  return out;
}

std::string vehicle_state_json(std::string_view vin,
                               const std::vector<std::pair<std::string, state::Entry>>& entries) {
  std::string out = "{\"vin\":";
  append_json_string(out, vin);
  out += ",\"signals\":{";
  bool first = true;
  for (const auto& [name, e] : entries) {
    if (!first) out += ',';
    first = false;
    append_json_string(out, name);
    out += ":{";
    append_entry_fields(out, e.value, e.ts, e.received_at, e.source);
    out += '}';
  }
  out += "}}";
  return out;
}

std::string vehicle_update_json(std::string_view vin, const std::vector<signal::Signal>& changed) {
  std::string out = "{\"vin\":";
  append_json_string(out, vin);
  signal::Timestamp newest = 0;
  for (const auto& s : changed) newest = std::max(newest, s.ts);
  out += ",\"ts\":\"";
  out += signal::format_time(newest);
  out += "\",\"signals\":{";
  bool first = true;
  for (const auto& s : changed) {
    if (!first) out += ',';
    first = false;
    append_json_string(out, s.name);
    out += ':';
    signal::append_json(out, s.value);
  }
  out += "}}";
  return out;
}

std::string alert_json(const signal::Alert& a) {
  std::string out = "{\"vin\":";
  append_json_string(out, a.vin);
  out += ",\"name\":";
  append_json_string(out, a.name);
  out += ",\"started_at\":";
  append_time_or_null(out, a.started_at ? std::optional(a.started_at) : std::nullopt);
  out += ",\"ended_at\":";
  append_time_or_null(out, a.ended_at);
  out += ",\"active\":";
  out += a.ended_at ? "false" : "true";
  out += ",\"audiences\":[";
  for (std::size_t i = 0; i < a.audiences.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, a.audiences[i]);
  }
  out += "],\"received_at\":\"" + signal::format_time(a.received_at) + "\"}";
  return out;
}

std::string connectivity_json(const signal::ConnectivityEvent& c) {
  std::string out = "{\"vin\":";
  append_json_string(out, c.vin);
  out += ",\"connection_id\":";
  append_json_string(out, c.connection_id);
  out += ",\"status\":";
  append_json_string(out, c.status);
  out += ",\"ts\":\"" + signal::format_time(c.ts) + "\",\"received_at\":\"" +
         signal::format_time(c.received_at) + "\"}";
  return out;
}

std::string vehicle_error_json(const signal::VehicleError& e) {
  std::string out = "{\"vin\":";
  append_json_string(out, e.vin);
  out += ",\"name\":";
  append_json_string(out, e.name);
  out += ",\"body\":";
  append_json_string(out, e.body);
  out += ",\"tags\":" + e.tags_json + ",\"created_at\":";
  append_time_or_null(out, e.created_at);
  out += ",\"received_at\":\"" + signal::format_time(e.received_at) + "\"}";
  return out;
}

}  // namespace ts::api

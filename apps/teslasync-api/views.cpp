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
  signal::append_time(out, ts);
  out += "\",\"received_at\":\"";
  signal::append_time(out, received_at);
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
  signal::append_time(out, *t);
  out += '"';
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  // Names, VINs and most values need no escaping: copy runs of plain characters at once.
  std::size_t plain = 0;
  while (plain < s.size()) {
    const auto c = static_cast<unsigned char>(s[plain]);
    if (c < 0x20 || c == '"' || c == '\\') break;
    ++plain;
  }
  out.append(s.data(), plain);
  for (unsigned char c : s.substr(plain)) {
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
                               const std::vector<std::pair<std::string, state::Entry>>& entries,
                               const state::VehicleClock* clock) {
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
  out += '}';
  if (clock) {
    auto time_or_null = [&out](signal::Timestamp t) {
      if (t == 0) {
        out += "null";
      } else {
        out += '"';
        signal::append_time(out, t);
        out += '"';
      }
    };
    out += ",\"clock\":{\"future_signals\":" + std::to_string(clock->future_signals) +
           ",\"last_future_ts\":";
    time_or_null(clock->last_future_ts);
    out += ",\"last_future_received_at\":";
    time_or_null(clock->last_future_received_at);
    out += ",\"same_time_conflicts\":" + std::to_string(clock->same_time_conflicts) + '}';
  }
  out += '}';
  return out;
}

std::string vehicle_update_json(std::string_view vin, const std::vector<signal::Signal>& changed) {
  std::string out = "{\"vin\":";
  append_json_string(out, vin);
  signal::Timestamp newest = 0;
  for (const auto& s : changed) newest = std::max(newest, s.ts);
  out += ",\"ts\":\"";
  signal::append_time(out, newest);
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

std::string alert_json(const storage::Alert& a) {
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
  out += ",\"audiences\":" + a.audiences_json;
  out += ",\"received_at\":\"" + signal::format_time(a.received_at) + "\"}";
  return out;
}

std::string connectivity_json(const storage::ConnectivityEvent& c) {
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

std::string vehicle_error_json(const storage::VehicleError& e) {
  std::string out = "{\"vin\":";
  append_json_string(out, e.vin);
  out += ",\"name\":";
  append_json_string(out, e.name);
  out += ",\"body\":";
  append_json_string(out, e.body);
  out += ",\"tags\":" + e.tags_json + ",\"created_at\":";
  append_time_or_null(out, e.created_at ? std::optional(e.created_at) : std::nullopt);
  out += ",\"received_at\":\"" + signal::format_time(e.received_at) + "\"}";
  return out;
}

namespace {

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    }
    i += n;
  }
  return true;
}

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                 (static_cast<unsigned char>(in[i + 1]) << 8) | static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace

std::string dead_letter_json(const storage::DeadLetter& d) {
  std::string out = "{\"id\":" + std::to_string(d.id) + ",\"received_at\":\"" +
                    signal::format_time(d.received_at) + "\",\"topic\":";
  append_json_string(out, d.topic);
  out += ",\"vin\":";
  append_json_string(out, d.vin);
  out += ",\"reason\":";
  append_json_string(out, d.reason);
  out += ",\"payload\":";
  if (valid_utf8(d.payload)) {
    append_json_string(out, d.payload);
  } else {
    out += "null";
  }
  out += ",\"payload_base64\":\"" + base64(d.payload) + "\"}";
  return out;
}

std::string fleet_error_json(const storage::FleetError& e) {
  std::string out = "{\"vin\":";
  append_json_string(out, e.vin);
  out += ",\"error_name\":";
  append_json_string(out, e.error_name);
  out += ",\"error\":";
  append_json_string(out, e.error);
  out += ",\"created_at\":\"" + signal::format_time(e.created_at) + "\",\"name\":";
  append_json_string(out, e.name);
  out += ",\"txid\":";
  append_json_string(out, e.txid);
  out += ",\"fetched_at\":\"" + signal::format_time(e.fetched_at) + "\"}";
  return out;
}

std::string error_vin_json(const storage::ErrorVin& e) {
  std::string out = "{\"vin\":";
  append_json_string(out, e.vin);
  out += ",\"active\":";
  out += e.active ? "true" : "false";
  out += ",\"first_seen_at\":\"" + signal::format_time(e.first_seen_at) +
         "\",\"last_seen_at\":\"" + signal::format_time(e.last_seen_at) + "\",\"resolved_at\":";
  append_time_or_null(out, e.resolved_at);
  out += '}';
  return out;
}

std::string json_array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += items[i];
  }
  out += ']';
  return out;
}

}  // namespace ts::api

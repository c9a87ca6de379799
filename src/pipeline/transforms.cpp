#include "pipeline/transforms.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace ts::pipeline {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_blank(char c) { return c == ' ' || c == '\t'; }

// A decimal float as the location format allows it: optional sign, digits with an optional
// fraction (or a bare fraction), optional exponent. Advances `i`; returns the parsed value.
std::optional<double> scan_float(std::string_view s, size_t& i) {
  const size_t start = i;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  size_t digits = 0;
  while (i < s.size() && is_digit(s[i])) ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && is_digit(s[i])) ++i, ++digits;
  }
  if (digits == 0) return std::nullopt;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    size_t exp_digits = 0;
    while (j < s.size() && is_digit(s[j])) ++j, ++exp_digits;
    if (exp_digits > 0) i = j;
  }
  std::string token(s.substr(start, i - start));
  const double v = std::strtod(token.c_str(), nullptr);
  if (std::isinf(v)) return std::nullopt;  // out of range: Go's ParseFloat fails too
  return v;
}

size_t skip_blanks(std::string_view s, size_t i) {
  while (i < s.size() && is_blank(s[i])) ++i;
  return i;
}

}  // namespace

std::optional<LatLon> parse_location(std::string_view s) {
  size_t i = 0;
  if (s.empty() || s[i++] != '(') return std::nullopt;
  i = skip_blanks(s, i);
  auto lat = scan_float(s, i);
  if (!lat) return std::nullopt;
  size_t j = skip_blanks(s, i);
  if (j == i || j + 1 >= s.size() || s[j + 1] != ',') return std::nullopt;
  const char q1 = s[j];
  i = j + 2;
  j = skip_blanks(s, i);
  if (j == i) return std::nullopt;
  i = j;
  auto lon = scan_float(s, i);
  if (!lon) return std::nullopt;
  j = skip_blanks(s, i);
  if (j == i || j + 1 >= s.size() || s[j + 1] != ')') return std::nullopt;
  const char q2 = s[j];
  if ((q1 != 'N' && q1 != 'S') || (q2 != 'E' && q2 != 'W')) return std::nullopt;
  return LatLon{q1 == 'S' ? -*lat : *lat, q2 == 'W' ? -*lon : *lon};
}

std::optional<std::string> normalize_scientific(std::string_view s) {
  // ^[+-]?(\d*\.\d+|\d+\.\d*)([eE][+-]?\d+)$
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && is_digit(s[i])) ++i, ++int_digits;
  if (i >= s.size() || s[i] != '.') return std::nullopt;
  ++i;
  while (i < s.size() && is_digit(s[i])) ++i, ++frac_digits;
  if (int_digits + frac_digits == 0) return std::nullopt;
  if (i >= s.size() || (s[i] != 'e' && s[i] != 'E')) return std::nullopt;
  ++i;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  size_t exp_digits = 0;
  while (i < s.size() && is_digit(s[i])) ++i, ++exp_digits;
  if (exp_digits == 0 || i != s.size()) return std::nullopt;

  // Parsed as a 32-bit float (correctly rounded); overflow keeps the string, underflow does not.
  std::string token(s);
  errno = 0;
  const float f = std::strtof(token.c_str(), nullptr);
  if (std::isinf(f)) return std::nullopt;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.5f", static_cast<double>(f));
  return std::string(buf);
}

void transform_vehicle_data(wire::vehicle_data::Payload& payload, std::string_view vin) {
  namespace vd = wire::vehicle_data;
  payload.set_vin(std::string(vin));
  for (auto& datum : *payload.mutable_data()) {
    if (datum.key() != vd::Location) continue;
    // spec §7.2.2: only the first Location datum is looked at.
    if (datum.has_value() && datum.value().value_case() == vd::Value::kStringValue &&
        !datum.value().string_value().empty()) {
      if (auto loc = parse_location(datum.value().string_value())) {
        auto* lv = datum.mutable_value()->mutable_location_value();
        lv->set_latitude(loc->latitude);
        lv->set_longitude(loc->longitude);
      }
    }
    break;
  }
  for (auto& datum : *payload.mutable_data()) {
    if (!datum.has_value() || datum.value().value_case() != vd::Value::kStringValue) continue;
    if (auto fixed = normalize_scientific(datum.value().string_value())) {
      datum.mutable_value()->set_string_value(std::move(*fixed));
    }
  }
}

void transform_alerts(wire::vehicle_alerts::VehicleAlerts& alerts, std::string_view vin) {
  alerts.set_vin(std::string(vin));
  // spec §7.2.4: seconds >= 315576000000 are milliseconds stored in the seconds field.
  constexpr std::int64_t kMillisThreshold = 315576000000;
  auto fix = [](google::protobuf::Timestamp* ts) {
    if (ts->seconds() >= kMillisThreshold) {
      const std::int64_t ms = ts->seconds();
      ts->set_seconds(ms / 1000);
      ts->set_nanos(static_cast<std::int32_t>(ms % 1000) * 1'000'000);
    }
  };
  for (auto& alert : *alerts.mutable_alerts()) {
    if (alert.has_started_at()) fix(alert.mutable_started_at());
    if (alert.has_ended_at()) fix(alert.mutable_ended_at());
  }
}

}  // namespace ts::pipeline

#include "signal/signal.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <unordered_set>

#include "telemetry/vehicle_data.pb.h"

namespace ts::signal {
namespace {

constexpr std::array<std::string_view, kMaxKind + 1> kKindNames = {
    "invalid", "bool", "int", "float", "string", "enum", "location", "doors", "tires", "time"};

constexpr std::array<std::string_view, 6> kDoorKeys = {
    "DriverFront", "DriverRear", "PassengerFront", "PassengerRear", "TrunkFront", "TrunkRear"};
constexpr std::array<std::string_view, 10> kTireKeys = {
    "front_left",          "front_right",          "rear_left",
    "rear_right",          "semi_middle_axle_left_2", "semi_middle_axle_right_2",
    "semi_rear_axle_left", "semi_rear_axle_right", "semi_rear_axle_left_2",
    "semi_rear_axle_right_2"};

/// Every value name of every enum of vehicle_data.proto ("ShiftStateD", …), built once.
const std::unordered_set<std::string>& enum_value_names() {
  static const std::unordered_set<std::string> names = [] {
    std::unordered_set<std::string> out;
    const auto* file = telemetry::vehicle_data::Payload::descriptor()->file();
    for (int e = 0; e < file->enum_type_count(); ++e) {
      const auto* en = file->enum_type(e);
      if (en->name() == "Field") continue;  // field names are not values
      for (int v = 0; v < en->value_count(); ++v) out.insert(en->value(v)->name());
    }
    return out;
  }();
  return names;
}

/// The value names of the Field enum, built once.
const std::unordered_set<std::string_view>& field_names() {
  static const std::unordered_set<std::string_view> names = [] {
    std::unordered_set<std::string_view> out;
    const auto* en = telemetry::vehicle_data::Field_descriptor();
    for (int v = 0; v < en->value_count(); ++v) out.insert(en->value(v)->name());
    return out;
  }();
  return names;
}

template <std::size_t N>
bool keys_within(const boost::json::object& o, const std::array<std::string_view, N>& keys) {
  for (const auto& kv : o) {
    bool known = false;
    for (auto k : keys) known = known || kv.key() == k;
    if (!known || !kv.value().is_bool()) return false;
  }
  return true;
}

/// "H:MM:SS" as published for Value.time_value (hour may be negative or wide, spec §8.8).
bool looks_like_time_of_day(std::string_view s) {
  std::size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  int groups = 0;
  while (i <= s.size()) {
    std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return false;
    ++groups;
    if (i == s.size()) break;
    if (s[i] != ':') return false;
    ++i;
  }
  return groups == 3;
}

Result<Value> from_json(std::string_view field, const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::null:
      return Value::invalid();
    case boost::json::kind::bool_:
      return Value::boolean(v.get_bool());
    case boost::json::kind::int64:
      return Value::int64(v.get_int64());
    case boost::json::kind::uint64:
      return Value::float64(static_cast<double>(v.get_uint64()));
    case boost::json::kind::double_:
      return Value::float64(v.get_double());
    case boost::json::kind::string: {
      std::string s(v.get_string());
      if (enum_value_names().contains(s)) return Value::enumeration(std::move(s));
      if (looks_like_time_of_day(s)) return Value::time_of_day(std::move(s));
      return Value::string(std::move(s));
    }
    case boost::json::kind::object: {
      const auto& o = v.get_object();
      if (o.empty()) {
        // Tires with no warning set publish {}; any other empty object is a datum without a
        // value (spec §8.8: an empty Value marshals to {}).
        if (field.starts_with("Tpms") && field.ends_with("Warnings")) return Value::tires("{}");
        return Value::invalid();
      }
      if (o.size() == 2 && o.contains("latitude") && o.contains("longitude") &&
          o.at("latitude").is_number() && o.at("longitude").is_number()) {
        return Value::location(o.at("latitude").to_number<double>(),
                               o.at("longitude").to_number<double>());
      }
      if (o.size() == kDoorKeys.size() && keys_within(o, kDoorKeys)) {
        return Value::doors(boost::json::serialize(o));
      }
      if (keys_within(o, kTireKeys)) return Value::tires(boost::json::serialize(o));
      return make_error_code(Errc::unsupported_value);
    }
    case boost::json::kind::array:
      return make_error_code(Errc::unsupported_value);
  }
  return make_error_code(Errc::unsupported_value);
}

// The parsed document lives only while a payload is decoded (values are copied out), so it is
// built on a stack buffer: no heap allocation for a typical message, which matters at 100k+ a
// second.
struct ParseArena {
  unsigned char buffer[4096];
  boost::json::monotonic_resource resource{buffer, sizeof buffer};
};

Result<boost::json::value> parse(std::string_view text, ParseArena& arena) {
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec, &arena.resource);
  if (ec) return make_error_code(Errc::not_json);
  return v;
}

void append_number(std::string& out, double d) {
  if (!std::isfinite(d)) {  // JSON has no NaN/Inf
    out += "null";
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  out.append(buf, end);
}

// Boost's error_category has a protected non-virtual destructor by design.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class ErrorCategory final : public boost::system::error_category {
 public:
  constexpr ErrorCategory() noexcept : error_category(0x7473736967303031ULL) {}
  const char* name() const noexcept override { return "signal"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::not_json: return "payload is not JSON";
      case Errc::unsupported_value: return "JSON value matches no telemetry value type";
      case Errc::bad_event_time: return "envelope \"ts\" is missing or not RFC 3339";
      case Errc::bad_record: return "record message is not {\"ts\":…,\"data\":{…}}";
    }
    return "unknown signal error";
  }
};
#pragma GCC diagnostic pop

// Howard Hinnant's days_from_civil.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

bool is_field_name(std::string_view name) noexcept { return field_names().contains(name); }

std::string_view kind_name(Kind kind) noexcept {
  auto i = static_cast<std::size_t>(kind);
  return i < kKindNames.size() ? kKindNames[i] : std::string_view("invalid");
}

std::optional<Kind> parse_kind_name(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kKindNames.size(); ++i) {
    if (kKindNames[i] == name) return static_cast<Kind>(i);
  }
  return std::nullopt;
}

std::optional<Kind> kind_from_int(int value) noexcept {
  if (value < 0 || value > kMaxKind) return std::nullopt;
  return static_cast<Kind>(value);
}

Value Value::location(double latitude, double longitude) {
  Value v{.kind = Kind::Location, .number = latitude, .number2 = longitude};
  v.text = "{\"latitude\":";
  append_number(v.text, latitude);
  v.text += ",\"longitude\":";
  append_number(v.text, longitude);
  v.text += '}';
  return v;
}

void append_json(std::string& out, const Value& value) {
  switch (value.kind) {
    case Kind::Invalid: out += "null"; return;
    case Kind::Bool: out += value.integer != 0 ? "true" : "false"; return;
    case Kind::Int: {
      char buf[24];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value.integer);
      out.append(buf, end);
      return;
    }
    case Kind::Float: append_number(out, value.number); return;
    case Kind::String:
    case Kind::Enum:
    case Kind::Time: out += boost::json::serialize(boost::json::string(value.text)); return;
    case Kind::Location:
    case Kind::Doors:
    case Kind::Tires: out += value.text; return;
  }
  out += "null";
}

std::string to_json(const Value& value) {
  std::string out;
  append_json(out, value);
  return out;
}

std::string_view source_name(Source source) noexcept {
  return source == Source::Poll ? "poll" : "stream";
}

std::optional<Source> parse_source_name(std::string_view name) noexcept {
  if (name == "stream") return Source::Stream;
  if (name == "poll") return Source::Poll;
  return std::nullopt;
}

Result<Value> decode_json_value(std::string_view field, std::string_view json) {
  ParseArena arena;
  auto v = parse(json, arena);
  if (!v) return v.error();
  return from_json(field, *v);
}

Result<Decoded> decode_mqtt_payload(std::string_view field, std::string_view payload) {
  ParseArena arena;
  auto v = parse(payload, arena);
  if (!v) return v.error();
  // The envelope is the only object with a "value" key: no telemetry value type has one.
  if (const auto* o = v->if_object(); o && o->contains("value")) {
    const auto* ts = o->if_contains("ts");
    if (!ts || !ts->is_string() || o->size() != 2) return make_error_code(Errc::bad_event_time);
    auto t = parse_time(ts->get_string());
    if (!t) return make_error_code(Errc::bad_event_time);
    auto value = from_json(field, o->at("value"));
    if (!value) return value.error();
    return Decoded{std::move(*value), *t};
  }
  auto value = from_json(field, *v);
  if (!value) return value.error();
  return Decoded{std::move(*value), std::nullopt};
}

Result<DecodedRecord> decode_record_payload(std::string_view payload) {
  ParseArena arena;
  auto v = parse(payload, arena);
  if (!v) return v.error();
  const auto* o = v->if_object();
  if (!o) return make_error_code(Errc::bad_record);
  const auto* ts = o->if_contains("ts");
  if (!ts || !ts->is_string()) return make_error_code(Errc::bad_event_time);
  auto t = parse_time(ts->get_string());
  if (!t) return make_error_code(Errc::bad_event_time);
  const auto* data = o->if_contains("data");
  if (!data || !data->is_object() || data->get_object().empty() || o->size() != 2) {
    return make_error_code(Errc::bad_record);
  }
  DecodedRecord out{.event_time = *t, .fields = {}};
  out.fields.reserve(data->get_object().size());
  for (const auto& [key, json] : data->get_object()) {
    auto value = from_json(key, json);
    if (!value) return value.error();
    out.fields.push_back({std::string(key), std::move(*value)});
  }
  return out;
}

const boost::system::error_category& category() noexcept {
  static const ErrorCategory c;
  return c;
}

void append_time(std::string& out, Timestamp ts) {
  std::int64_t secs = ts / 1'000'000;
  std::int64_t micros = ts % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    --secs;
  }
  std::int64_t days = secs / 86400, rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  // civil_from_days
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
  if (y < 0 || y > 9999) {  // outside RFC 3339's four-digit years: rare, keep it simple
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%06lldZ",
                  static_cast<long long>(y), m, d, static_cast<long long>(rem / 3600),
                  static_cast<long long>(rem / 60 % 60), static_cast<long long>(rem % 60),
                  static_cast<long long>(micros));
    out += buf;
    return;
  }
  // "YYYY-MM-DDTHH:MM:SS.ffffffZ" by hand: on every SSE event and API row, snprintf showed up
  // in profiles.
  char buf[27];
  auto put = [&buf](std::size_t at, std::int64_t v, int digits) {
    for (int i = digits - 1; i >= 0; --i, v /= 10) buf[at + static_cast<std::size_t>(i)] = static_cast<char>('0' + v % 10);
  };
  put(0, y, 4);
  buf[4] = '-';
  put(5, m, 2);
  buf[7] = '-';
  put(8, d, 2);
  buf[10] = 'T';
  put(11, rem / 3600, 2);
  buf[13] = ':';
  put(14, rem / 60 % 60, 2);
  buf[16] = ':';
  put(17, rem % 60, 2);
  buf[19] = '.';
  put(20, micros, 6);
  buf[26] = 'Z';
  out.append(buf, sizeof buf);
}

std::string format_time(Timestamp ts) {
  std::string out;
  append_time(out, ts);
  return out;
}

std::optional<Timestamp> parse_time(std::string_view s) noexcept {
  int y, mo, d, h, mi, se;
  if (!digits(s, 0, 4, y) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' ||
      !digits(s, 17, 2, se)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return std::nullopt;
  std::size_t i = 19;
  std::int64_t micros = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    std::size_t start = i;
    int scale = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (scale < 6) {
        micros = micros * 10 + (s[i] - '0');
        ++scale;
      }
      ++i;
    }
    if (i == start) return std::nullopt;
    for (; scale < 6; ++scale) micros *= 10;
  }
  std::int64_t offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!digits(s, i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' ||
        !digits(s, i + 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = (s[i] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  std::int64_t secs = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 +
                      h * 3600 + mi * 60 + se - offset;
  return secs * 1'000'000 + micros;
}

Timestamp now() noexcept {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace ts::signal

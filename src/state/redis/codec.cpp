#include "state/redis/codec.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <limits>

#include "state/redis/errc.hpp"

namespace ts::state::redis {
namespace {

using signal::Kind;
using signal::Value;

constexpr std::string_view kKeyInfix = "vehicle:";
constexpr std::string_view kKeySuffix = ":signals";

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

std::optional<std::int64_t> as_int64(const boost::json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() &&
      v.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return static_cast<std::int64_t>(v.get_uint64());
  }
  return std::nullopt;
}

std::optional<Value> value_of(Kind kind, const boost::json::value& v) {
  switch (kind) {
    case Kind::Invalid:
      return Value::invalid();
    case Kind::Bool:
      if (!v.is_bool()) return std::nullopt;
      return Value::boolean(v.get_bool());
    case Kind::Int: {
      auto i = as_int64(v);
      if (!i) return std::nullopt;
      return Value::int64(*i);
    }
    case Kind::Float:
      if (v.is_null()) return Value::float64(std::numeric_limits<double>::quiet_NaN());
      if (!v.is_number()) return std::nullopt;
      return Value::float64(v.to_number<double>());
    case Kind::String:
    case Kind::Enum:
    case Kind::Time:
      if (!v.is_string()) return std::nullopt;
      return Value{.kind = kind, .text = std::string(v.get_string())};
    case Kind::Location: {
      const auto* o = v.if_object();
      if (o == nullptr) return std::nullopt;
      const auto* lat = o->if_contains("latitude");
      const auto* lon = o->if_contains("longitude");
      auto number = [](const boost::json::value* n) {
        if (n == nullptr) return std::optional<double>();
        if (n->is_null()) return std::optional<double>(std::numeric_limits<double>::quiet_NaN());
        if (!n->is_number()) return std::optional<double>();
        return std::optional<double>(n->to_number<double>());
      };
      auto la = number(lat), lo = number(lon);
      if (!la || !lo) return std::nullopt;
      return Value::location(*la, *lo);
    }
    case Kind::Doors:
    case Kind::Tires:
      if (!v.is_object()) return std::nullopt;
      return Value{.kind = kind, .text = boost::json::serialize(v)};
  }
  return std::nullopt;
}

}  // namespace

std::string vehicle_key(std::string_view prefix, std::string_view vin) {
  std::string key;
  key.reserve(prefix.size() + kKeyInfix.size() + vin.size() + kKeySuffix.size());
  key.append(prefix).append(kKeyInfix).append(vin).append(kKeySuffix);
  return key;
}

std::optional<std::string_view> vin_of_key(std::string_view prefix, std::string_view key) {
  if (key.size() <= prefix.size() + kKeyInfix.size() + kKeySuffix.size() ||
      !key.starts_with(prefix) || key.substr(prefix.size(), kKeyInfix.size()) != kKeyInfix ||
      !key.ends_with(kKeySuffix)) {
    return std::nullopt;
  }
  key.remove_prefix(prefix.size() + kKeyInfix.size());
  key.remove_suffix(kKeySuffix.size());
  return key;
}

void append_value(std::string& out, const signal::Signal& s) {
  out += "{\"ts\":";
  append_int(out, s.ts);
  out += ",\"r\":";
  append_int(out, s.received_at);
  out += ",\"k\":";
  append_int(out, static_cast<int>(s.value.kind));
  out += ",\"s\":\"";
  out += signal::source_name(s.source);
  out += "\",\"v\":";
  signal::append_json(out, s.value);
  out += '}';
}

std::string encode_value(const signal::Signal& s) {
  std::string out;
  out.reserve(64 + s.value.text.size());
  append_value(out, s);
  return out;
}

Result<signal::Signal> decode_value(std::string_view vin, std::string_view name,
                                    std::string_view json) {
  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(json, ec);
  const auto* o = ec ? nullptr : doc.if_object();
  if (o == nullptr) return make_error_code(errc::bad_value);
  const auto* ts = o->if_contains("ts");
  const auto* r = o->if_contains("r");
  const auto* k = o->if_contains("k");
  const auto* s = o->if_contains("s");
  const auto* v = o->if_contains("v");
  if (!ts || !r || !k || !s || !v || !s->is_string()) return make_error_code(errc::bad_value);
  auto ts_value = as_int64(*ts);
  auto r_value = as_int64(*r);
  auto kind_number = as_int64(*k);
  if (!ts_value || !r_value || !kind_number || *kind_number < 0 ||
      *kind_number > signal::kMaxKind) {
    return make_error_code(errc::bad_value);
  }
  auto kind = signal::kind_from_int(static_cast<int>(*kind_number));
  auto source = signal::parse_source_name(s->get_string());
  if (!kind || !source) return make_error_code(errc::bad_value);
  auto value = value_of(*kind, *v);
  if (!value) return make_error_code(errc::bad_value);
  return signal::Signal{.vin = std::string(vin),
                        .name = std::string(name),
                        .ts = *ts_value,
                        .received_at = *r_value,
                        .source = *source,
                        .value = std::move(*value)};
}

}  // namespace ts::state::redis

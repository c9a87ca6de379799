#include "config.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <sstream>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>

namespace ts::server {
namespace json = boost::json;
namespace {

// ---------------------------------------------------------------------------------------------
// Small helpers

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
  return out;
}

// Go encoding/json matches object keys to struct fields case-insensitively (spec §10.1).
bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return ascii_lower(x) == ascii_lower(y);
         });
}

std::string join_path(std::string_view prefix, std::string_view name) {
  return prefix.empty() ? std::string(name) : fmt::format("{}.{}", prefix, name);
}

std::string_view parent_of(std::string_view path) {
  const auto dot = path.rfind('.');
  return dot == std::string_view::npos ? std::string_view{} : path.substr(0, dot);
}

std::string_view leaf_of(std::string_view path) {
  const auto dot = path.rfind('.');
  return dot == std::string_view::npos ? path : path.substr(dot + 1);
}

std::string join_names(std::span<const Dispatcher> dispatchers, std::string_view separator) {
  std::string out;
  for (const auto dispatcher : dispatchers) {
    if (!out.empty()) out += separator;
    out += to_string(dispatcher);
  }
  return out;
}

// A short, readable rendering of a JSON value for "(got ...)".
std::string describe(const json::value& value) {
  switch (value.kind()) {
    case json::kind::object:
      return "an object";
    case json::kind::array:
      return "a list";
    case json::kind::double_: {
      std::string text = fmt::format("{}", value.get_double());
      if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
      return text;
    }
    case json::kind::string: {
      std::string text = json::serialize(value);
      constexpr std::size_t kMax = 60;
      if (text.size() > kMax) text = text.substr(0, kMax) + "...\"";
      return text;
    }
    default:
      return json::serialize(value);
  }
}

[[noreturn]] void fail(std::string_view key, std::string_view reason) {
  throw ConfigError(std::string(key), fmt::format("{}: {}", key, reason));
}

[[noreturn]] void fail_got(std::string_view key, std::string_view requirement,
                           const json::value& got) {
  fail(key, fmt::format("{} (got {})", requirement, describe(got)));
}

std::string errno_text(int error) {
  return std::error_code(error, std::generic_category()).message();
}

// A file named by a key must exist and be readable by this process.
void check_readable_file(std::string_view key, const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    fail(key, fmt::format("cannot read \"{}\": it is a directory", path));
  }
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    fail(key, fmt::format("cannot read \"{}\": {}", path, errno_text(errno)));
  }
  std::fclose(file);
}

// ---------------------------------------------------------------------------------------------
// Dispatcher names (spec §8.1)

struct DispatcherInfo {
  Dispatcher id;
  std::string_view name;
  std::string_view display;  // as in the reference's "expected <display> to be configured"
  bool needs_section;        // the logger needs no config block
};

constexpr std::array<DispatcherInfo, 7> kDispatcherInfo{{
    {Dispatcher::Kafka, "kafka", "Kafka", true},
    {Dispatcher::Kinesis, "kinesis", "Kinesis", true},
    {Dispatcher::Pubsub, "pubsub", "Pubsub", true},
    {Dispatcher::Zmq, "zmq", "ZMQ", true},
    {Dispatcher::Mqtt, "mqtt", "MQTT", true},
    {Dispatcher::Redis, "redis", "Redis", true},
    {Dispatcher::Logger, "logger", "Logger", false},
}};

const DispatcherInfo& info_of(Dispatcher dispatcher) {
  return kDispatcherInfo[static_cast<std::size_t>(dispatcher)];
}

// ---------------------------------------------------------------------------------------------
// The key table machinery

// How a key relates to the reference server; shown in the docs.
enum class Origin {
  Reference,  // same key, same meaning
  Changed,    // same key, different behaviour here (documented in its description)
  Ignored,    // reference key that this server accepts and ignores
  Extension,  // ours
};

std::string_view to_string(Origin origin) {
  switch (origin) {
    case Origin::Reference:
      return "reference";
    case Origin::Changed:
      return "reference, changed";
    case Origin::Ignored:
      return "reference, ignored";
    case Origin::Extension:
      return "extension";
  }
  return "";
}

enum class Kind { Bool, Int, String, StringList, Section, Opaque, Custom };

struct KeyOptions {
  std::int64_t min = 0;
  std::optional<std::int64_t> max;   // unset: the C++ type's maximum
  bool zero_means_default = false;   // ints: 0 keeps the default; strings: "" keeps it
  bool path = false;                 // a file path (docs)
  std::string_view unit;             // docs: "ms", "s", "ns"
  std::string_view warn_if_present;  // Opaque sections: the warning when the key is set
};

struct ParseState;
struct KeySpec;
using AssignFn = void (*)(Config&, const json::value&, const KeySpec&, ParseState&);
using RenderDefaultFn = std::string (*)(Config&, const KeySpec&);

// One key of the table. Built once; read by the parser and by config_reference_markdown().
struct KeySpec {
  std::string_view path;
  Kind kind = Kind::Custom;
  Origin origin = Origin::Reference;
  std::string_view description;
  KeyOptions options;
  std::int64_t max = kInt64Max;   // Int and Custom ints: the resolved upper bound
  bool bounded = false;           // max was given (else "≥ min" in messages)
  std::string_view type_text;     // Custom and Opaque only
  std::string_view default_text;  // Custom and Opaque only
  AssignFn assign = nullptr;
  RenderDefaultFn render_default = nullptr;
};

// Everything the walk collects besides the Config itself; cross-key checks run on it afterwards.
struct ParseState {
  const ConfigOptions* options = nullptr;
  std::vector<ConfigWarning> warnings;
  std::set<std::string, std::less<>> seen_sections;  // section paths present and not null
  std::map<std::string, std::vector<std::string>> records;
  std::map<std::string, std::string> reliable_ack_sources;
  std::optional<std::int64_t> interval_seconds;
  std::optional<std::int64_t> interval_nanoseconds;

  void warn(std::string key, std::string message) {
    warnings.push_back({std::move(key), std::move(message)});
  }
  bool seen(std::string_view section) const { return seen_sections.contains(section); }
  bool supported(Dispatcher dispatcher) const {
    const auto& set = options->supported_dispatchers;
    return std::find(set.begin(), set.end(), dispatcher) != set.end();
  }
};

template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};
template <class T>
struct IsDuration : std::false_type {};
template <class Rep, class Period>
struct IsDuration<std::chrono::duration<Rep, Period>> : std::true_type {};

template <class Leaf>
constexpr bool kIsIntLeaf =
    (std::is_integral_v<Leaf> && !std::is_same_v<Leaf, bool>) || IsDuration<Leaf>::value;

// Follows a chain of member pointers from a Config, creating optional sections on the way.
template <auto Member, auto... Rest, class Object>
auto& resolve(Object& object) {
  auto& member = object.*Member;
  if constexpr (sizeof...(Rest) == 0) {
    return member;
  } else if constexpr (IsOptional<std::remove_cvref_t<decltype(member)>>::value) {
    if (!member) member.emplace();
    return resolve<Rest...>(*member);
  } else {
    return resolve<Rest...>(member);
  }
}

template <class Leaf>
constexpr std::int64_t type_max() {
  if constexpr (IsDuration<Leaf>::value) {
    return static_cast<std::int64_t>(std::numeric_limits<typename Leaf::rep>::max());
  } else if constexpr (sizeof(Leaf) >= sizeof(std::int64_t)) {
    return kInt64Max;
  } else {
    return static_cast<std::int64_t>(std::numeric_limits<Leaf>::max());
  }
}

// "must be an integer in 0..65535", "must be 0, 1 or 2", "must be an integer ≥ 0".
std::string int_requirement(const KeySpec& spec) {
  const std::int64_t min = spec.options.min;
  if (spec.bounded && spec.max - min <= 3) {
    std::string out = "must be ";
    for (std::int64_t n = min; n <= spec.max; ++n) {
      out += std::to_string(n);
      if (n + 2 <= spec.max) out += ", ";
      if (n + 1 == spec.max) out += " or ";
    }
    return out;
  }
  if (spec.bounded) return fmt::format("must be an integer in {}..{}", min, spec.max);
  return fmt::format("must be an integer ≥ {}", min);
}

std::int64_t integer_value(const json::value& value, const KeySpec& spec) {
  std::int64_t n = 0;
  if (value.is_int64()) {
    n = value.get_int64();
  } else if (value.is_uint64() && value.get_uint64() <= static_cast<std::uint64_t>(kInt64Max)) {
    n = static_cast<std::int64_t>(value.get_uint64());
  } else {
    fail_got(spec.path, int_requirement(spec), value);
  }
  if (n < spec.options.min || n > spec.max) fail_got(spec.path, int_requirement(spec), value);
  return n;
}

std::string_view string_of(const json::value& value, std::string_view key) {
  if (!value.is_string()) fail_got(key, "must be a string", value);
  const json::string& text = value.get_string();
  return {text.data(), text.size()};
}

// Stores a JSON value into a Config member of a plain type. The walk has already skipped nulls.
template <class Leaf>
void assign_leaf(Leaf& leaf, const json::value& value, const KeySpec& spec) {
  if constexpr (std::is_same_v<Leaf, bool>) {
    if (!value.is_bool()) fail_got(spec.path, "must be true or false", value);
    leaf = value.get_bool();
  } else if constexpr (kIsIntLeaf<Leaf>) {
    const std::int64_t n = integer_value(value, spec);
    if (n == 0 && spec.options.zero_means_default) return;
    if constexpr (IsDuration<Leaf>::value) {
      leaf = Leaf(static_cast<typename Leaf::rep>(n));
    } else {
      leaf = static_cast<Leaf>(n);
    }
  } else if constexpr (std::is_same_v<Leaf, std::string>) {
    const std::string_view text = string_of(value, spec.path);
    if (text.empty() && spec.options.zero_means_default) return;
    leaf = std::string(text);
  } else if constexpr (std::is_same_v<Leaf, std::vector<std::string>>) {
    if (!value.is_array()) fail_got(spec.path, "must be a list of strings", value);
    leaf.clear();
    const json::array& items = value.get_array();
    for (std::size_t i = 0; i < items.size(); ++i) {
      leaf.emplace_back(string_of(items[i], fmt::format("{}[{}]", spec.path, i)));
    }
  } else if constexpr (IsOptional<Leaf>::value) {
    if (!leaf) leaf.emplace();  // a section: its keys are walked next, onto its defaults
  } else {
    static_assert(std::is_class_v<Leaf>, "unsupported Config member type");
  }
}

template <class Leaf>
std::string render_leaf(const Leaf& leaf) {
  if constexpr (std::is_same_v<Leaf, bool>) {
    return leaf ? "true" : "false";
  } else if constexpr (IsDuration<Leaf>::value) {
    return std::to_string(leaf.count());
  } else if constexpr (kIsIntLeaf<Leaf>) {
    return std::to_string(leaf);
  } else if constexpr (std::is_same_v<Leaf, std::string>) {
    return json::serialize(json::string(leaf));
  } else if constexpr (std::is_same_v<Leaf, std::vector<std::string>>) {
    return leaf.empty() ? "[]" : "(list)";
  } else {
    return "";
  }
}

// A key stored in a Config member, reached through a chain of member pointers.
template <auto... Members>
KeySpec key(std::string_view path, Origin origin, std::string_view description,
            KeyOptions options = {}) {
  using Leaf = std::remove_cvref_t<decltype(resolve<Members...>(std::declval<Config&>()))>;
  KeySpec spec{.path = path, .origin = origin, .description = description, .options = options};
  if constexpr (std::is_same_v<Leaf, bool>) {
    spec.kind = Kind::Bool;
  } else if constexpr (kIsIntLeaf<Leaf>) {
    spec.kind = Kind::Int;
    spec.bounded = options.max.has_value();
    spec.max = std::min(options.max.value_or(type_max<Leaf>()), type_max<Leaf>());
  } else if constexpr (std::is_same_v<Leaf, std::string>) {
    spec.kind = Kind::String;
  } else if constexpr (std::is_same_v<Leaf, std::vector<std::string>>) {
    spec.kind = Kind::StringList;
  } else {
    spec.kind = Kind::Section;
  }
  spec.assign = [](Config& config, const json::value& value, const KeySpec& self, ParseState&) {
    assign_leaf(resolve<Members...>(config), value, self);
  };
  spec.render_default = [](Config& defaults, const KeySpec&) {
    return render_leaf(resolve<Members...>(defaults));
  };
  return spec;
}

// A key with its own parsing (maps, keys that feed one field together, parsed strings).
KeySpec custom(std::string_view path, Origin origin, std::string_view type_text,
               std::string_view default_text, std::string_view description, AssignFn assign,
               KeyOptions options = {}) {
  KeySpec spec{.path = path,
               .kind = Kind::Custom,
               .origin = origin,
               .description = description,
               .options = options,
               .max = options.max.value_or(kInt64Max),
               .bounded = options.max.has_value(),
               .type_text = type_text,
               .default_text = default_text,
               .assign = assign};
  return spec;
}

// A reference section this server does not read: it must be an object; its keys are not walked.
KeySpec opaque(std::string_view path, std::string_view description, KeyOptions options = {}) {
  return KeySpec{.path = path,
                 .kind = Kind::Opaque,
                 .origin = Origin::Ignored,
                 .description = description,
                 .options = options,
                 .type_text = "object",
                 .default_text = "—"};
}

// --- custom parsers

void assign_records(Config&, const json::value& value, const KeySpec& spec, ParseState& state) {
  if (!value.is_object()) {
    fail_got(spec.path, "must be an object mapping record types to lists of dispatcher names",
             value);
  }
  for (const auto& entry : value.get_object()) {
    const std::string type(entry.key());
    const std::string key = join_path(spec.path, type);
    std::vector<std::string> names;
    if (entry.value().is_array()) {
      const json::array& items = entry.value().get_array();
      for (std::size_t i = 0; i < items.size(); ++i) {
        names.emplace_back(string_of(items[i], fmt::format("{}[{}]", key, i)));
      }
    } else if (!entry.value().is_null()) {  // null: an empty list, as in Go
      fail_got(key, "must be a list of dispatcher names", entry.value());
    }
    state.records[type] = std::move(names);
  }
}

void assign_reliable_ack_sources(Config&, const json::value& value, const KeySpec& spec,
                                 ParseState& state) {
  if (!value.is_object()) {
    fail_got(spec.path, "must be an object mapping record types to a dispatcher name", value);
  }
  for (const auto& entry : value.get_object()) {
    const std::string type(entry.key());
    const std::string key = join_path(spec.path, type);
    state.reliable_ack_sources[type] = std::string(string_of(entry.value(), key));
  }
}

// spec §8.2: numbers are truncated to integers, strings and booleans pass unchanged.
void assign_kafka(Config& config, const json::value& value, const KeySpec& spec, ParseState&) {
  if (!value.is_object()) fail_got(spec.path, "must be an object of librdkafka properties", value);
  auto& properties = config.kafka.emplace();
  for (const auto& entry : value.get_object()) {
    const std::string name(entry.key());
    const json::value& item = entry.value();
    const std::string key = join_path(spec.path, name);
    switch (item.kind()) {
      case json::kind::string:
        properties[name] = std::string(string_of(item, key));
        break;
      case json::kind::bool_:
        properties[name] = item.get_bool() ? "true" : "false";
        break;
      case json::kind::int64:
        properties[name] = std::to_string(item.get_int64());
        break;
      case json::kind::uint64:
        properties[name] = std::to_string(item.get_uint64());
        break;
      case json::kind::double_: {
        const double number = std::trunc(item.get_double());
        // 2^63 is exactly representable; anything at or beyond it does not fit an integer.
        if (!std::isfinite(number) || number >= 9223372036854775808.0 ||
            number < -9223372036854775808.0) {
          fail_got(key, "must be a number that fits a 64-bit integer", item);
        }
        properties[name] = std::to_string(static_cast<std::int64_t>(number));
        break;
      }
      default:
        fail_got(key, "must be a string, number or boolean", item);
    }
  }
}

void assign_interval_seconds(Config&, const json::value& value, const KeySpec& spec,
                             ParseState& state) {
  state.interval_seconds = integer_value(value, spec);
}

void assign_interval_nanoseconds(Config&, const json::value& value, const KeySpec& spec,
                                 ParseState& state) {
  state.interval_nanoseconds = integer_value(value, spec);
}

void assign_broker(Config& config, const json::value& value, const KeySpec& spec, ParseState&) {
  const std::string_view text = string_of(value, spec.path);
  auto& broker = resolve<&Config::mqtt, &MqttConfig::broker>(config);
  broker = text.empty() ? MqttBroker{} : parse_mqtt_broker(text);
}

// ---------------------------------------------------------------------------------------------
// The key table: every key once, in the order of docs/config.md.

constexpr std::int64_t kMaxPort = 65535;
constexpr std::int64_t kMaxIntervalSeconds = kInt64Max / 1'000'000'000;

const std::vector<KeySpec>& key_table() {
  static const std::vector<KeySpec> table = [] {
    using O = Origin;
    const KeyOptions port{.max = kMaxPort};
    const KeyOptions file{.path = true};
    const KeyOptions ms_or_default{.zero_means_default = true};
    return std::vector<KeySpec>{
        key<&Config::host>("host", O::Reference,
                           "listen address of the vehicle-facing mTLS server; empty = all "
                           "interfaces"),
        key<&Config::port>("port", O::Reference,
                           "listen port of the mTLS server (the reference README uses 443, the "
                           "dev setup 4443); 0 = any free port",
                           port),
        key<&Config::status_port>("status_port", O::Reference,
                                  "plain-HTTP `/status` server on all interfaces; 0 = off", port),
        key<&Config::tls>("tls", O::Reference,
                          "required: the server is mTLS only (reference message: `tls config is "
                          "empty - ...`)"),
        key<&Config::tls, &TlsConfig::server_cert>(
            "tls.server_cert", O::Reference,
            "server certificate chain (PEM); required, must be readable", file),
        key<&Config::tls, &TlsConfig::server_key>(
            "tls.server_key", O::Reference, "server private key (PEM); required, must be readable",
            file),
        key<&Config::tls, &TlsConfig::ca_file>(
            "tls.ca_file", O::Changed,
            "CA certificates (PEM) that issued the vehicle certificates; required, because no "
            "Tesla CA bundle is embedded (see docs/certificates.md); must be readable; the "
            "reference appends it to its embedded bundle",
            file),
        key<&Config::tls, &TlsConfig::native_record_layer>(
            "tls.native_record_layer", O::Extension,
            "after a TLS 1.3 handshake, protect the connection's records with our own record "
            "layer (RFC 8446 §5, OpenSSL's AES-GCM/ChaCha20-Poly1305) and free OpenSSL's "
            "per-connection state: ~23 KB less per connected vehicle; false = OpenSSL for the "
            "whole connection"),
        key<&Config::use_default_eng_ca>(
            "use_default_eng_ca", O::Changed,
            "the reference trusts its embedded eng bundle instead of prod; nothing is embedded "
            "here, so `true` only logs a warning"),
        key<&Config::namespace_prefix>(
            "namespace", O::Reference,
            "prefix of Kafka/Pub/Sub/Kinesis/ZMQ/Redis topic names (`<namespace>_<type>`); not "
            "used in MQTT topics"),
        custom("records", O::Changed, "object: record type → list of dispatcher names", "`{}`",
               "routing per record type, in list order (spec §8.1); an unknown or unsupported "
               "dispatcher name, or an empty list, stops start-up (the reference crashes "
               "connections later)",
               assign_records),
        custom("reliable_ack_sources", O::Reference, "object: record type → dispatcher name",
               "`{}`",
               "the dispatcher whose successful delivery acknowledges a record of that type "
               "(spec §5); checked in record-type order",
               assign_reliable_ack_sources),
        key<&Config::transmit_decoded_records>(
            "transmit_decoded_records", O::Reference,
            "dispatch JSON (protojson) payloads instead of protobuf bytes (spec §7.3)"),
        key<&Config::rate_limit>("rate_limit", O::Reference,
                                 "per-connection rate limiting (spec §6); absent = counting only"),
        key<&Config::rate_limit, &RateLimitConfig::enabled>(
            "rate_limit.enabled", O::Reference,
            "drop messages beyond `message_limit` per interval; when false the server only counts "
            "(100 per 60 s, for the metrics)"),
        key<&Config::rate_limit, &RateLimitConfig::message_limit>(
            "rate_limit.message_limit", O::Changed,
            "messages granted per interval and connection; must be ≥ 1 when enabled (the "
            "reference crashes on 0)",
            {.max = std::numeric_limits<std::uint32_t>::max()}),
        custom("rate_limit.message_interval_time", O::Changed, "int 0..9223372036 (s)", "`0`",
               "limiter interval in seconds; honoured here (the reference parses and ignores it); "
               "must be > 0 when enabled unless `MessageIntervalTimeSecond` is set",
               assign_interval_seconds, {.max = kMaxIntervalSeconds, .unit = "s"}),
        custom("rate_limit.MessageIntervalTimeSecond", O::Reference, "int ≥ 0 (ns)", "`0`",
               "limiter interval in nanoseconds: the undocumented key the reference actually "
               "uses; wins over `message_interval_time` when not 0",
               assign_interval_nanoseconds, {.unit = "ns"}),
        key<&Config::vins_signal_tracking_enabled>(
            "vins_signal_tracking_enabled", O::Reference,
            "VINs that get per-VIN signal metrics; at most 20 unique"),
        key<&Config::log_level>("log_level", O::Reference,
                                "trace, debug, info, warn, error, fatal or panic (any case); an "
                                "unknown level logs a warning and keeps info"),
        key<&Config::json_log_enable>("json_log_enable", O::Reference,
                                      "one JSON object per log line instead of text"),
        key<&Config::logger>("logger", O::Reference, "the logger dispatcher (spec §8.7)"),
        key<&Config::logger, &LoggerConfig::verbose>(
            "logger.verbose", O::Reference, "typed values in the logger dispatcher's output"),
        key<&Config::monitoring>("monitoring", O::Reference,
                                 "metrics and profiling listeners (spec §2.6)"),
        key<&Config::monitoring, &MonitoringConfig::prometheus_metrics_port>(
            "monitoring.prometheus_metrics_port", O::Reference,
            "Prometheus `/metrics` listener; 0 = off", port),
        key<&Config::monitoring, &MonitoringConfig::prometheus_metrics_host>(
            "monitoring.prometheus_metrics_host", O::Reference,
            "address of the Prometheus listener (`0.0.0.0` for remote scraping)",
            {.zero_means_default = true}),
        key<&Config::monitoring, &MonitoringConfig::profiler_port>(
            "monitoring.profiler_port", O::Reference, "profiler listener; 0 = off", port),
        key<&Config::monitoring, &MonitoringConfig::profiler_host>(
            "monitoring.profiler_host", O::Reference, "address of the profiler listener",
            {.zero_means_default = true}),
        key<&Config::monitoring, &MonitoringConfig::profiling_path>(
            "monitoring.profiling_path", O::Reference, "trace output file of the profiler", file),
        key<&Config::monitoring, &MonitoringConfig::statsd>(
            "monitoring.statsd", O::Reference,
            "StatsD output, used only when `prometheus_metrics_port` is 0"),
        key<&Config::monitoring, &MonitoringConfig::statsd, &StatsdConfig::host>(
            "monitoring.statsd.host", O::Reference, "StatsD address, `host:port`"),
        key<&Config::monitoring, &MonitoringConfig::statsd, &StatsdConfig::prefix>(
            "monitoring.statsd.prefix", O::Reference, "prefix of every StatsD metric name"),
        key<&Config::monitoring, &MonitoringConfig::statsd, &StatsdConfig::flush_period>(
            "monitoring.statsd.flush_period", O::Reference, "StatsD flush period",
            {.zero_means_default = true, .unit = "ms"}),
        key<&Config::mqtt>("mqtt", O::Reference,
                           "the MQTT dispatcher (spec §8.8); required when a record type is "
                           "routed to `mqtt`"),
        custom("mqtt.broker", O::Changed, "string", "`\"\"`",
               "`host:port` or URL; no `://` = `tcp://`, leading `:` = 127.0.0.1; schemes tcp, "
               "mqtt (plain) and ssl, tls, mqtts, tcps (TLS); no port = 1883, or 8883 with TLS; "
               "required when a record type is routed to `mqtt`",
               assign_broker),
        key<&Config::mqtt, &MqttConfig::client_id>("mqtt.client_id", O::Reference,
                                                   "MQTT client id; empty = chosen by the client"),
        key<&Config::mqtt, &MqttConfig::username>("mqtt.username", O::Reference, "MQTT user name"),
        key<&Config::mqtt, &MqttConfig::password>("mqtt.password", O::Reference, "MQTT password"),
        key<&Config::mqtt, &MqttConfig::topic_base>(
            "mqtt.topic_base", O::Reference,
            "first topic level(s): `<topic_base>/<VIN>/v/<Field>` (`namespace` is not used)"),
        key<&Config::mqtt, &MqttConfig::qos>("mqtt.qos", O::Reference, "QoS of every publish",
                                             {.max = 2}),
        key<&Config::mqtt, &MqttConfig::retained>("mqtt.retained", O::Reference,
                                                  "retain flag of every publish"),
        key<&Config::mqtt, &MqttConfig::connect_timeout>("mqtt.connect_timeout_ms", O::Reference,
                                                         "timeout of one connection attempt",
                                                         ms_or_default),
        key<&Config::mqtt, &MqttConfig::publish_timeout>(
            "mqtt.publish_timeout_ms", O::Reference,
            "one budget for all publishes of a record (spec §8.8)", ms_or_default),
        key<&Config::mqtt, &MqttConfig::disconnect_timeout>(
            "mqtt.disconnect_timeout_ms", O::Reference, "time to flush on shutdown", ms_or_default),
        key<&Config::mqtt, &MqttConfig::connect_retry_interval>(
            "mqtt.connect_retry_interval_ms", O::Reference, "pause between connection attempts",
            ms_or_default),
        key<&Config::mqtt, &MqttConfig::keep_alive>("mqtt.keep_alive_seconds", O::Reference,
                                                    "MQTT keep-alive",
                                                    {.max = 65535, .zero_means_default = true}),
        key<&Config::mqtt, &MqttConfig::ca_file>(
            "mqtt.ca_file", O::Extension,
            "CA certificates (PEM) to verify the broker; needs a TLS broker scheme; empty = the "
            "system CAs",
            file),
        key<&Config::mqtt, &MqttConfig::cert_file>(
            "mqtt.cert_file", O::Extension,
            "client certificate (PEM) for the broker; needs `mqtt.key_file` and a TLS scheme",
            file),
        key<&Config::mqtt, &MqttConfig::key_file>(
            "mqtt.key_file", O::Extension,
            "client private key (PEM) for the broker; needs `mqtt.cert_file` and a TLS scheme",
            file),
        key<&Config::mqtt, &MqttConfig::event_time_envelope>(
            "mqtt.event_time_envelope", O::Extension,
            "publish each `v/<Field>` message as `{\"value\":<value>,\"ts\":\"<time>\"}`: the "
            "reference's payload and the record's `created_at` (RFC 3339 UTC, 0/3/6/9 fraction "
            "digits; the receive time when the record has none); alerts, errors and connectivity "
            "are unchanged; false = the reference's format"),
        key<&Config::mqtt, &MqttConfig::record_message>(
            "mqtt.record_message", O::Extension,
            "publish each V record as ONE message on `<topic_base>/<VIN>/v`: "
            "`{\"ts\":\"<time>\",\"data\":{\"<Field>\":<value>,…}}` (time as with "
            "`mqtt.event_time_envelope`), instead of one `v/<Field>` message per datum: ~20x "
            "fewer messages for the broker and subscribers that read whole records "
            "(teslasync-api); alerts, errors and connectivity are unchanged; false = the "
            "reference's format"),
        custom("kafka", O::Reference, "object: property → string, number or bool", "—",
               "librdkafka properties (spec §8.2); numbers are truncated to integers, booleans "
               "become `\"true\"`/`\"false\"`",
               assign_kafka),
        opaque("kinesis", "the Kinesis dispatcher (spec §8.3); not in this server"),
        opaque("pubsub", "the Pub/Sub dispatcher (spec §8.4); not in this server"),
        opaque("zmq", "the ZeroMQ dispatcher (spec §8.5); not in this server"),
        opaque("redis", "the Redis dispatcher (spec §8.6); not in this server"),
        opaque("airbrake", "error reporting to Airbrake/Errbit; not in this server",
               {.warn_if_present = "ignored: this server does not report errors to "
                                   "Airbrake/Errbit"}),
        key<&Config::workers>("workers", O::Extension,
                              "event-loop threads (shards); 0 = one per hardware thread; "
                              "`--workers` overrides it",
                              {.max = kMaxWorkers}),
        key<&Config::max_connections_per_identity>(
            "max_connections_per_identity", O::Extension,
            "open connections one certificate identity (device id) may hold; a further one is "
            "closed after the upgrade with WebSocket close code 1013 (try again later) and counted "
            "in `teslasync_link_connections_per_identity_refused_total`; the reference has no limit",
            {.min = 1, .max = kMaxConnectionsPerIdentity}),
    };
  }();
  return table;
}

// Environment variables of spec §10.3 that apply to this server.
struct EnvSpec {
  std::string_view name;
  std::string_view type_text;
  std::string_view default_text;
  Origin origin;
  std::string_view description;
};

constexpr std::string_view kSuppressTlsHandshakeErrorLogging =
    "SUPPRESS_TLS_HANDSHAKE_ERROR_LOGGING";

constexpr std::array<EnvSpec, 1> kEnvTable{{
    {kSuppressTlsHandshakeErrorLogging, "bool", "`false`", Origin::Reference,
     "`true` drops the log lines about failed TLS handshakes (scanners, clients without a "
     "certificate); Go syntax: 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False; unset or "
     "empty = false; anything else stops start-up"},
}};

// Keys that people copy from the reference README although no server reads them.
constexpr std::array<std::pair<std::string_view, std::string_view>, 2> kKnownMistakes{{
    {"reliable_ack",
     "the reference README documents it, but no server reads it; reliable acks are configured "
     "per record type with reliable_ack_sources"},
    {"monitoring.statsd.sample_rate",
     "the reference README documents it, but the reference server does not read it"},
}};

// ---------------------------------------------------------------------------------------------
// Walking the JSON document

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      const std::size_t cost = ascii_lower(a[i - 1]) == ascii_lower(b[j - 1]) ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string unknown_key_message(std::string_view prefix, std::string_view name,
                                const std::string& shown) {
  for (const auto& [path, hint] : kKnownMistakes) {
    if (iequals(path, shown)) return fmt::format("unknown key, ignored ({})", hint);
  }
  const KeySpec* best = nullptr;
  std::size_t best_distance = 3;  // suggest only close spellings
  for (const auto& spec : key_table()) {
    if (parent_of(spec.path) != prefix) continue;
    const std::size_t distance = edit_distance(name, leaf_of(spec.path));
    if (distance < best_distance) {
      best = &spec;
      best_distance = distance;
    }
  }
  if (best != nullptr && name.size() > 2) {
    return fmt::format("unknown key, ignored (did you mean {}?)", best->path);
  }
  return "unknown key, ignored";
}

const KeySpec* find_child(std::string_view prefix, std::string_view name) {
  for (const auto& spec : key_table()) {
    if (parent_of(spec.path) == prefix && iequals(leaf_of(spec.path), name)) return &spec;
  }
  return nullptr;
}

void walk_object(const json::object& object, std::string_view prefix, Config& config,
                 ParseState& state) {
  std::map<const KeySpec*, std::string> spelling;  // the name that last set each key
  for (const auto& member : object) {
    const std::string_view name = member.key();
    const KeySpec* spec = find_child(prefix, name);
    if (spec == nullptr) {
      const std::string shown = join_path(prefix, name);
      state.warn(shown, unknown_key_message(prefix, name, shown));
      continue;
    }
    if (auto [it, inserted] = spelling.emplace(spec, std::string(name)); !inserted) {
      // Go encoding/json: every match is applied in order, so later values win.
      state.warn(std::string(spec->path),
                 fmt::format("set more than once (as \"{}\" and \"{}\"); later values win",
                             it->second, name));
      it->second = std::string(name);
    }
    const json::value& value = member.value();
    if (value.is_null()) continue;  // Go encoding/json: null leaves the default in place
    state.seen_sections.emplace(spec->path);
    switch (spec->kind) {
      case Kind::Section:
        if (!value.is_object()) fail_got(spec->path, "must be an object", value);
        spec->assign(config, value, *spec, state);
        walk_object(value.get_object(), spec->path, config, state);
        break;
      case Kind::Opaque:
        if (!value.is_object()) fail_got(spec->path, "must be an object", value);
        if (!spec->options.warn_if_present.empty()) {
          state.warn(std::string(spec->path), std::string(spec->options.warn_if_present));
        }
        break;
      default:
        spec->assign(config, value, *spec, state);
        break;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Cross-key checks, in a fixed order

constexpr std::size_t kMaxTrackedVins = 20;

void check_log_level(Config& config, ParseState& state) {
  // logrus.ParseLevel: case-insensitive, "warning" is "warn".
  static constexpr std::array<std::string_view, 7> kLevels{"trace", "debug", "info", "warn",
                                                           "error", "fatal", "panic"};
  std::string level = lower(config.log_level);
  if (level == "warning") level = "warn";
  if (std::find(kLevels.begin(), kLevels.end(), level) == kLevels.end()) {
    state.warn("log_level", fmt::format("unknown level \"{}\", using info (as the reference does)",
                                        config.log_level));
    level = "info";
  }
  config.log_level = level;
}

void check_tracked_vins(Config& config) {
  std::vector<std::string> unique;
  std::set<std::string, std::less<>> seen;
  for (auto& vin : config.vins_signal_tracking_enabled) {
    if (seen.insert(vin).second) unique.push_back(std::move(vin));
  }
  if (unique.size() > kMaxTrackedVins) {
    // spec §10.2: the reference's text, verbatim.
    throw ConfigError("vins_signal_tracking_enabled",
                      "set the value of `vins_signal_tracking_enabled` less than 20 unique vins");
  }
  config.vins_signal_tracking_enabled = std::move(unique);
}

void check_rate_limit(Config& config, ParseState& state) {
  auto& limit = config.rate_limit;
  const std::int64_t seconds = state.interval_seconds.value_or(0);
  const std::int64_t nanoseconds = state.interval_nanoseconds.value_or(0);
  if (nanoseconds > 0) {
    limit.interval = std::chrono::nanoseconds(nanoseconds);
    if (seconds > 0) {
      state.warn("rate_limit.message_interval_time",
                 "ignored: rate_limit.MessageIntervalTimeSecond is set and wins");
    }
  } else {
    limit.interval = std::chrono::seconds(seconds);
  }
  if (!limit.enabled) return;
  if (limit.message_limit < 1) {
    fail("rate_limit.message_limit", "must be ≥ 1 when rate_limit.enabled is true");
  }
  if (limit.interval <= std::chrono::nanoseconds::zero()) {
    fail("rate_limit.message_interval_time",
         "must be ≥ 1 when rate_limit.enabled is true (in seconds; or set "
         "rate_limit.MessageIntervalTimeSecond, in nanoseconds)");
  }
}

std::string supported_list(const ParseState& state) {
  return join_names(state.options->supported_dispatchers, ", ");
}

// Unknown or unsupported name -> error naming the key.
Dispatcher known_supported_dispatcher(const std::string& key, const std::string& name,
                                      const ParseState& state) {
  const auto dispatcher = dispatcher_from_string(name);
  if (!dispatcher) {
    fail(key, fmt::format("unknown dispatcher \"{}\" (known: {})", name,
                          join_names(kAllDispatchers, ", ")));
  }
  if (!state.supported(*dispatcher)) {
    fail(key, fmt::format("dispatcher \"{}\" is not supported by this server (supported: {})", name,
                          supported_list(state)));
  }
  return *dispatcher;
}

void check_records(Config& config, ParseState& state) {
  for (const auto& [type, names] : state.records) {
    const std::string key = join_path("records", type);
    if (names.empty()) {
      throw ConfigError(key,
                        fmt::format("unknown_dispatch_rule record: {}, dispatchRule:[]", type));
    }
    std::vector<Dispatcher> dispatchers;
    for (const auto& name : names) {
      const Dispatcher dispatcher = known_supported_dispatcher(key, name, state);
      if (std::find(dispatchers.begin(), dispatchers.end(), dispatcher) != dispatchers.end()) {
        state.warn(
            key, fmt::format("dispatcher \"{}\" is listed more than once; it is used once", name));
        continue;
      }
      dispatchers.push_back(dispatcher);
    }
    config.records[type] = std::move(dispatchers);
  }
}

bool is_used(const Config& config, Dispatcher dispatcher) {
  return std::any_of(config.records.begin(), config.records.end(), [&](const auto& entry) {
    const auto& list = entry.second;
    return std::find(list.begin(), list.end(), dispatcher) != list.end();
  });
}

void check_dispatcher_sections(const Config& config, ParseState& state) {
  for (const auto& info : kDispatcherInfo) {
    if (!info.needs_section) continue;
    if (is_used(config, info.id) && !state.seen(info.name)) {
      // spec §8.1: the reference's text, verbatim.
      throw ConfigError(std::string(info.name),
                        fmt::format("expected {} to be configured", info.display));
    }
    if (!state.supported(info.id) && state.seen(info.name)) {
      state.warn(std::string(info.name),
                 fmt::format("not used: this server does not support the {} dispatcher "
                             "(supported: {})",
                             info.name, supported_list(state)));
    }
  }
}

void check_mqtt(const Config& config) {
  if (!config.mqtt) return;
  const MqttConfig& mqtt = *config.mqtt;
  if (mqtt.broker.host.empty() && is_used(config, Dispatcher::Mqtt)) {
    fail("mqtt.broker", "required when a record type is routed to mqtt");
  }
  const std::array<std::pair<std::string_view, const std::string*>, 3> files{{
      {"mqtt.ca_file", &mqtt.ca_file},
      {"mqtt.cert_file", &mqtt.cert_file},
      {"mqtt.key_file", &mqtt.key_file},
  }};
  for (const auto& [key, path] : files) {
    if (path->empty()) continue;
    if (!mqtt.broker.host.empty() && !mqtt.broker.tls) {
      fail(key, fmt::format("set, but mqtt.broker \"{}\" does not use TLS (use ssl:// or mqtts://)",
                            mqtt.broker.url()));
    }
    check_readable_file(key, *path);
  }
  if (mqtt.cert_file.empty() != mqtt.key_file.empty()) {
    fail(mqtt.cert_file.empty() ? "mqtt.cert_file" : "mqtt.key_file",
         "mqtt.cert_file and mqtt.key_file must be set together");
  }
}

// spec §5, one record type at a time in sorted order (the reference's order is random).
void check_reliable_acks(Config& config, const ParseState& state) {
  for (const auto& [type, name] : state.reliable_ack_sources) {
    const std::string key = join_path("reliable_ack_sources", type);
    if (type == "connectivity") {
      throw ConfigError(key, "reliable ack not needed for txType: connectivity");
    }
    const auto known = dispatcher_from_string(name);
    if (known == Dispatcher::Logger) {
      throw ConfigError(
          key, fmt::format("logger cannot be configured as reliable ack for record: {}", type));
    }
    const Dispatcher dispatcher = known_supported_dispatcher(key, name, state);
    const auto record = config.records.find(type);
    if (record == config.records.end()) {
      throw ConfigError(key, fmt::format("{} cannot be configured as reliable ack for record: {} "
                                         "since no record mapping exists",
                                         name, type));
    }
    std::vector<Dispatcher> valid;
    std::copy_if(record->second.begin(), record->second.end(), std::back_inserter(valid),
                 [](Dispatcher d) { return d != Dispatcher::Logger; });
    if (std::find(valid.begin(), valid.end(), dispatcher) == valid.end()) {
      // Go formats the list with %v: "[kafka mqtt]".
      throw ConfigError(key, fmt::format("{} cannot be configured as reliable ack for record: {}. "
                                         "Valid datastores configured [{}]",
                                         name, type, join_names(valid, " ")));
    }
    config.reliable_ack_sources[type] = dispatcher;
  }
}

void check_tls(const Config& config, ParseState& state) {
  if (!state.seen("tls")) {
    // spec §2.2: the reference's text, verbatim.
    throw ConfigError("tls",
                      "tls config is empty - telemetry server is mTLS only, make sure to provide "
                      "certificates in the config");
  }
  if (config.tls.server_cert.empty()) {
    fail("tls.server_cert", "required: the server certificate chain (PEM file)");
  }
  check_readable_file("tls.server_cert", config.tls.server_cert);
  if (config.tls.server_key.empty()) {
    fail("tls.server_key", "required: the server private key (PEM file)");
  }
  check_readable_file("tls.server_key", config.tls.server_key);
  if (config.tls.ca_file.empty()) {
    fail("tls.ca_file",
         "required: this server embeds no Tesla CA bundle, so name a PEM file with the CA "
         "certificates that issued the vehicle certificates (see docs/certificates.md)");
  }
  check_readable_file("tls.ca_file", config.tls.ca_file);
  if (config.use_default_eng_ca) {
    state.warn("use_default_eng_ca",
               "no Tesla CA bundle is embedded in this server; vehicle certificates are verified "
               "against tls.ca_file only (see docs/certificates.md)");
  }
}

// Go strconv.ParseBool.
std::optional<bool> parse_go_bool(std::string_view text) {
  static constexpr std::array<std::string_view, 6> kTrue{"1", "t", "T", "TRUE", "true", "True"};
  static constexpr std::array<std::string_view, 6> kFalse{"0", "f", "F", "FALSE", "false", "False"};
  if (std::find(kTrue.begin(), kTrue.end(), text) != kTrue.end()) return true;
  if (std::find(kFalse.begin(), kFalse.end(), text) != kFalse.end()) return false;
  return std::nullopt;
}

void apply_environment(Config& config, const ParseState& state) {
  const auto value = state.options->env(kSuppressTlsHandshakeErrorLogging);
  if (!value || value->empty()) return;
  const auto flag = parse_go_bool(*value);
  if (!flag) {
    fail(kSuppressTlsHandshakeErrorLogging,
         fmt::format("must be a boolean (true, false, 1, 0, t, f, TRUE, FALSE, True, False), got "
                     "\"{}\"",
                     *value));
  }
  config.suppress_tls_handshake_error_logging = *flag;
}

void validate(Config& config, ParseState& state) {
  check_log_level(config, state);
  check_tracked_vins(config);
  check_rate_limit(config, state);
  check_records(config, state);
  check_dispatcher_sections(config, state);
  check_mqtt(config);
  check_reliable_acks(config, state);
  check_tls(config, state);
  apply_environment(config, state);
}

// ---------------------------------------------------------------------------------------------
// JSON text

json::value parse_json(std::string_view text) {
  json::stream_parser parser;
  boost::system::error_code ec;
  const std::size_t consumed = parser.write(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    // On an error `consumed` is the offset of the offending character.
    const std::string_view before = text.substr(0, std::min(consumed, text.size()));
    const std::size_t line =
        1 + static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
    const auto newline = before.rfind('\n');
    const std::size_t column =
        1 + (newline == std::string_view::npos ? before.size() : before.size() - newline - 1);
    throw ConfigError(
        "", fmt::format("invalid JSON at line {}, column {}: {}", line, column, ec.message()));
  }
  return parser.release();
}

// ---------------------------------------------------------------------------------------------
// Markdown

std::string table_cell(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

std::string type_text(const KeySpec& spec) {
  switch (spec.kind) {
    case Kind::Bool:
      return "bool";
    case Kind::Int: {
      std::string text = spec.bounded && spec.max != kInt64Max
                             ? fmt::format("int {}..{}", spec.options.min, spec.max)
                             : fmt::format("int ≥ {}", spec.options.min);
      if (!spec.options.unit.empty()) text += fmt::format(" ({})", spec.options.unit);
      return text;
    }
    case Kind::String:
      return spec.options.path ? "path" : "string";
    case Kind::StringList:
      return "list of strings";
    case Kind::Section:
      return "object";
    case Kind::Opaque:
    case Kind::Custom:
      return std::string(spec.type_text);
  }
  return "";
}

std::string default_text(const KeySpec& spec) {
  if (spec.kind == Kind::Custom || spec.kind == Kind::Opaque) return std::string(spec.default_text);
  if (spec.kind == Kind::Section) return "—";
  Config defaults;
  return fmt::format("`{}`", spec.render_default(defaults, spec));
}

std::string meaning_text(const KeySpec& spec) {
  std::string text(spec.description);
  if (spec.options.zero_means_default) {
    text += spec.kind == Kind::String ? "; empty = the default" : "; 0 = the default";
  }
  return text;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public API

std::string_view to_string(Dispatcher dispatcher) { return info_of(dispatcher).name; }

std::optional<Dispatcher> dispatcher_from_string(std::string_view name) {
  for (const auto& info : kDispatcherInfo) {
    if (info.name == name) return info.id;
  }
  return std::nullopt;
}

std::string MqttBroker::url() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return ipv6 ? fmt::format("{}://[{}]:{}", scheme, host, port)
              : fmt::format("{}://{}:{}", scheme, host, port);
}

MqttBroker parse_mqtt_broker(std::string_view text) {
  constexpr std::string_view kKey = "mqtt.broker";
  if (text.empty()) fail(kKey, "must not be empty");
  // spec §8.8: no scheme -> tcp://, leading ':' -> 127.0.0.1.
  std::string url(text);
  if (url.find("://") == std::string::npos) {
    if (url.starts_with(':')) url = "127.0.0.1" + url;
    url = "tcp://" + url;
  }
  const auto separator = url.find("://");
  MqttBroker broker;
  broker.scheme = lower(std::string_view(url).substr(0, separator));
  if (broker.scheme == "tcp" || broker.scheme == "mqtt") {
    broker.tls = false;
  } else if (broker.scheme == "ssl" || broker.scheme == "tls" || broker.scheme == "mqtts" ||
             broker.scheme == "tcps") {
    broker.tls = true;
  } else {
    fail(kKey, fmt::format("scheme \"{}\" in \"{}\" is not supported by this server (supported: "
                           "tcp, mqtt, ssl, tls, mqtts, tcps)",
                           broker.scheme, text));
  }
  std::string_view authority = std::string_view(url).substr(separator + 3);
  if (const auto end = authority.find_first_of("/?#"); end != std::string_view::npos) {
    if (authority.substr(end) != "/") {
      fail(kKey,
           fmt::format("unexpected path or query \"{}\" in \"{}\"", authority.substr(end), text));
    }
    authority = authority.substr(0, end);
  }
  if (authority.find('@') != std::string_view::npos) {
    fail(kKey, fmt::format("credentials in \"{}\" are not supported; use mqtt.username and "
                           "mqtt.password",
                           text));
  }
  std::string_view host = authority;
  std::string_view port;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) fail(kKey, fmt::format("missing ']' in \"{}\"", text));
    host = authority.substr(1, close - 1);
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (!rest.starts_with(':'))
        fail(kKey, fmt::format("unexpected \"{}\" in \"{}\"", rest, text));
      port = rest.substr(1);
      if (port.empty()) fail(kKey, fmt::format("empty port in \"{}\"", text));
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      fail(kKey, fmt::format("put an IPv6 address in brackets: \"{}\"", text));
    }
    if (port.empty()) fail(kKey, fmt::format("empty port in \"{}\"", text));
  }
  if (host.find_first_of(" \t[]") != std::string_view::npos) {
    fail(kKey, fmt::format("invalid host \"{}\" in \"{}\"", host, text));
  }
  broker.host = host.empty() ? "127.0.0.1" : std::string(host);
  if (port.empty()) {
    broker.port = broker.tls ? 8883 : 1883;
  } else {
    unsigned value = 0;
    const bool digits = port.size() <= 5 && std::all_of(port.begin(), port.end(), [](char c) {
                          return c >= '0' && c <= '9';
                        });
    if (digits) value = static_cast<unsigned>(std::stoul(std::string(port)));
    if (!digits || value < 1 || value > 65535) {
      fail(kKey, fmt::format("port \"{}\" in \"{}\" must be 1..65535", port, text));
    }
    broker.port = static_cast<std::uint16_t>(value);
  }
  return broker;
}

unsigned effective_workers(const Config& config) {
  if (config.workers > 0) return config.workers;
  return std::max(1U, std::thread::hardware_concurrency());
}

std::string ConfigWarning::text() const {
  return key.empty() ? message : fmt::format("{}: {}", key, message);
}

ConfigError::ConfigError(std::string key, const std::string& message)
    : std::runtime_error(message), key_(std::move(key)) {}

std::optional<std::string> process_environment(std::string_view name) {
  // Called at start-up, before any thread that could call setenv() exists.
  const char* value = std::getenv(std::string(name).c_str());  // NOLINT(concurrency-mt-unsafe)
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

LoadedConfig parse_config(std::string_view json_text, const ConfigOptions& options) {
  const json::value root = parse_json(json_text);
  if (!root.is_object()) {
    throw ConfigError(
        "", fmt::format("the configuration must be a JSON object (got {})", describe(root)));
  }
  LoadedConfig loaded;
  ParseState state;
  state.options = &options;
  walk_object(root.get_object(), "", loaded.config, state);
  validate(loaded.config, state);
  loaded.warnings = std::move(state.warnings);
  return loaded;
}

LoadedConfig load_config_file(const std::filesystem::path& path, const ConfigOptions& options) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw ConfigError(
        "", fmt::format("cannot read config file \"{}\": it is a directory", path.string()));
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    const int error = errno;
    throw ConfigError(
        "", fmt::format("cannot read config file \"{}\": {}", path.string(), errno_text(error)));
  }
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) {
    throw ConfigError("", fmt::format("cannot read config file \"{}\"", path.string()));
  }
  try {
    return parse_config(text.str(), options);
  } catch (const ConfigError& error) {
    if (!error.key().empty()) throw;
    throw ConfigError("", fmt::format("{}: {}", path.string(), error.what()));
  }
}

std::string config_reference_markdown() {
  std::string out;
  out +=
      "<!-- BEGIN generated by config_reference_markdown() in "
      "apps/telemetry-server/config.cpp; do not edit by hand -->\n";
  std::string supported;
  for (const auto dispatcher : kSupportedDispatchers) {
    if (!supported.empty()) supported += ", ";
    supported += fmt::format("`{}`", to_string(dispatcher));
  }
  out += fmt::format("Dispatchers in this build: {}.\n\n", supported);
  out += "| key | type | default | origin | meaning |\n";
  out += "|---|---|---|---|---|\n";
  for (const auto& spec : key_table()) {
    out += fmt::format("| `{}` | {} | {} | {} | {} |\n", spec.path, table_cell(type_text(spec)),
                       table_cell(default_text(spec)), to_string(spec.origin),
                       table_cell(meaning_text(spec)));
  }
  out += "\n| environment variable | type | default | origin | meaning |\n";
  out += "|---|---|---|---|---|\n";
  for (const auto& env : kEnvTable) {
    out += fmt::format("| `{}` | {} | {} | {} | {} |\n", env.name, env.type_text, env.default_text,
                       to_string(env.origin), table_cell(env.description));
  }
  out += "<!-- END generated -->\n";
  return out;
}

}  // namespace ts::server

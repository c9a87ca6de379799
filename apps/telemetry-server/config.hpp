#pragma once
/// telemetry-server configuration: the reference server's JSON keys (spec §10) plus our documented
/// extensions, parsed and validated once at start-up into one plain `Config` value.
///
/// Every key is declared once, in the key table in config.cpp. That table drives parsing, the error
/// and warning texts, and `config_reference_markdown()` (the generated part of docs/config.md). The
/// defaults are the member initializers below; the table reads them from a default `Config`.
#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ts::server {

/// The dispatcher names a reference config may use in `records` (spec §8.1), in the reference's
/// order.
enum class Dispatcher { Kafka, Kinesis, Pubsub, Zmq, Mqtt, Redis, Logger };

/// Every dispatcher, in the order of spec §8.1 (the order of "known: ..." in error messages).
inline constexpr std::array kAllDispatchers{
    Dispatcher::Kafka, Dispatcher::Kinesis, Dispatcher::Pubsub, Dispatcher::Zmq,
    Dispatcher::Mqtt,  Dispatcher::Redis,   Dispatcher::Logger};

/// The dispatchers this build implements. A name outside this set in `records` stops start-up.
/// Adding a dispatcher (kafka is next) is one entry here.
inline constexpr std::array kSupportedDispatchers{Dispatcher::Mqtt, Dispatcher::Logger};

/// The config name of a dispatcher ("mqtt").
std::string_view to_string(Dispatcher dispatcher);

/// The dispatcher with this exact name. Case-sensitive, as in the reference: "MQTT" is unknown.
std::optional<Dispatcher> dispatcher_from_string(std::string_view name);

/// `tls`: the vehicle-facing mTLS listener. File paths are relative to the working directory.
struct TlsConfig {
  std::string server_cert;  ///< PEM chain, checked readable at load
  std::string server_key;   ///< PEM key, checked readable at load
  std::string ca_file;  ///< PEM CAs that issued vehicle certificates; required (no embedded bundle)
  bool native_record_layer = true;  ///< extension: Tls13Records after a TLS 1.3 handshake
};

/// `rate_limit` (spec §6): a per-connection sliding-log limiter.
struct RateLimitConfig {
  bool enabled = false;
  std::uint32_t message_limit = 0;  ///< ≥ 1 when enabled (checked at load)
  /// From `message_interval_time` (seconds) or `MessageIntervalTimeSecond` (nanoseconds, wins when
  /// non-zero). > 0 when enabled (checked at load).
  std::chrono::nanoseconds interval{0};
};

/// spec §6: with rate limiting disabled the reference still runs a limiter of this size, only to
/// count (nothing is dropped). The link uses these values whenever `RateLimitConfig::enabled` is
/// false.
inline constexpr std::uint32_t kCountingOnlyMessageLimit = 100;
inline constexpr std::chrono::seconds kCountingOnlyInterval{60};

/// `logger`: the logger dispatcher (spec §8.7).
struct LoggerConfig {
  bool verbose = false;
};

/// `monitoring.statsd`: StatsD output, used by the reference only when Prometheus is off.
struct StatsdConfig {
  std::string host;
  std::string prefix;
  std::chrono::milliseconds flush_period{100};
};

/// `monitoring`: metrics and profiling listeners (spec §2.6).
struct MonitoringConfig {
  std::uint16_t prometheus_metrics_port = 0;  ///< 0 = no Prometheus listener
  std::string prometheus_metrics_host = "127.0.0.1";
  std::uint16_t profiler_port = 0;  ///< 0 = no profiler listener
  std::string profiler_host = "127.0.0.1";
  std::string profiling_path;
  std::optional<StatsdConfig> statsd;
};

/// `mqtt.broker` after the rules of spec §8.8: no `://` means `tcp://`, a leading `:` (or an empty
/// host) means 127.0.0.1; a missing port is 1883, or 8883 for TLS schemes.
struct MqttBroker {
  std::string scheme;  ///< lower case: tcp, mqtt (plain) or ssl, tls, mqtts, tcps (TLS)
  std::string host;    ///< empty = not configured; IPv6 addresses without brackets
  std::uint16_t port = 0;
  bool tls = false;

  /// "scheme://host:port", IPv6 hosts in brackets.
  std::string url() const;
};

/// Parses `mqtt.broker`. Throws ConfigError (key `mqtt.broker`) for an unsupported scheme,
/// credentials or a path in the URL, or a bad port.
MqttBroker parse_mqtt_broker(std::string_view text);

/// `mqtt` (spec §8.8). In the reference a timeout of 0 means "the default"; so it is here.
struct MqttConfig {
  MqttBroker broker;
  std::string client_id;
  std::string username;
  std::string password;
  std::string topic_base;
  int qos = 0;
  bool retained = false;
  std::chrono::milliseconds connect_timeout{30000};
  std::chrono::milliseconds publish_timeout{2500};  ///< one budget per record
  std::chrono::milliseconds disconnect_timeout{250};
  std::chrono::milliseconds connect_retry_interval{10000};
  std::chrono::seconds keep_alive{30};
  // Our extensions: TLS to the broker (only with a TLS broker scheme).
  std::string ca_file;    ///< empty = the system's default CAs
  std::string cert_file;  ///< client certificate, together with key_file
  std::string key_file;
  /// V field messages as {"value":<value>,"ts":"<created_at>"} (pipeline::MqttFormatOptions).
  bool event_time_envelope = false;
  /// One message per V record on <base>/<VIN>/v (pipeline::MqttFormatOptions::record_message).
  bool record_message = false;
};

/// Upper bound of `max_connections_per_identity`.
inline constexpr unsigned kMaxConnectionsPerIdentity = 1000;
/// Upper bound of `workers` and `--workers`.
inline constexpr unsigned kMaxWorkers = 1024;

/// The whole telemetry-server configuration. A plain value: built once by `parse_config` or
/// `load_config_file`, then copied or sliced into each module. Not changed after start-up.
/// After a successful load the cross-key rules hold: `tls` is complete and readable, every
/// dispatcher named in `records` is supported and configured, `reliable_ack_sources` is valid.
struct Config {
  std::string host;  ///< empty = all interfaces
  std::uint16_t port = 0;
  std::uint16_t status_port = 0;  ///< 0 = no /status listener
  TlsConfig tls;
  bool use_default_eng_ca = false;  ///< accepted for compatibility; nothing embedded to switch to
  std::string namespace_prefix;     ///< the `namespace` key
  std::map<std::string, std::vector<Dispatcher>> records;  ///< record type -> dispatchers
  std::map<std::string, Dispatcher> reliable_ack_sources;  ///< record type -> dispatcher
  bool transmit_decoded_records = false;
  RateLimitConfig rate_limit;
  std::vector<std::string> vins_signal_tracking_enabled;  ///< unique, in first-seen order, ≤ 20
  std::string log_level = "info";  ///< trace, debug, info, warn, error, fatal or panic
  bool json_log_enable = false;
  LoggerConfig logger;
  MonitoringConfig monitoring;
  std::optional<MqttConfig> mqtt;                           ///< present iff the key is
  std::optional<std::map<std::string, std::string>> kafka;  ///< librdkafka properties
  unsigned workers = 0;                                     ///< 0 = one per hardware thread
  /// Extension: sessions one certificate identity may hold (1..kMaxConnectionsPerIdentity).
  unsigned max_connections_per_identity = 4;
  /// Environment SUPPRESS_TLS_HANDSHAKE_ERROR_LOGGING (spec §10.3).
  bool suppress_tls_handshake_error_logging = false;
};

/// `config.workers`, or the number of hardware threads (at least 1) when it is 0.
unsigned effective_workers(const Config& config);

/// A problem that does not stop start-up: an unknown key, an ignored section, an unknown log level.
/// Collected by the loader; the caller logs them once logging is configured.
struct ConfigWarning {
  std::string key;  ///< full key path as written, e.g. "reliable_ack" or "mqtt.qoss"
  std::string message;

  /// "key: message".
  std::string text() const;
};

/// Thrown when the configuration must stop start-up. `what()` is the full message: it starts with
/// the key path ("mqtt.qos: must be 0, 1 or 2"), except where the reference server has its own text
/// for the check (spec §2.2, §5, §8.1, §10.2), which is kept verbatim so that searches for the
/// reference's messages still work. `key()` names the key in every case ("" for file-level errors).
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string key, const std::string& message);
  const std::string& key() const noexcept { return key_; }

 private:
  std::string key_;
};

/// A validated configuration and the warnings found on the way.
struct LoadedConfig {
  Config config;
  std::vector<ConfigWarning> warnings;
};

/// Reads one environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

/// The process environment (std::getenv).
std::optional<std::string> process_environment(std::string_view name);

/// What the loader needs besides the JSON text. Tests replace both members.
struct ConfigOptions {
  std::span<const Dispatcher> supported_dispatchers = kSupportedDispatchers;
  EnvLookup env = process_environment;
};

/// Parses and validates a configuration from JSON text. Checks that files named by `tls.*` and
/// `mqtt.*_file` are readable (file-system access, so call it at start-up, not on a shard).
/// Throws ConfigError.
LoadedConfig parse_config(std::string_view json_text, const ConfigOptions& options = {});

/// Reads `path` and calls parse_config. File-level errors (missing file, malformed JSON) start
/// with the path. Throws ConfigError.
LoadedConfig load_config_file(const std::filesystem::path& path, const ConfigOptions& options = {});

/// The key and environment-variable reference as Markdown, generated from the key table. It
/// appears verbatim in docs/config.md (a unit test checks that).
std::string config_reference_markdown();

}  // namespace ts::server

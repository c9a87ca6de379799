#pragma once
/// teslasync-api configuration: environment variables (shared/DESIGN.md contract), parsed and
/// validated once at start-up into one plain `Config` value.
///
/// Every variable is declared once, in the table in config.cpp, with its default and a one-line
/// description. The table drives parsing, error messages that name the variable, `--help`, and the
/// generated table in docs/teslasync-api.md (checked by a test). The embedded defaults need no
/// variable at all: SQLite in the data dir, no Redis, Mosquitto on 127.0.0.1:1883.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ts::api {

struct Config {
  // HTTP
  std::string http_host = "127.0.0.1";
  std::uint16_t http_port = 8080;
  std::string data_dir = "./data";
  std::string api_token;  ///< empty: generated at first start and stored in the data dir
  std::string web_dir;    ///< static UI files; empty: none served
  std::size_t http_threads = 2;  ///< worker threads for handlers that touch the database

  // Storage
  std::string database_url;  ///< empty: SQLite file in data_dir
  std::chrono::hours retention{24 * 365};  ///< signal_log retention; 0 = keep forever
  std::chrono::hours dead_letter_retention{24 * 30};  ///< dead letters kept this long (0: forever)
  std::uint64_t dead_letter_max_rows = 100'000;        ///< and at most this many (oldest go first)
  std::size_t writer_queue_batches = 64;   ///< bounded queue between ingest and the writer

  // Redis (L2 + SSE fan-out across replicas)
  std::string redis_url;  ///< empty: no L2
  std::chrono::seconds redis_key_ttl{7 * 24 * 3600};

  // Fleet Telemetry ingest
  bool telemetry_enabled = true;
  std::string mqtt_host = "127.0.0.1";
  std::uint16_t mqtt_port = 1883;
  bool mqtt_tls = false;
  std::string mqtt_ca_file;
  std::string mqtt_username;
  std::string mqtt_password;
  std::string mqtt_client_id = "teslasync-api";
  std::string topic_base = "telemetry";
  std::string telemetry_host;        ///< public host name vehicles stream to (config push)
  std::uint16_t telemetry_port = 4443;
  std::chrono::milliseconds stale_timeout{15 * 60 * 1000};
  std::chrono::milliseconds fallback_poll_interval{5 * 60 * 1000};  ///< 0 = no fallback polling
  /// First wait before asking again about an asleep/offline car; doubled per asleep answer up
  /// to 30 min (polling::ScheduleOptions::asleep_initial / asleep_max).
  std::chrono::milliseconds asleep_backoff{5 * 60 * 1000};
  std::chrono::milliseconds batch_window{100};
  std::size_t batch_max_messages = 256;
  /// An event time further ahead of its receive time never becomes the live value (L1, Redis,
  /// warm-up); it is still stored with its claimed time.
  std::chrono::milliseconds max_future_skew{5 * 60 * 1000};
  std::vector<std::string> vehicles;  ///< VINs registered at start (besides the database)

  // SSE
  std::size_t sse_replay_events = 4096;
  std::size_t sse_client_buffer_events = 1024;
  std::chrono::seconds sse_heartbeat{15};

  // Tesla
  std::string public_key_file;
  std::string fleet_api_base_url;  ///< empty: no Fleet API (no polling, no diagnostics refresh)
  std::string auth_base_url = "https://auth.tesla.com";
  std::string client_id;
  std::string client_secret;
  std::string refresh_token;  ///< the owner's user refresh token, for vehicle_data polling
  std::chrono::milliseconds errors_refresh_interval{15 * 60 * 1000};  ///< 0 = manual only

  std::string log_level = "info";
};

/// A variable that cannot be used; `what()` names it and says why.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Reads every variable through `getenv` (a parameter so tests need not touch the process
/// environment). Throws ConfigError for the first invalid value.
using Getenv = std::function<std::optional<std::string>(std::string_view name)>;
Config load_config(const Getenv& getenv);
/// The process environment.
Config load_config_from_environment();

/// One line per variable: name, default, description (for --help).
std::string environment_help();
/// The Markdown table of every variable (the generated part of docs/teslasync-api.md).
std::string environment_markdown();

/// Parses a Go-style duration: "15m", "30s", "1h30m", "250ms", "0". Bare integers take `bare_unit`.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text,
                                                        std::chrono::milliseconds bare_unit);

}  // namespace ts::api

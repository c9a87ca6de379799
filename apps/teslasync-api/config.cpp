#include "config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <span>

#include "signal/vin.hpp"

namespace ts::api {
namespace {

using Error = std::optional<std::string>;  // empty = accepted
using Setter = Error (*)(Config&, std::string_view);

struct Variable {
  std::string_view name;
  std::string_view default_text;
  std::string_view description;
  Setter set;
};

Error parse_bool(std::string_view v, bool& out) {
  std::string s(v);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "1" || s == "true" || s == "yes" || s == "on") {
    out = true;
    return {};
  }
  if (s == "0" || s == "false" || s == "no" || s == "off") {
    out = false;
    return {};
  }
  return "must be true or false";
}

template <class Int>
Error parse_int(std::string_view v, Int& out, std::int64_t min, std::int64_t max) {
  std::int64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n < min || n > max) {
    return fmt::format("must be an integer in {}..{}", min, max);
  }
  out = static_cast<Int>(n);
  return {};
}

/// Whole days, 0..100000, into hours.
Error parse_days(std::string_view v, std::chrono::hours& out) {
  int days = 0;
  if (auto e = parse_int(v, days, 0, 100000)) return e;
  out = std::chrono::hours(24 * days);
  return {};
}

Error parse_host_port(std::string_view v, std::string& host, std::uint16_t& port) {
  // host:port, [v6]:port, or host alone (port unchanged).
  std::string_view h = v, p;
  if (v.starts_with('[')) {
    auto close = v.find(']');
    if (close == std::string_view::npos) return "must be HOST:PORT";
    h = v.substr(1, close - 1);
    if (close + 1 < v.size()) {
      if (v[close + 1] != ':') return "must be HOST:PORT";
      p = v.substr(close + 2);
    }
  } else if (auto colon = v.rfind(':'); colon != std::string_view::npos) {
    h = v.substr(0, colon);
    p = v.substr(colon + 1);
  }
  if (!p.empty()) {
    if (auto e = parse_int(p, port, 1, 65535)) return "port " + *e;
  }
  host = std::string(h);
  return {};
}

Error parse_duration_into(std::string_view v, std::chrono::milliseconds& out,
                          std::chrono::milliseconds bare) {
  auto d = parse_duration(v, bare);
  if (!d) return "must be a duration such as 30s, 15m, 1h30m or 0";
  out = *d;
  return {};
}

std::string_view strip_url_scheme(std::string_view v, std::string_view scheme) {
  return v.starts_with(scheme) ? v.substr(scheme.size()) : v;
}

const Variable kVariables[] = {
    {"TESLASYNC_HTTP_ADDR", "127.0.0.1:8080", "HTTP listen address (REST, SSE, public key, UI)",
     [](Config& c, std::string_view v) { return parse_host_port(v, c.http_host, c.http_port); }},
    {"TESLASYNC_DATA_DIR", "./data", "data directory: SQLite database, generated admin token",
     [](Config& c, std::string_view v) -> Error {
       if (v.empty()) return "must not be empty";
       c.data_dir = v;
       return {};
     }},
    {"TESLASYNC_API_TOKEN", "(generated)",
     "admin API token from the environment (at least 16 characters); when set, none is generated "
     "at first start, and tokens already stored stay valid until revoked",
     [](Config& c, std::string_view v) -> Error {
       if (v.size() < 16) return "must be at least 16 characters";
       c.api_token = v;
       return {};
     }},
    {"TESLASYNC_WEB_DIR", "(none)",
     "directory of the built web UI (reserved: this release serves no UI yet, so it is only parsed)",
     [](Config& c, std::string_view v) -> Error {
       c.web_dir = v;
       return {};
     }},
    {"TESLASYNC_HTTP_THREADS", "2", "worker threads for requests that read the database",
     [](Config& c, std::string_view v) { return parse_int(v, c.http_threads, 1, 64); }},
    {"DATABASE_URL", "(SQLite in the data dir)",
     "signal_log database: sqlite:PATH, or postgresql://user:pass@host:port/db",
     [](Config& c, std::string_view v) -> Error {
       c.database_url = v;
       return {};
     }},
    {"TESLASYNC_RETENTION_DAYS", "365", "days of signal_log kept; 0 keeps everything",
     [](Config& c, std::string_view v) { return parse_days(v, c.retention); }},
    {"TESLASYNC_DEAD_LETTER_RETENTION_DAYS", "30",
     "days dead letters are kept (their own retention, apart from signal_log's); 0 keeps them",
     [](Config& c, std::string_view v) { return parse_days(v, c.dead_letter_retention); }},
    {"TESLASYNC_DEAD_LETTER_MAX_ROWS", "100000",
     "dead letters kept at most; beyond it the oldest are removed (hourly)",
     [](Config& c, std::string_view v) {
       return parse_int(v, c.dead_letter_max_rows, 1, 1'000'000'000);
     }},
    {"TESLASYNC_MAX_FUTURE_SKEW", "5m",
     "how far an event time may lead its receive time and still become the live value; later "
     "ones are stored with their claimed time but never shown as current",
     [](Config& c, std::string_view v) -> Error {
       if (auto e = parse_duration_into(v, c.max_future_skew, std::chrono::seconds(1))) return e;
       if (c.max_future_skew < std::chrono::seconds(1) || c.max_future_skew > std::chrono::hours(24 * 7)) {
         return "must be 1s..168h";
       }
       return {};
     }},
    {"TESLASYNC_WRITER_QUEUE", "64",
     "batches queued for the signal_log writer before ingest applies back-pressure",
     [](Config& c, std::string_view v) { return parse_int(v, c.writer_queue_batches, 1, 100000); }},
    {"REDIS_URL", "(unset: no L2)", "Redis for the L2 state mirror and SSE fan-out: redis://[:pass@]host:port[/db]",
     [](Config& c, std::string_view v) -> Error {
       c.redis_url = v;
       return {};
     }},
    {"TESLASYNC_REDIS_KEY_TTL", "168h", "expiry of a vehicle's Redis hash after its last write",
     [](Config& c, std::string_view v) -> Error {
       std::chrono::milliseconds d{};
       if (auto e = parse_duration_into(v, d, std::chrono::seconds(1))) return e;
       if (d < std::chrono::seconds(1)) return "must be at least 1s";
       c.redis_key_ttl = std::chrono::duration_cast<std::chrono::seconds>(d);
       return {};
     }},
    {"FLEET_TELEMETRY_ENABLED", "true", "ingest the telemetry stream from MQTT",
     [](Config& c, std::string_view v) { return parse_bool(v, c.telemetry_enabled); }},
    {"FLEET_TELEMETRY_MQTT_BROKER", "127.0.0.1:1883",
     "MQTT broker telemetry-server publishes to: HOST:PORT, tcp://HOST:PORT or mqtts://HOST:PORT",
     [](Config& c, std::string_view v) -> Error {
       c.mqtt_tls = v.starts_with("mqtts://") || v.starts_with("ssl://");
       if (c.mqtt_tls) c.mqtt_port = 8883;
       for (auto scheme : {"tcp://", "mqtt://", "mqtts://", "ssl://"}) v = strip_url_scheme(v, scheme);
       return parse_host_port(v, c.mqtt_host, c.mqtt_port);
     }},
    {"FLEET_TELEMETRY_MQTT_CA_FILE", "(system CAs)", "PEM CA bundle for mqtts:// brokers",
     [](Config& c, std::string_view v) -> Error {
       c.mqtt_ca_file = v;
       return {};
     }},
    {"FLEET_TELEMETRY_MQTT_USERNAME", "(none)", "MQTT user name",
     [](Config& c, std::string_view v) -> Error {
       c.mqtt_username = v;
       return {};
     }},
    {"FLEET_TELEMETRY_MQTT_PASSWORD", "(none)", "MQTT password",
     [](Config& c, std::string_view v) -> Error {
       c.mqtt_password = v;
       return {};
     }},
    {"FLEET_TELEMETRY_MQTT_CLIENT_ID", "teslasync-api",
     "MQTT client id; stable, so the broker keeps the session and queues messages while the API is down",
     [](Config& c, std::string_view v) -> Error {
       if (v.empty() || v.size() > 23 * 8) return "must be 1..184 characters";
       c.mqtt_client_id = v;
       return {};
     }},
    {"FLEET_TELEMETRY_TOPIC_BASE", "telemetry", "MQTT topic base telemetry-server publishes under",
     [](Config& c, std::string_view v) -> Error {
       if (v.empty() || v.find_first_of("+#") != std::string_view::npos) {
         return "must be non-empty without + or #";
       }
       c.topic_base = v;
       return {};
     }},
    {"FLEET_TELEMETRY_HOST", "(none)",
     "public host name vehicles stream to (reserved for the telemetry config push: only parsed in "
     "this release)",
     [](Config& c, std::string_view v) -> Error {
       c.telemetry_host = v;
       return {};
     }},
    {"FLEET_TELEMETRY_PORT", "4443",
     "public port vehicles stream to (reserved for the telemetry config push: only parsed)",
     [](Config& c, std::string_view v) { return parse_int(v, c.telemetry_port, 1, 65535); }},
    {"FLEET_TELEMETRY_STALE_TIMEOUT", "15m",
     "a vehicle silent this long on the stream is polled through the Fleet API",
     [](Config& c, std::string_view v) -> Error {
       if (auto e = parse_duration_into(v, c.stale_timeout, std::chrono::seconds(1))) return e;
       if (c.stale_timeout.count() <= 0) return "must be more than 0";
       return {};
     }},
    {"FLEET_TELEMETRY_FALLBACK_POLL_INTERVAL", "5m",
     "poll interval of a vehicle whose stream is stale; 0 disables fallback polling",
     [](Config& c, std::string_view v) {
       return parse_duration_into(v, c.fallback_poll_interval, std::chrono::seconds(1));
     }},
    {"FLEET_TELEMETRY_ASLEEP_BACKOFF", "5m",
     "first wait before asking again about an asleep or offline car (never woken); doubled per "
     "asleep answer up to 30m",
     [](Config& c, std::string_view v) -> Error {
       if (auto e = parse_duration_into(v, c.asleep_backoff, std::chrono::seconds(1))) return e;
       if (c.asleep_backoff < std::chrono::seconds(1) || c.asleep_backoff > std::chrono::minutes(30)) {
         return "must be 1s..30m";
       }
       return {};
     }},
    {"FLEET_TELEMETRY_BATCH_MS", "100", "longest time a message waits for its batch (milliseconds or a duration)",
     [](Config& c, std::string_view v) -> Error {
       if (auto e = parse_duration_into(v, c.batch_window, std::chrono::milliseconds(1))) return e;
       if (c.batch_window.count() < 1 || c.batch_window > std::chrono::seconds(10)) {
         return "must be 1ms..10s";
       }
       return {};
     }},
    {"FLEET_TELEMETRY_BATCH_MAX_MESSAGES", "256", "messages per batch at most",
     [](Config& c, std::string_view v) { return parse_int(v, c.batch_max_messages, 1, 1'000'000); }},
    {"TESLASYNC_VEHICLES", "(none)",
     "comma-separated VINs to register at start (each 1-32 letters and digits)",
     [](Config& c, std::string_view v) -> Error {
       c.vehicles.clear();
       while (!v.empty()) {
         auto comma = v.find(',');
         auto vin = v.substr(0, comma);
         while (!vin.empty() && vin.front() == ' ') vin.remove_prefix(1);
         while (!vin.empty() && vin.back() == ' ') vin.remove_suffix(1);
         if (!vin.empty() && !signal::valid_vin(vin)) {
           return fmt::format("{:?} is not a VIN ({})", vin, signal::kVinRule);
         }
         if (!vin.empty()) c.vehicles.emplace_back(vin);
         v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
       }
       return {};
     }},
    {"TESLASYNC_SSE_REPLAY_EVENTS", "4096", "events kept for Last-Event-ID resume",
     [](Config& c, std::string_view v) { return parse_int(v, c.sse_replay_events, 0, 10'000'000); }},
    {"TESLASYNC_SSE_CLIENT_BUFFER", "1024",
     "events buffered per SSE client; a client further behind is disconnected",
     [](Config& c, std::string_view v) {
       return parse_int(v, c.sse_client_buffer_events, 1, 1'000'000);
     }},
    {"TESLASYNC_SSE_HEARTBEAT", "15s", "SSE heartbeat interval",
     [](Config& c, std::string_view v) -> Error {
       std::chrono::milliseconds d{};
       if (auto e = parse_duration_into(v, d, std::chrono::seconds(1))) return e;
       if (d < std::chrono::seconds(1)) return "must be at least 1s";
       c.sse_heartbeat = std::chrono::duration_cast<std::chrono::seconds>(d);
       return {};
     }},
    {"TESLA_PUBLIC_KEY_FILE", "(none)",
     "PEM public key served at /.well-known/appspecific/com.tesla.3p.public-key.pem (tsctl keygen)",
     [](Config& c, std::string_view v) -> Error {
       c.public_key_file = v;
       return {};
     }},
    {"TESLA_FLEET_API_BASE_URL", "(none: no polling, no diagnostics refresh)",
     "Fleet API region base URL, e.g. https://fleet-api.prd.na.vn.cloud.tesla.com",
     [](Config& c, std::string_view v) -> Error {
       if (!v.empty() && !v.starts_with("http://") && !v.starts_with("https://")) {
         return "must start with https:// (or http:// for a local stand-in)";
       }
       c.fleet_api_base_url = v;
       return {};
     }},
    {"TESLA_AUTH_BASE_URL", "https://auth.tesla.com", "OAuth token endpoint base URL",
     [](Config& c, std::string_view v) -> Error {
       if (!v.starts_with("http://") && !v.starts_with("https://")) return "must start with https://";
       c.auth_base_url = v;
       return {};
     }},
    {"TESLA_CLIENT_ID", "(none)", "Tesla developer application client id",
     [](Config& c, std::string_view v) -> Error {
       c.client_id = v;
       return {};
     }},
    {"TESLA_CLIENT_SECRET", "(none)", "Tesla developer application client secret",
     [](Config& c, std::string_view v) -> Error {
       c.client_secret = v;
       return {};
     }},
    {"TESLA_REFRESH_TOKEN", "(none)",
     "the vehicle owner's OAuth refresh token (polling vehicle_data); Tesla rotates it and the "
     "rotated one is saved, but a changed value here wins at the next start",
     [](Config& c, std::string_view v) -> Error {
       c.refresh_token = v;
       return {};
     }},
    {"TESLASYNC_ERRORS_REFRESH_INTERVAL", "15m",
     "how often Tesla's fleet telemetry errors and error VINs are fetched (the first time 5 s after "
     "start); 0 = on request only",
     [](Config& c, std::string_view v) {
       return parse_duration_into(v, c.errors_refresh_interval, std::chrono::seconds(1));
     }},
    {"TESLASYNC_LOG_LEVEL", "info", "trace, debug, info, warn or error",
     [](Config& c, std::string_view v) -> Error {
       for (auto l : {"trace", "debug", "info", "warn", "error"}) {
         if (v == l) {
           c.log_level = v;
           return {};
         }
       }
       return "must be trace, debug, info, warn or error";
     }},
};

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text,
                                                        std::chrono::milliseconds bare_unit) {
  if (text.empty()) return std::nullopt;
  std::int64_t bare = 0;
  if (auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), bare);
      ec == std::errc() && end == text.data() + text.size()) {
    if (bare < 0) return std::nullopt;
    return bare * bare_unit;
  }
  std::int64_t total_ms = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
    if (ec != std::errc() || n < 0) return std::nullopt;
    rest.remove_prefix(static_cast<std::size_t>(end - rest.data()));
    std::int64_t unit_ms = 0;
    if (rest.starts_with("ms")) {
      unit_ms = 1;
      rest.remove_prefix(2);
    } else if (rest.starts_with("h")) {
      unit_ms = 3'600'000;
      rest.remove_prefix(1);
    } else if (rest.starts_with("m")) {
      unit_ms = 60'000;
      rest.remove_prefix(1);
    } else if (rest.starts_with("s")) {
      unit_ms = 1000;
      rest.remove_prefix(1);
    } else {
      return std::nullopt;
    }
    if (n > (std::int64_t{1} << 50) / unit_ms) return std::nullopt;
    total_ms += n * unit_ms;
  }
  return std::chrono::milliseconds(total_ms);
}

Config load_config(const Getenv& getenv) {
  Config config;
  for (const auto& var : kVariables) {
    auto value = getenv(var.name);
    if (!value) continue;
    if (auto error = var.set(config, *value)) {
      throw ConfigError(fmt::format("{}={:?}: {}", var.name, *value, *error));
    }
  }
  if (!config.fleet_api_base_url.empty() && config.client_id.empty()) {
    throw ConfigError("TESLA_CLIENT_ID: must be set when TESLA_FLEET_API_BASE_URL is set");
  }
  return config;
}

Config load_config_from_environment() {
  return load_config([](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  });
}

std::string environment_help() {
  std::string out;
  for (const auto& var : kVariables) {
    out += fmt::format("  {:<40} {}\n  {:<40} default: {}\n", var.name, var.description, "",
                       var.default_text);
  }
  return out;
}

std::string environment_markdown() {
  std::string out = "| variable | default | meaning |\n|---|---|---|\n";
  for (const auto& var : kVariables) {
    out += fmt::format("| `{}` | {} | {} |\n", var.name, var.default_text, var.description);
  }
  return out;
}

}  // namespace ts::api

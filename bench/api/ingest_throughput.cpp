// Datums per second from Mosquitto into teslasync-api's signal_log, nothing lost (issue 3
// "Benchmarks"): the real teslasync-api process, a real Mosquitto, SQLite or a real PostgreSQL
// (durable settings), all started here on 127.0.0.1. A measurement program, not a test and not a
// Google Benchmark: run it by hand; results go in docs/benchmarks.md.
//
// Each message is one datum as telemetry-server publishes it with `mqtt.event_time_envelope`:
// topic `telemetry/<VIN>/v/<Field>`, payload `{"value":…,"ts":"…"}`, QoS 1, 20 fields per
// vehicle, every (VIN, field, ts) distinct so every message must become one row.
//
//   backlog  the API's persistent session exists, the API is stopped, N messages are queued on
//            the broker (what an API restart or a burst leaves), then the API starts: timed from
//            its launch to the last row (and from the first row to the last).
//   live     the API runs while our publisher sends N messages as fast as the broker takes them:
//            timed from the first publish to the last row.
// Both end with rows == N (checked: the row counter and the duplicate counter), and report the
// API's CPU time (datums per API CPU-second) and its RSS, i.e. L1 holding V vehicles x 20 signals.
//
//   build/bench/api_ingest_throughput [--mode backlog|live] [--messages N] [--vehicles V]
//       [--postgres] [--batch-ms MS] [--batch-max N] [--seconds S] [--record-messages] [--trace]
//
// --record-messages: each message is a whole record of the 20 fields on `telemetry/<VIN>/v`, as
// telemetry-server publishes with `mqtt.record_message` (N messages = 20 N datums).
//
// Prints one JSON line.
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/log.hpp"
#include "flood.hpp"
#include "signal/signal.hpp"
#include "support/http_client.hpp"
#include "support/mosquitto_broker.hpp"
#include "support/ports.hpp"
#include "support/postgres_server.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace ts_test = ts::testsupport;

constexpr const char* kToken = "tsk_bench-token-0123456789abcdef0123";

/// The first 20 fields of a V record as vehicle-sim sends them, with a value of each one's
/// published JSON shape (numbers, strings, booleans, enums, a location).
struct FieldShape {
  const char* name;
  const char* kind;  // 'n' number, 's' string, 'b' boolean, 'e' enum, 'l' location
};
constexpr FieldShape kFields[] = {
    {"VehicleSpeed", "n"}, {"Odometer", "n"},       {"Soc", "n"},          {"BatteryLevel", "n"},
    {"EstBatteryRange", "n"}, {"Gear", "e"},        {"Location", "l"},     {"GpsHeading", "n"},
    {"PackVoltage", "n"},  {"PackCurrent", "n"},    {"ChargeState", "e"},  {"Locked", "b"},
    {"SentryMode", "e"},   {"VehicleName", "s"},    {"Version", "s"},      {"InsideTemp", "n"},
    {"OutsideTemp", "n"},  {"TpmsPressureFl", "n"}, {"TpmsPressureRr", "n"}, {"ChargeLimitSoc", "n"},
};
constexpr std::size_t kFieldCount = std::size(kFields);

std::string vin_of(std::size_t v) {
  std::string digits = std::to_string(v % 1'000'000);
  return "5YJ3E1EA7KF" + std::string(6 - digits.size(), '0') + digits;
}

/// The JSON of datum `i` (field i % 20 of some record) in its field's shape.
std::string value_json(std::size_t i, std::size_t field, std::size_t round) {
  std::string value;
  switch (kFields[field].kind[0]) {
    case 'n': value = std::to_string(static_cast<double>(i % 100000) / 10.0); break;
    case 's': value = "\"2026.44.25 " + std::to_string(round % 10) + "\""; break;
    case 'b': value = round % 2 ? "true" : "false"; break;
    case 'e': value = round % 2 ? "\"ChargeStateCharging\"" : "\"ChargeStateIdle\""; break;
    default:
      value = "{\"latitude\":37." + std::to_string(100000 + i % 900000) +
              ",\"longitude\":-122." + std::to_string(100000 + i % 900000) + "}";
  }
  return value;
}

/// One event time per record round, 1 s apart: every (VIN, field, ts) is distinct.
std::string event_time(std::size_t vehicle, std::size_t round) {
  return ts::signal::format_time(1'790'000'000'000'000 + static_cast<std::int64_t>(round) * 1'000'000 +
                                 static_cast<std::int64_t>(vehicle));
}

/// Datum `i` as a v/<Field> message with the event-time envelope.
void make_field_message(std::size_t i, std::size_t vehicles, std::string& topic, std::string& payload) {
  const std::size_t field = i % kFieldCount;
  const std::size_t vehicle = (i / kFieldCount) % vehicles;
  const std::size_t round = i / (kFieldCount * vehicles);
  topic = "telemetry/" + vin_of(vehicle) + "/v/" + kFields[field].name;
  payload = "{\"value\":" + value_json(i, field, round) + ",\"ts\":\"" + event_time(vehicle, round) + "\"}";
}

/// Record `r` (datums 20r .. 20r+19) as one record message (mqtt.record_message).
void make_record_message(std::size_t r, std::size_t vehicles, std::string& topic, std::string& payload) {
  const std::size_t vehicle = r % vehicles;
  const std::size_t round = r / vehicles;
  topic = "telemetry/" + vin_of(vehicle) + "/v";
  payload = "{\"ts\":\"" + event_time(vehicle, round) + "\",\"data\":{";
  for (std::size_t field = 0; field < kFieldCount; ++field) {
    if (field) payload += ',';
    payload += std::string("\"") + kFields[field].name + "\":" + value_json(r * kFieldCount + field, field, round);
  }
  payload += "}}";
}

/// One sample of the API's /metrics.
struct Sample {
  double rows = 0;
  double duplicates = 0;
  double cpu_s = 0;
  double rss = 0;
  double disconnects = 0;  ///< MQTT connections lost (redelivery follows)
};

std::optional<Sample> sample(std::uint16_t port) {
  auto r = ts_test::http_request(port, "GET", "/metrics", {},
                                 {{"Authorization", std::string("Bearer ") + kToken}}, 5s);
  if (r.status != 200) return std::nullopt;
  Sample s;
  std::istringstream in(r.body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.rfind(' ');
    const std::string name = line.substr(0, sp);
    const double v = std::strtod(line.c_str() + sp + 1, nullptr);
    if (name == "teslasync_storage_rows_written_total{table=\"signal_log\"}") s.rows = v;
    if (name == "teslasync_storage_duplicate_signals_total") s.duplicates = v;
    if (name == "process_cpu_seconds_total") s.cpu_s = v;
    if (name == "process_resident_memory_bytes") s.rss = v;
    if (name == "teslasync_mqtt_disconnects_total") s.disconnects = v;
  }
  return s;
}

struct Options {
  std::string mode = "backlog";
  std::size_t messages = 1'000'000;
  std::size_t vehicles = 1000;
  bool postgres = false;
  std::string batch_ms = "50";
  std::string batch_max = "5000";
  std::chrono::seconds limit{600};
  bool record_messages = false;  ///< one message per record of 20 datums (mqtt.record_message)
  bool trace = false;  ///< every sample on stderr
};

class Api {
 public:
  Api(const Options& o, const ts_test::TempDir& dir, std::uint16_t broker, std::string database_url)
      : dir_(dir), port_(ts_test::free_port()) {
    env_ = {{"TESLASYNC_HTTP_ADDR", "127.0.0.1:" + std::to_string(port_)},
            {"TESLASYNC_DATA_DIR", dir.file("data").string()},
            {"TESLASYNC_API_TOKEN", kToken},
            {"TESLASYNC_LOG_LEVEL", "warn"},
            {"FLEET_TELEMETRY_MQTT_BROKER", "127.0.0.1:" + std::to_string(broker)},
            {"FLEET_TELEMETRY_MQTT_CLIENT_ID", "bench-api"},
            {"FLEET_TELEMETRY_BATCH_MS", o.batch_ms},
            {"FLEET_TELEMETRY_BATCH_MAX_MESSAGES", o.batch_max},
            {"DATABASE_URL", std::move(database_url)}};
  }
  ~Api() { stop(); }

  /// Starts the process and waits for /readyz.
  void start() {
    proc_ = ts_test::Process::start({.argv = {std::string(TS_BIN_DIR) + "/teslasync-api"},
                                     .env = env_, .output_dir = dir_.path(), .append_output = true});
    const auto end = Clock::now() + 60s;
    while (Clock::now() < end) {
      if (ts_test::http_request(port_, "GET", "/readyz", {}, {}, 1s).status == 200) return;
      if (!proc_->running()) break;
      std::this_thread::sleep_for(5ms);
    }
    throw std::runtime_error("teslasync-api did not become ready: " + proc_->stderr_text());
  }
  void stop() {
    if (proc_ && proc_->running()) proc_->terminate(30s);
    proc_.reset();
  }
  /// Registers the vehicles through the REST API (registrations are stored).
  void register_vehicles(std::size_t n) {
    for (std::size_t v = 0; v < n; ++v) {
      auto r = ts_test::http_request(port_, "POST", "/api/v1/vehicles",
                                     "{\"vin\":\"" + vin_of(v) + "\"}",
                                     {{"Authorization", std::string("Bearer ") + kToken}});
      if (r.status != 201 && r.status != 200 && r.status != 409) {
        throw std::runtime_error("register " + vin_of(v) + ": " + std::to_string(r.status) + " " + r.body);
      }
    }
  }
  std::uint16_t port() const { return port_; }
  std::string log() const { return proc_ ? proc_->stderr_text() : std::string(); }

 private:
  const ts_test::TempDir& dir_;
  std::uint16_t port_;
  std::vector<std::pair<std::string, std::string>> env_;
  std::optional<ts_test::Process> proc_;
};

int run(const Options& o) {
  ts_test::TempDir dir("ts-bench-api");
  ts_test::MosquittoBroker broker({.extra_config = {"max_inflight_messages 0",
                                                   "max_queued_messages 100000000"}});
  std::unique_ptr<ts_test::PostgresServer> pg;
  if (o.postgres) pg = std::make_unique<ts_test::PostgresServer>(ts_test::PostgresServerOptions{.durable = true});
  Api api(o, dir, broker.port(), pg ? pg->url() : std::string());
  auto maker = [&](std::size_t i, std::string& topic, std::string& payload) {
    if (o.record_messages) {
      make_record_message(i, o.vehicles, topic, payload);
    } else {
      make_field_message(i, o.vehicles, topic, payload);
    }
  };
  // The rows to expect: one per datum.
  const std::size_t datums = o.record_messages ? o.messages * kFieldCount : o.messages;

  // First start: migrations, the persistent session and its subscription, the vehicles.
  api.start();
  api.register_vehicles(o.vehicles);
  const auto flood_start = Clock::now();
  std::thread publisher;
  Clock::time_point t0;
  double publish_s = 0;
  if (o.mode == "backlog") {
    api.stop();
    ts::bench::flood(broker.port(), o.messages, maker, o.limit);
    publish_s = std::chrono::duration<double>(Clock::now() - flood_start).count();
    t0 = Clock::now();  // from the launch: start-up included (rows start before /readyz)
    api.start();
  } else {
    t0 = Clock::now();
    publisher = std::thread([&] {
      ts::bench::flood(broker.port(), o.messages, maker, o.limit);
      publish_s = std::chrono::duration<double>(Clock::now() - t0).count();
    });
  }
  // The API process is new in both modes, so its counters start at zero; live mode leaves out
  // the CPU of its start-up and the registrations.
  const Sample first = o.mode == "live" ? sample(api.port()).value_or(Sample{}) : Sample{};
  const double rows0 = 0, cpu0 = first.cpu_s;
  std::optional<Clock::time_point> first_row;
  Sample last = first;
  auto last_progress = Clock::now();
  const auto deadline = Clock::now() + o.limit;
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    auto s = sample(api.port());
    if (!s) continue;
    if (!first_row && s->rows > rows0) first_row = Clock::now();
    if (o.trace) {
      std::fprintf(stderr, "%.3f s: %.0f rows, %.2f CPU-s, %.0f duplicates, %.0f disconnects\n",
                   std::chrono::duration<double>(Clock::now() - t0).count(), s->rows, s->cpu_s,
                   s->duplicates, s->disconnects);
    }
    if (s->rows != last.rows) last_progress = Clock::now();
    last = *s;
    if (last.rows - rows0 >= static_cast<double>(datums)) break;
    if (Clock::now() - last_progress > 30s) break;  // stalled: report what arrived
  }
  const auto done = Clock::now();
  if (publisher.joinable()) publisher.join();
  const double rows = last.rows - rows0;
  const double wall = std::chrono::duration<double>(done - t0).count();
  const double drain = first_row ? std::chrono::duration<double>(done - *first_row).count() : 0;
  const double cpu = last.cpu_s - cpu0;
  std::printf(
      "{\"mode\":\"%s\",\"format\":\"%s\",\"backend\":\"%s\",\"messages\":%zu,\"datums\":%zu,\"vehicles\":%zu,\"batch_ms\":%s,"
      "\"batch_max\":%s,\"rows\":%.0f,\"duplicates\":%.0f,\"mqtt_disconnects\":%.0f,\"complete\":%s,\"publish_s\":%.2f,"
      "\"seconds\":%.2f,\"datums_per_s\":%.0f,\"first_to_last_row_s\":%.2f,"
      "\"datums_per_s_first_to_last\":%.0f,\"api_cpu_s\":%.2f,\"datums_per_api_cpu_s\":%.0f,"
      "\"api_rss_mib\":%.1f}\n",
      o.mode.c_str(), o.record_messages ? "record" : "field", o.postgres ? "postgresql" : "sqlite",
      o.messages, datums, o.vehicles,
      o.batch_ms.c_str(), o.batch_max.c_str(), rows, last.duplicates, last.disconnects,
      rows == static_cast<double>(datums) ? "true" : "false", publish_s, wall, rows / wall,
      drain, drain > 0 ? rows / drain : 0.0, cpu, cpu > 0 ? rows / cpu : 0.0, last.rss / 1048576.0);
  std::fflush(stdout);
  if (last.disconnects > 0) {
    auto tail = [](const std::string& t) { return t.substr(t.size() > 3000 ? t.size() - 3000 : 0); };
    std::cerr << "the API lost its broker connection; its log ends with:\n" << tail(api.log())
              << "\nthe broker's log ends with:\n" << tail(broker.log_text()) << "\n";
  }
  if (rows != static_cast<double>(datums)) {
    auto text = api.log();
    auto m = ts_test::http_request(api.port(), "GET", "/metrics", {},
                                   {{"Authorization", std::string("Bearer ") + kToken}}, 5s);
    std::cerr << "incomplete; the API's metrics:\n" << m.body << "\nthe API's log ends with:\n"
              << text.substr(text.size() > 4000 ? text.size() - 4000 : 0) << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--mode") o.mode = next();
      else if (a == "--messages") o.messages = std::stoull(next());
      else if (a == "--vehicles") o.vehicles = std::stoull(next());
      else if (a == "--postgres") o.postgres = true;
      else if (a == "--trace") o.trace = true;
      else if (a == "--record-messages") o.record_messages = true;
      else if (a == "--batch-ms") o.batch_ms = next();
      else if (a == "--batch-max") o.batch_max = next();
      else if (a == "--seconds") o.limit = std::chrono::seconds(std::stoll(next()));
      else throw std::invalid_argument("unknown option " + a);
      if (o.mode != "backlog" && o.mode != "live") throw std::invalid_argument("--mode: backlog or live");
      if (o.vehicles == 0 || o.vehicles > 1'000'000) throw std::invalid_argument("--vehicles: 1-1000000");
    } catch (const std::exception& e) {
      std::cerr << e.what() << "\nusage: " << argv[0]
                << " [--mode backlog|live] [--messages N] [--vehicles V] [--postgres]"
                   " [--batch-ms MS] [--batch-max N] [--seconds S] [--record-messages] [--trace]\n";
      return 2;
    }
  }
  ts::log::configure({.level = "warn"});
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::cerr << "api_ingest_throughput: " << e.what() << "\n";
    return 1;
  }
}

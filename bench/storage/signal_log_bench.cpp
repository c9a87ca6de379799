// Sustained signal_log write throughput through Database::write_batch, with batches shaped like
// the ingest's: a fleet of 1,024 vehicles, each sending one record of 20 fields per second (a
// realistic value mix: floats, ints, enums, a location, a bool, a string), cut into batches of
// 256..4096 signals. Every iteration is one write_batch (one committed transaction); one datum =
// one signal = one item, so items_per_second is datums/s. Targets (docs/storage.md): >= 100,000/s
// on SQLite, >= 250,000/s on PostgreSQL.
//
//   build/bench/signal_log_bench --benchmark_min_time=5
//   TS_BENCH_POSTGRES_URL=postgresql://user@host/db build/bench/signal_log_bench
//   --benchmark_filter=Postgres
//
// SQLite writes to a fresh file under $TMPDIR per run. PostgreSQL: a server started here with the
// fixture of tests/support (durable settings: fsync on, synchronous_commit on) and a fresh database
// per run, or the database of TS_BENCH_POSTGRES_URL (VINs unique per run, so nothing is a
// duplicate).
//
// On a shared, loaded machine the wall-clock rate says more about the other processes than about
// storage, so each run also reports `datums/cpu_s`: datums per CPU-second spent on them, by this
// process and (for the PostgreSQL started here) every server process. It is the rate one otherwise
// idle core would sustain, if the work does not wait for the disk.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "storage/database.hpp"
#include "storage/postgres/postgres_database.hpp"
#include "storage/sqlite/sqlite_database.hpp"
#ifdef TS_BENCH_POSTGRES_FIXTURE
#include "support/postgres_server.hpp"
#endif

namespace {

using ts::signal::Signal;
using ts::signal::Value;
using ts::storage::Database;

constexpr int kVehicles = 1'024;  // x 20 fields = 20,480 = 5 x 4096: whole batches per round
constexpr std::int64_t kSecond = 1'000'000;

int next_run_id() {
  static int run = 0;
  return ++run;
}

/// One second of fleet data (kVehicles x 20 fields), replayed with timestamps one second later
/// each time round, cut into batches of `batch_size`.
class Fleet {
 public:
  Fleet(int run_id, std::size_t batch_size) : batch_size_(batch_size) {
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const std::int64_t start = ts::signal::now() - 3600 * kSecond;
    for (int v = 0; v < kVehicles; ++v) {
      const std::string vin = fmt::format("5YJ3R{:04}B{:07}", run_id % 10'000, v);
      const std::int64_t t = start + static_cast<std::int64_t>(unit(rng) * kSecond);
      auto add = [&](const char* name, Value value) {
        one_second_.push_back(Signal{.vin = vin,
                                     .name = name,
                                     .ts = t,
                                     .received_at = t + 150'000,
                                     .source = ts::signal::Source::Stream,
                                     .value = std::move(value)});
      };
      const double x = unit(rng);
      add("VehicleSpeed", Value::float64(100 * x));
      add("Soc", Value::float64(20 + 60 * x));
      add("BatteryLevel", Value::float64(21 + 60 * x));
      add("Odometer", Value::float64(12'345.6 + v));
      add("EstBatteryRange", Value::float64(250 * x));
      add("RatedRange", Value::float64(260 * x));
      add("Location", Value::location(37.77 + x / 100, -122.41 - x / 100));
      add("GpsHeading", Value::float64(360 * x));
      add("Gear", Value::enumeration(x < 0.5 ? "ShiftStateD" : "ShiftStateP"));
      add("DetailedChargeState", Value::enumeration("DetailedChargeStateDisconnected"));
      add("InsideTemp", Value::float64(21.5));
      add("OutsideTemp", Value::float64(14 + x));
      add("PackVoltage", Value::float64(390 + 10 * x));
      add("PackCurrent", Value::float64(-20 + 40 * x));
      add("ACChargingPower", Value::float64(0));
      add("Locked", Value::boolean(x < 0.7));
      add("SentryMode", Value::enumeration("SentryModeStateOff"));
      add("TpmsPressureFl", Value::float64(2.9));
      add("ChargeLimitSoc", Value::int64(80));
      add("Version", Value::string("2024.44.25.3 1a2b3c4d5e"));
    }
  }

  /// Signals per round (one second of the fleet).
  std::size_t round_size() const { return one_second_.size(); }

  /// The next batch_size signals (views into the fleet's data, valid until the next call).
  std::span<const Signal> next() {
    if (offset_ + batch_size_ > one_second_.size()) {
      for (Signal& s : one_second_) {
        s.ts += kSecond;
        s.received_at += kSecond;
      }
      offset_ = 0;
    }
    std::span<const Signal> out(one_second_.data() + offset_, batch_size_);
    offset_ += batch_size_;
    return out;
  }

 private:
  std::size_t batch_size_;
  std::size_t offset_ = 0;
  std::vector<Signal> one_second_;
};

/// CPU seconds (user + system) used by this process so far.
double own_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/// CPU seconds (user + system) used so far by process `root` and its live children (the
/// postmaster and its backends: each calls setsid(), so a process group does not find them).
double tree_cpu_seconds(int root) {
  if (root <= 0) return 0;
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  double total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string pid = entry.path().filename().string();
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string line;
    if (!std::getline(in, line)) continue;
    // Fields after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt
    // cmajflt utime stime ...
    const std::size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string state;
    long long ppid = 0, pgrp = 0, skip = 0, utime = 0, stime = 0;
    rest >> state >> ppid >> pgrp;
    if (std::stoll(pid) != root && ppid != root) continue;
    for (int i = 0; i < 7; ++i) rest >> skip;
    rest >> utime >> stime;
    total += static_cast<double>(utime + stime) / tick;
  }
  return total;
}

std::unique_ptr<Database> check(ts::Result<std::unique_ptr<Database>> db, const char* what) {
  if (!db) throw std::runtime_error(fmt::format("{}: {}", what, db.error().message()));
  return std::move(*db);
}

/// A directory for the SQLite files of this process, removed at exit.
class ScratchDir {
 public:
  ScratchDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        ((tmp != nullptr && *tmp != '\0') ? std::string(tmp) : std::string("/tmp")) +
        "/ts-signal-log-bench-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp");
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::filesystem::path scratch_file(int run_id) {
  static const ScratchDir dir;
  return dir.path() / fmt::format("run{}.db", run_id);
}

void remove_sqlite(const std::filesystem::path& file) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(file.string() + suffix, ec);
  }
}

#ifdef TS_BENCH_POSTGRES_FIXTURE
ts::testsupport::PostgresServer& server() {
  static std::unique_ptr<ts::testsupport::PostgresServer> s =
      std::make_unique<ts::testsupport::PostgresServer>(
          ts::testsupport::PostgresServerOptions{.durable = true});
  return *s;
}
#endif

const char* external_postgres() {
  const char* url = std::getenv("TS_BENCH_POSTGRES_URL");
  return url != nullptr && *url != '\0' ? url : nullptr;
}

std::string postgres_url(int run_id) {
  if (const char* url = external_postgres()) return url;
#ifdef TS_BENCH_POSTGRES_FIXTURE
  return server().create_database(fmt::format("bench{}", run_id));
#else
  (void)run_id;
  throw std::runtime_error("set TS_BENCH_POSTGRES_URL (built without tests/support)");
#endif
}

int postgres_pid() {
#ifdef TS_BENCH_POSTGRES_FIXTURE
  if (external_postgres() == nullptr) return server().pid();
#endif
  return -1;
}

/// The measured loop, shared by every backend. `server_pid`: the server, whose processes' CPU
/// time counts too (0: none, -1: unknown, so no CPU-normalized rate).
void write_batches(benchmark::State& state, Database& db, Fleet& fleet, int server_pid) {
  // Not timed: one round first, so every series exists (steady state, as after the first second
  // of a running ingest).
  for (std::size_t n = 0; n < fleet.round_size(); n += static_cast<std::size_t>(state.range(0))) {
    if (!db.append_signals(fleet.next())) {
      state.SkipWithError("warm-up write failed");
      return;
    }
  }
  std::size_t written = 0;
  const double cpu_before = own_cpu_seconds() + tree_cpu_seconds(server_pid);
  for (auto _ : state) {
    auto r = db.append_signals(fleet.next());
    if (!r) {
      state.SkipWithError(("write_batch failed: " + r.error().message()).c_str());
      break;
    }
    written += *r;
  }
  const double cpu = own_cpu_seconds() + tree_cpu_seconds(server_pid) - cpu_before;
  const auto items = static_cast<double>(state.iterations() * state.range(0));
  state.SetItemsProcessed(static_cast<std::int64_t>(items));
  if (server_pid >= 0 && cpu > 0) state.counters["datums/cpu_s"] = items / cpu;
  state.counters["batches/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  if (written != static_cast<std::size_t>(state.iterations() * state.range(0))) {
    state.SkipWithError("rows were reported as duplicates: the workload repeats itself");
  }
}

void BM_Sqlite(benchmark::State& state, bool synchronous_full) {
  const int run = next_run_id();
  const std::filesystem::path file = scratch_file(run);
  {
    auto db = check(
        ts::storage::sqlite::open_sqlite({.path = file, .synchronous_full = synchronous_full}),
        "open SQLite");
    Fleet fleet(run, static_cast<std::size_t>(state.range(0)));
    write_batches(state, *db, fleet, 0);
  }
  remove_sqlite(file);
}

void BM_Postgres(benchmark::State& state, ts::storage::postgres::SignalInsert method) {
  const int run = next_run_id();
  auto db = check(
      ts::storage::postgres::open_postgres({.url = postgres_url(run), .signal_insert = method}),
      "open PostgreSQL");
  Fleet fleet(run, static_cast<std::size_t>(state.range(0)));
  write_batches(state, *db, fleet, postgres_pid());
}

void BM_SqliteFull(benchmark::State& state) { BM_Sqlite(state, true); }
void BM_SqliteNormal(benchmark::State& state) { BM_Sqlite(state, false); }
void BM_PostgresCopy(benchmark::State& state) {
  BM_Postgres(state, ts::storage::postgres::SignalInsert::Copy);
}
void BM_PostgresUnnest(benchmark::State& state) {
  BM_Postgres(state, ts::storage::postgres::SignalInsert::Unnest);
}

BENCHMARK(BM_SqliteFull)->ArgName("batch")->Arg(256)->Arg(1024)->Arg(4096)->UseRealTime();
BENCHMARK(BM_SqliteNormal)->ArgName("batch")->Arg(256)->Arg(4096)->UseRealTime();
BENCHMARK(BM_PostgresCopy)->ArgName("batch")->Arg(256)->Arg(1024)->Arg(4096)->UseRealTime();
BENCHMARK(BM_PostgresUnnest)->ArgName("batch")->Arg(256)->Arg(1024)->Arg(4096)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();

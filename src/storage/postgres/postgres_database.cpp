#include "storage/postgres/postgres_database.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cctype>
#include <cmath>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <unordered_map>

#include <fmt/format.h>

#include "storage/detail.hpp"
#include "storage/postgres/pg_connection.hpp"

namespace ts::storage::postgres {
namespace {

using detail::log;
using signal::Signal;

constexpr std::int64_t kMinTs = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMaxTs = std::numeric_limits<std::int64_t>::max();
/// Advisory lock keys (any constants unique to us): schema migrations, partition DDL.
constexpr std::int64_t kMigrationLock = 0x7473737430303031LL;
constexpr std::int64_t kPartitionLock = 0x7473737430303032LL;
/// Days get their own partition from today - retention (without retention: today -
/// kPartitionDaysBack) up to kPartitionDaysAhead days ahead; rows outside (a vehicle clock far
/// off, late data older than retention) go to the default partition, so a vehicle's clock never
/// decides how many partitions exist.
constexpr std::int64_t kPartitionDaysBack = 30;
constexpr std::int64_t kPartitionDaysAhead = 7;
/// Rows per dead-letter retention transaction.
constexpr std::int64_t kDeadLetterChunk = 5'000;
/// Retention's DELETE of the boundary day may be long; it runs on a reader connection, not the
/// writer, with this statement timeout.
constexpr std::string_view kRetentionStatementTimeout = "15min";

constexpr std::string_view kUniqueViolation = "23505";

/// signal_log's own columns, and a signal row as queries return it (read_signal's order): the
/// series' vin and name from signal_series s, the rest from signal_log l.
const std::string kLogColumns =
    "series_id, ts, kind, value_int, value_num, value_num2, value_text, source, received_at";
const std::string kSignalSelect =
    "s.vin, s.name, l.ts, l.kind, l.value_int, l.value_num, l.value_num2, l.value_text, l.source, "
    "l.received_at";

std::string partition_name(std::int64_t day) { return "signal_log_p" + detail::day_label(day); }

// ---- value encodings ------------------------------------------------------------------------

/// Text values repaired (NUL, invalid UTF-8) on this thread; write() reports them.
thread_local std::size_t t_repaired_texts = 0;

/// A COPY … (FORMAT binary) stream: the signature header, then rows of length-prefixed fields
/// in network byte order, then the trailer. Text PostgreSQL would refuse (NUL, invalid UTF-8)
/// is repaired first.
class CopyBinary {
 public:
  explicit CopyBinary(std::size_t reserve) {
    out_.reserve(reserve + 32);
    out_.append("PGCOPY\n\377\r\n\0", 11);
    put(std::uint32_t{0}, std::uint32_t{0});  // flags (no OIDs), header extension length
  }
  void begin_row(std::uint16_t fields) { put(fields); }
  void null() { put(std::uint32_t{0xFFFFFFFF}); }
  void int2(std::int16_t v) { put(std::uint32_t{2}, static_cast<std::uint16_t>(v)); }
  void int4(std::int32_t v) { put(std::uint32_t{4}, static_cast<std::uint32_t>(v)); }
  void int8(std::int64_t v) { put(std::uint32_t{8}, static_cast<std::uint64_t>(v)); }
  void float8(double v) { put(std::uint32_t{8}, std::bit_cast<std::uint64_t>(v)); }
  void text(std::string_view v) {
    std::string repaired;
    if (!detail::is_clean_text(v)) {
      repaired = detail::repair_text(v);
      v = repaired;
      ++t_repaired_texts;
    }
    put(static_cast<std::uint32_t>(v.size()));
    out_.append(v);
  }
  /// The whole stream, trailer included; call once.
  std::string_view finish() {
    put(std::uint16_t{0xFFFF});
    return out_;
  }

 private:
  /// Appends unsigned integers big-endian, back to back, in one append.
  template <typename... U>
  void put(U... values) {
    char buf[(sizeof(U) + ...)];
    char* p = buf;
    auto one = [&p](auto v) {
      for (int i = static_cast<int>(sizeof v) - 1; i >= 0; --i) {
        *p++ = static_cast<char>(v >> (8 * i));
      }
    };
    (one(values), ...);
    out_.append(buf, sizeof buf);
  }
  std::string out_;
};

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

/// A one-dimensional array literal in text format ({"a","b",NULL}), built element by element.
class ArrayText {
 public:
  ArrayText() { s_ = "{"; }
  void text(std::string_view v) {
    sep();
    std::string fixed;
    if (!detail::is_clean_text(v)) {
      fixed = detail::repair_text(v);
      v = fixed;
      ++t_repaired_texts;
    }
    s_ += '"';
    for (char c : v) {
      if (c == '"' || c == '\\') s_ += '\\';
      s_ += c;
    }
    s_ += '"';
  }
  void bytes_hex(std::string_view v) {  // a bytea element: "\\x0a1b"
    static constexpr char kHex[] = "0123456789abcdef";
    sep();
    s_ += "\"\\\\x";
    for (unsigned char c : v) {
      s_ += kHex[c >> 4];
      s_ += kHex[c & 15];
    }
    s_ += '"';
  }
  void i64(std::int64_t v) {
    sep();
    append_int(s_, v);
  }
  void f64(double v) {
    sep();
    append_double(s_, v);
  }
  void null() {
    sep();
    s_ += "NULL";
  }
  void opt(const std::optional<std::int64_t>& v) { v ? i64(*v) : null(); }
  void opt(const std::optional<double>& v) { v ? f64(*v) : null(); }
  void opt(const std::optional<std::string_view>& v) { v ? text(*v) : null(); }
  std::string done() {
    s_ += '}';
    return std::move(s_);
  }

 private:
  void sep() {
    if (s_.size() > 1) s_ += ',';
  }
  std::string s_;
};

Signal read_signal(const Row& r) {
  Signal s;
  s.vin = r.text(0);
  s.name = r.text(1);
  s.ts = r.i64(2);
  detail::ValueColumns c;
  c.integer = r.opt_i64(4);
  c.number = r.opt_f64(5);
  c.number2 = r.opt_f64(6);
  std::string text;
  if (!r.null(7)) {
    text = r.text(7);
    c.text = text;
  }
  s.value = detail::value_of(static_cast<int>(r.i64(3)), c);
  s.source = signal::parse_source_name(r.view(8)).value_or(signal::Source::Stream);
  s.received_at = r.i64(9);
  return s;
}

std::size_t affected(const PgResult& r) {
  const char* n = PQcmdTuples(r.get());
  return n != nullptr && *n != '\0' ? static_cast<std::size_t>(std::strtoull(n, nullptr, 10)) : 0;
}

template <class T, class Read>
std::vector<T> collect(const PgResult& r, Read read) {
  std::vector<T> out;
  const int n = PQntuples(r.get());
  out.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) out.push_back(read(Row(r.get(), i)));
  return out;
}

Vehicle read_vehicle(const Row& r) {
  return Vehicle{.vin = r.text(0),
                 .name = r.text(1),
                 .source = parse_vehicle_source(r.view(2)).value_or(VehicleSource::Manual),
                 .created_at = r.i64(3)};
}

ApiToken read_token(const Row& r) {
  return ApiToken{.id = r.i64(0),
                  .name = r.text(1),
                  .sha256_hex = r.text(2),
                  .created_at = r.i64(3),
                  .last_used_at = r.opt_i64(4)};
}

std::optional<std::string> normalized_sha256(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  std::string out(hex);
  for (char& ch : out) {
    if (std::isxdigit(static_cast<unsigned char>(ch)) == 0) return std::nullopt;
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  return out;
}

using detail::SeriesIds;

// ---- the database ---------------------------------------------------------------------------

class PostgresDatabase final : public Database {
 public:
  PostgresDatabase(PostgresOptions options, std::unique_ptr<core::MetricsRegistry> own_registry)
      : options_(std::move(options)),
        own_registry_(std::move(own_registry)),
        metrics_(options_.metrics != nullptr ? *options_.metrics : *own_registry_, "postgresql"),
        redacted_url_(redact_url(options_.url)) {}

  Result<void> init();

  std::string_view backend() const noexcept override { return "postgresql"; }
  Result<int> schema_version() override;
  Result<BatchResult> write(const BatchView& batch) override;
  Result<RetentionResult> delete_signals_before(Timestamp cutoff) override;
  Result<std::uint64_t> delete_events_before(Timestamp cutoff) override;
  Result<std::uint64_t> delete_dead_letters(Timestamp received_before,
                                            std::uint64_t keep_max_rows) override;
  Result<Vehicle> upsert_vehicle(const Vehicle& vehicle) override;
  Result<bool> delete_vehicle(std::string_view vin) override;
  Result<std::size_t> upsert_fleet_errors(std::span<const FleetError> errors) override;
  Result<void> replace_error_vins(std::span<const std::string> vins, Timestamp now) override;
  Result<ApiToken> create_token(std::string_view name, std::string_view sha256_hex,
                                Timestamp created_at) override;
  Result<bool> touch_token(std::int64_t id, Timestamp used_at) override;
  Result<bool> delete_token(std::int64_t id) override;
  Result<void> set_setting(std::string_view key, std::string_view value) override;
  Result<SignalPage> query_signals(const SignalQuery& query) override;
  Result<std::vector<Signal>> latest_signals(
      std::optional<std::string_view> vin,
      std::optional<std::chrono::microseconds> max_future_skew) override;
  Result<std::vector<DeadLetter>> list_dead_letters(std::size_t offset, std::size_t limit,
                                                    std::optional<std::string_view> vin) override;
  Result<std::uint64_t> count_dead_letters(std::optional<std::string_view> vin) override;
  Result<std::optional<Vehicle>> get_vehicle(std::string_view vin) override;
  Result<std::vector<Vehicle>> list_vehicles() override;
  Result<std::vector<Alert>> list_alerts(std::string_view vin, std::size_t limit,
                                         std::size_t offset) override;
  Result<std::vector<ConnectivityEvent>> list_connectivity(std::string_view vin, std::size_t limit,
                                                           std::size_t offset) override;
  Result<std::vector<VehicleError>> list_vehicle_errors(std::string_view vin, std::size_t limit,
                                                        std::size_t offset) override;
  Result<std::vector<FleetError>> list_fleet_errors(std::optional<std::string_view> vin,
                                                    std::size_t limit, std::size_t offset) override;
  Result<std::vector<ErrorVin>> list_error_vins(bool active_only) override;
  Result<std::optional<ApiToken>> find_token(std::string_view sha256_hex) override;
  Result<std::vector<ApiToken>> list_tokens() override;
  Result<std::optional<std::string>> get_setting(std::string_view key) override;

  // Tests (postgres_database.hpp).
  Result<std::vector<std::int64_t>> partition_days();
  Result<void> create_partition_now(std::int64_t day);
  Result<std::uint64_t> default_partition_rows();

 private:
  std::unique_ptr<PgConnection> make_connection() {
    return std::make_unique<PgConnection>(keywords_, redacted_url_, metrics_, rate_limited_);
  }

  /// Runs f(PgConnection&) -> Result<T> with the reconnect-and-retry-once rule
  /// (pg_connection.hpp).
  template <class F>
  auto call(PgConnection& c, F&& f) -> decltype(f(c)) {
    for (int attempt = 0;; ++attempt) {
      c.begin_call();
      if (auto r = c.ensure(); !r) return detail::failed(r.error());
      auto result = f(c);
      if (result || attempt > 0 || !c.retry_possible()) return result;
      reconnect_log_.info(log(), "PostgreSQL connection was closed by the server; reconnecting");
    }
  }
  /// f on the writer connection, serialized with every other write.
  template <class F>
  auto on_writer(std::string_view op, F&& f) -> decltype(f(std::declval<PgConnection&>())) {
    detail::OpTimer timer(metrics_, op);
    std::lock_guard lock(writer_mutex_);
    auto result = call(*writer_, f);
    if (result) timer.ok();
    return result;
  }
  /// f on a pooled reader connection.
  template <class F>
  auto on_reader(std::string_view op, F&& f) -> decltype(f(std::declval<PgConnection&>())) {
    detail::OpTimer timer(metrics_, op);
    auto lease = readers_.acquire();
    auto result = call(*lease, f);
    if (result) timer.ok();
    return result;
  }

  /// Applies the pending migrations; returns the schema version reached.
  Result<int> migrate(PgConnection& c);
  Result<std::vector<std::int64_t>> load_partitions(PgConnection& c);
  Result<void> create_partition(PgConnection& c, std::int64_t day);
  Result<void> ensure_partitions(PgConnection& c, std::span<const Signal> rows);

  Result<std::size_t> insert_signals(PgConnection& c, std::span<const Signal> rows,
                                     std::span<const std::int64_t> series);
  /// The signal_series id of every row (adding new series); `fresh` gets the new ones, to be
  /// remembered once the transaction commits.
  Result<std::vector<std::int64_t>> resolve_series(PgConnection& c, std::span<const Signal> rows,
                                                   std::vector<SeriesIds::Entry>& fresh);
  Result<std::size_t> insert_alerts(PgConnection& c, std::span<const Alert> rows);
  Result<std::size_t> insert_connectivity(PgConnection& c, std::span<const ConnectivityEvent> rows);
  Result<std::size_t> insert_vehicle_errors(PgConnection& c, std::span<const VehicleError> rows);
  Result<std::size_t> insert_dead_letters(PgConnection& c, std::span<const DeadLetter> rows);

  PostgresOptions options_;
  std::unique_ptr<core::MetricsRegistry> own_registry_;  // when options_.metrics is null
  detail::StorageMetrics metrics_;
  detail::RateLimitedLog rate_limited_;
  detail::RateLimitedLog reconnect_log_;
  std::string redacted_url_;
  std::vector<std::pair<std::string, std::string>> keywords_;  // fixed after init()

  std::mutex writer_mutex_;  // guards writer_, stage_session_ and series_ids_
  std::unique_ptr<PgConnection> writer_;
  std::uint64_t stage_session_ = 0;  // writer session in which signal_log_stage exists
  SeriesIds series_ids_;             // committed rows of signal_series

  detail::Pool<PgConnection> readers_;  // connect on first use

  std::mutex partitions_mutex_;        // guards partitions_
  std::set<std::int64_t> partitions_;  // days known to have a partition
};

Result<void> PostgresDatabase::init() {
  const auto seconds = [](std::chrono::milliseconds ms) {
    return std::to_string(std::max<std::int64_t>(2, (ms.count() + 999) / 1000));
  };
  // Defaults first: the URL (dbname, expanded) comes last, so its own parameters win.
  keywords_ = {
      {"connect_timeout", seconds(options_.connect_timeout)},
      {"keepalives", "1"},
      {"keepalives_idle", "10"},
      {"keepalives_interval", "5"},
      {"keepalives_count", "3"},
      {"tcp_user_timeout",
       std::to_string(std::max<std::int64_t>(10'000, options_.statement_timeout.count()))},
      {"application_name", "teslasync-api"},
      {"options", fmt::format("-c statement_timeout={}", options_.statement_timeout.count())},
      {"dbname", options_.url},
  };
  writer_ = make_connection();
  for (std::size_t i = 0; i < std::max<std::size_t>(1, options_.readers); ++i) {
    readers_.add(make_connection());
  }
  int version = 0;
  auto opened = on_writer(detail::kOpMigrate, [&](PgConnection& c) -> Result<void> {
    auto v = migrate(c);
    if (!v) return v.error();
    version = *v;
    auto days = load_partitions(c);
    if (!days) return days.error();
    {
      std::lock_guard lock(partitions_mutex_);
      partitions_.insert(days->begin(), days->end());
    }
    const std::int64_t today = detail::day_of(signal::now());
    for (std::int64_t day : {today, today + 1}) {
      if (auto r = create_partition(c, day); !r) return r;
    }
    return {};
  });
  if (!opened) {
    if (opened.error() == make_error_code(errc::unavailable)) {
      log().error("cannot open PostgreSQL database {}", redacted_url_);
    }
    return opened.error();
  }
  log().info("PostgreSQL database {} open (schema version {}, {} readers)", redacted_url_, version,
             readers_.size());
  return {};
}

Result<int> PostgresDatabase::migrate(PgConnection& c) {
  // A session advisory lock: replicas starting together migrate one after the other.
  if (auto r = c.exec(fmt::format("SELECT pg_advisory_lock({})", kMigrationLock)); !r) {
    return detail::failed(r.error());
  }
  struct Unlock {
    PgConnection& c;
    ~Unlock() { (void)c.exec(fmt::format("SELECT pg_advisory_unlock({})", kMigrationLock)); }
  } unlock{c};
  if (auto r = c.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                      "name text NOT NULL, applied_at bigint NOT NULL)");
      !r) {
    return make_error_code(errc::migration_failed);
  }
  auto v = c.exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!v) return make_error_code(errc::migration_failed);
  const int current = static_cast<int>(Row(v->get(), 0).i64(0));
  const auto all = migrations();
  if (current > all.back().version) {
    log().error(
        "the PostgreSQL schema is at version {}, newer than this release knows ({}); "
        "refusing to use it",
        current, all.back().version);
    return make_error_code(errc::schema_too_new);
  }
  const int target =
      options_.migrate_to_version > 0 ? options_.migrate_to_version : all.back().version;
  int reached = current;
  for (const detail::Migration& m : all) {
    if (m.version <= current || m.version > target) continue;
    auto applied = c.transaction([&]() -> Result<void> {
      if (auto r = c.exec(m.sql); !r) return detail::failed(r.error());
      auto r =
          c.exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                 Params().i64(m.version).text(m.name).i64(signal::now()));
      if (!r) return detail::failed(r.error());
      return {};
    });
    if (!applied) {
      log().error("PostgreSQL migration {} ({}) failed; the schema stays at version {}", m.version,
                  m.name, std::max(current, m.version - 1));
      return applied.error() == make_error_code(errc::unavailable)
                 ? applied.error()
                 : make_error_code(errc::migration_failed);
    }
    log().info("PostgreSQL schema migrated to version {} ({})", m.version, m.name);
    reached = m.version;
  }
  return reached;
}

Result<std::vector<std::int64_t>> PostgresDatabase::load_partitions(PgConnection& c) {
  auto r = c.exec(
      "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
      "WHERE i.inhparent = 'signal_log'::regclass");
  if (!r) return detail::failed(r.error());
  std::vector<std::int64_t> days;
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    const std::string_view name = Row(r->get(), i).view(0);
    if (name.substr(0, 12) != "signal_log_p") continue;
    if (auto day = detail::parse_day_label(name.substr(12))) days.push_back(*day);
  }
  std::sort(days.begin(), days.end());
  return days;
}

Result<void> PostgresDatabase::create_partition(PgConnection& c, std::int64_t day) {
  {
    std::lock_guard lock(partitions_mutex_);
    if (partitions_.contains(day)) return {};
  }
  const std::string name = partition_name(day);
  const std::int64_t from = day * detail::kMicrosPerDay;
  const std::int64_t to = from + detail::kMicrosPerDay;
  bool created = false;
  auto r = c.transaction([&]() -> Result<void> {
    // One DDL writer at a time across replicas; then check: another may have created it.
    if (auto l = c.exec(fmt::format("SELECT pg_advisory_xact_lock({})", kPartitionLock)); !l) {
      return l.error();
    }
    auto exists = c.exec("SELECT to_regclass($1) IS NOT NULL", Params().text(name));
    if (!exists) return exists.error();
    if (Row(exists->get(), 0).boolean(0)) return {};
    // Rows of that day already in the default partition (a clock far off, or a day older than
    // partitions existed) would make CREATE … PARTITION OF fail: move them into the new table
    // first, then attach it.
    auto stray =
        c.exec("SELECT EXISTS (SELECT 1 FROM signal_log_default WHERE ts >= $1 AND ts < $2)",
               Params().i64(from).i64(to));
    if (!stray) return stray.error();
    std::vector<std::string> statements;
    if (Row(stray->get(), 0).boolean(0)) {
      statements = {
          fmt::format("CREATE TABLE {} (LIKE signal_log INCLUDING DEFAULTS)", name),
          fmt::format("WITH moved AS (DELETE FROM signal_log_default WHERE ts >= {} AND ts < {} "
                      "RETURNING {}) INSERT INTO {} ({}) SELECT {} FROM moved",
                      from, to, kLogColumns, name, kLogColumns, kLogColumns),
          fmt::format("ALTER TABLE signal_log ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})",
                      name, from, to)};
    } else {
      statements = {fmt::format(
          "CREATE TABLE {} PARTITION OF signal_log FOR VALUES FROM ({}) TO ({})", name, from, to)};
    }
    for (const std::string& sql : statements) {
      if (auto s = c.exec(sql); !s) return s.error();
    }
    created = true;
    return {};
  });
  if (!r) return r;
  if (created) {
    metrics_.partitions_created.inc();
    log().info("created signal_log partition {}", name);
  }
  std::lock_guard lock(partitions_mutex_);
  partitions_.insert(day);
  return {};
}

Result<void> PostgresDatabase::ensure_partitions(PgConnection& c, std::span<const Signal> rows) {
  if (rows.empty()) return {};
  const Timestamp now = signal::now();
  const std::int64_t last = detail::day_of(now) + kPartitionDaysAhead;
  const std::int64_t retention_us =
      std::chrono::duration_cast<std::chrono::microseconds>(options_.retention).count();
  const std::int64_t first = retention_us > 0 ? detail::day_of(now - std::min(retention_us, now))
                                              : detail::day_of(now) - kPartitionDaysBack;
  std::set<std::int64_t> missing;
  {
    std::lock_guard lock(partitions_mutex_);
    std::int64_t previous = kMinTs;  // consecutive rows are mostly on the same day
    for (const Signal& s : rows) {
      const std::int64_t day = detail::day_of(s.ts);
      if (day == previous) continue;
      previous = day;
      if (day < first || day > last) continue;  // the default partition takes it
      if (!partitions_.contains(day)) missing.insert(day);
    }
  }
  for (std::int64_t day : missing) {
    if (auto r = create_partition(c, day); !r) return r;
  }
  return {};
}

// ---- writes ---------------------------------------------------------------------------------

Result<std::vector<std::int64_t>> PostgresDatabase::resolve_series(
    PgConnection& c, std::span<const Signal> rows, std::vector<SeriesIds::Entry>& fresh) {
  std::vector<std::int64_t> ids(rows.size(), 0);
  // Series not in the cache, each once: (vin, name) -> index into `missing`.
  std::map<std::pair<std::string_view, std::string_view>, std::size_t> missing;
  std::vector<std::size_t> pending;  // rows waiting for a missing series
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (auto id = series_ids_.find(rows[i].vin, rows[i].name)) {
      ids[i] = *id;
    } else {
      missing.try_emplace({rows[i].vin, rows[i].name}, missing.size());
      pending.push_back(i);
    }
  }
  if (missing.empty()) return ids;
  std::vector<std::pair<std::string_view, std::string_view>> keys(missing.size());
  for (const auto& [key, index] : missing) keys[index] = key;
  ArrayText vin, name;
  for (const auto& [v, n] : keys) {
    vin.text(v);
    name.text(n);
  }
  const std::string vins = vin.done();
  const std::string names = name.done();
  // Insert what is new (a concurrent writer's insert of the same series waits for it), then read
  // every id; the ordinality maps each back to `keys` even if repair_text changed the text.
  auto inserted = c.exec(
      "INSERT INTO signal_series (vin, name) SELECT * FROM unnest($1::text[], $2::text[]) "
      "ON CONFLICT (vin, ts_text_key(name)) DO NOTHING",
      Params().text(vins).text(names));
  if (!inserted) return inserted.error();
  auto r = c.exec(
      "SELECT m.i, s.id FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS m(vin, name, i) "
      "JOIN signal_series s ON s.vin = m.vin AND ts_text_key(s.name) = ts_text_key(m.name) "
      "AND s.name = m.name",
      Params().text(vins).text(names));
  if (!r) return r.error();
  std::vector<std::int64_t> found(keys.size(), 0);
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    const Row row(r->get(), i);
    const std::int64_t ordinal = row.i64(0);
    if (ordinal < 1 || ordinal > static_cast<std::int64_t>(found.size())) continue;
    found[static_cast<std::size_t>(ordinal - 1)] = row.i64(1);
  }
  for (std::size_t k = 0; k < keys.size(); ++k) {
    if (found[k] == 0) return make_error_code(errc::query_failed);  // not reachable
    fresh.push_back({std::string(keys[k].first), std::string(keys[k].second), found[k]});
  }
  for (std::size_t i : pending) ids[i] = found[missing.at({rows[i].vin, rows[i].name})];
  return ids;
}

Result<std::size_t> PostgresDatabase::insert_signals(PgConnection& c, std::span<const Signal> rows,
                                                     std::span<const std::int64_t> series) {
  if (rows.empty()) return std::size_t{0};
  if (options_.signal_insert == SignalInsert::Unnest) {
    ArrayText id, ts, kind, value_int, value_num, value_num2, value_text, source, received;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const Signal& s = rows[i];
      const detail::ValueColumns v = detail::columns_of(s.value);
      id.i64(series[i]);
      ts.i64(s.ts);
      kind.i64(static_cast<int>(s.value.kind));
      value_int.opt(v.integer);
      value_num.opt(v.number);
      value_num2.opt(v.number2);
      value_text.opt(v.text);
      source.text(signal::source_name(s.source));
      received.i64(s.received_at);
    }
    auto r = c.exec("INSERT INTO signal_log (" + kLogColumns +
                        ") SELECT * FROM unnest($1::int4[], $2::int8[], $3::int2[], $4::int8[], "
                        "$5::float8[], $6::float8[], $7::text[], $8::text[], $9::int8[]) "
                        "ON CONFLICT DO NOTHING",
                    Params()
                        .text(id.done())
                        .text(ts.done())
                        .text(kind.done())
                        .text(value_int.done())
                        .text(value_num.done())
                        .text(value_num2.done())
                        .text(value_text.done())
                        .text(source.done())
                        .text(received.done()));
    if (!r) return detail::failed(r.error());
    return affected(*r);
  }
  // COPY in binary format: the server stores our bytes instead of parsing text per column
  // (float8in/strtod, int8in: ~15 % of the backend's COPY time in text format, perf).
  CopyBinary data(rows.size() * 96);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Signal& s = rows[i];
    const detail::ValueColumns v = detail::columns_of(s.value);
    data.begin_row(9);
    data.int4(static_cast<std::int32_t>(series[i]));
    data.int8(s.ts);
    data.int2(static_cast<std::int16_t>(s.value.kind));
    v.integer ? data.int8(*v.integer) : data.null();
    v.number ? data.float8(*v.number) : data.null();
    v.number2 ? data.float8(*v.number2) : data.null();
    v.text ? data.text(*v.text) : data.null();
    data.text(signal::source_name(s.source));
    data.int8(s.received_at);
  }
  const std::string_view bytes = data.finish();
  // Fast path: COPY straight into signal_log (batched heap inserts, one primary-key descent per
  // row). A row already stored (redelivery) fails it with unique_violation: then the batch goes
  // through the staging table and ON CONFLICT DO NOTHING instead.
  if (auto s = c.exec("SAVEPOINT signals"); !s) return detail::failed(s.error());
  auto direct =
      c.copy_in("COPY signal_log (" + kLogColumns + ") FROM STDIN (FORMAT binary)", bytes,
                kUniqueViolation);
  if (direct) {
    if (auto s = c.exec("RELEASE SAVEPOINT signals"); !s) return detail::failed(s.error());
    return rows.size();
  }
  if (c.last_sqlstate() != kUniqueViolation) return detail::failed(direct.error());
  if (auto s = c.exec("ROLLBACK TO SAVEPOINT signals"); !s) return detail::failed(s.error());
  if (auto r = c.copy_in("COPY signal_log_stage (" + kLogColumns + ") FROM STDIN (FORMAT binary)",
                         bytes);
      !r) {
    return detail::failed(r.error());
  }
  auto r = c.exec("INSERT INTO signal_log (" + kLogColumns + ") SELECT " + kLogColumns +
                  " FROM signal_log_stage ON CONFLICT DO NOTHING");
  if (!r) return detail::failed(r.error());
  return affected(*r);
}

Result<std::size_t> PostgresDatabase::insert_alerts(PgConnection& c, std::span<const Alert> rows) {
  if (rows.empty()) return std::size_t{0};
  // ON CONFLICT DO UPDATE may touch a row once per statement: one entry per key.
  const std::vector<Alert> merged = detail::merge_alerts(rows);
  ArrayText vin, name, started, ended, audiences, received;
  for (const Alert& a : merged) {
    vin.text(a.vin);
    name.text(a.name);
    started.i64(a.started_at);
    ended.opt(a.ended_at);
    audiences.text(a.audiences_json);
    received.i64(a.received_at);
  }
  auto r = c.exec(
      "INSERT INTO alerts (vin, name, started_at, ended_at, audiences, received_at) "
      "SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[], "
      "$6::int8[]) ON CONFLICT (vin, ts_text_key(name), started_at) DO UPDATE SET "
      "ended_at = excluded.ended_at WHERE alerts.ended_at IS NULL AND excluded.ended_at IS NOT "
      "NULL",
      Params()
          .text(vin.done())
          .text(name.done())
          .text(started.done())
          .text(ended.done())
          .text(audiences.done())
          .text(received.done()));
  if (!r) return detail::failed(r.error());
  return affected(*r);
}

Result<std::size_t> PostgresDatabase::insert_connectivity(PgConnection& c,
                                                          std::span<const ConnectivityEvent> rows) {
  if (rows.empty()) return std::size_t{0};
  ArrayText vin, id, status, iface, ts, received;
  for (const ConnectivityEvent& e : rows) {
    vin.text(e.vin);
    id.text(e.connection_id);
    status.text(e.status);
    iface.text(e.network_interface);
    ts.i64(e.ts);
    received.i64(e.received_at);
  }
  auto r = c.exec(
      "INSERT INTO connectivity_events (vin, connection_id, status, network_interface, ts, "
      "received_at) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
      "$5::int8[], $6::int8[]) "
      "ON CONFLICT (vin, ts_text_key(connection_id), ts_text_key(status), ts) DO NOTHING",
      Params()
          .text(vin.done())
          .text(id.done())
          .text(status.done())
          .text(iface.done())
          .text(ts.done())
          .text(received.done()));
  if (!r) return detail::failed(r.error());
  return affected(*r);
}

Result<std::size_t> PostgresDatabase::insert_vehicle_errors(PgConnection& c,
                                                            std::span<const VehicleError> rows) {
  if (rows.empty()) return std::size_t{0};
  ArrayText vin, name, body, tags, created, received, fingerprint;
  for (const VehicleError& e : rows) {
    vin.text(e.vin);
    name.text(e.name);
    body.text(e.body);
    tags.text(e.tags_json);
    created.i64(e.created_at);
    received.i64(e.received_at);
    fingerprint.i64(detail::error_fingerprint(e.body, e.tags_json));
  }
  auto r = c.exec(
      "INSERT INTO vehicle_errors (vin, name, body, tags, created_at, received_at, fingerprint) "
      "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], "
      "$6::int8[], $7::int8[]) "
      "ON CONFLICT (vin, ts_text_key(name), created_at, fingerprint) DO NOTHING",
      Params()
          .text(vin.done())
          .text(name.done())
          .text(body.done())
          .text(tags.done())
          .text(created.done())
          .text(received.done())
          .text(fingerprint.done()));
  if (!r) return detail::failed(r.error());
  return affected(*r);
}

Result<std::size_t> PostgresDatabase::insert_dead_letters(PgConnection& c,
                                                          std::span<const DeadLetter> rows) {
  if (rows.empty()) return std::size_t{0};
  // One entry per key (ON CONFLICT DO UPDATE may touch a row once per statement), in batch
  // order, with how often it occurs and its latest receipt. The key is taken over the text as
  // stored (repaired), as migration 5 computed it for older rows.
  struct Letter {
    const DeadLetter* d;
    std::string topic, reason, key;
    std::uint64_t size;
    std::int64_t count;
    Timestamp last;
  };
  std::vector<Letter> letters;
  std::unordered_map<std::string, std::size_t> by_key;
  for (const DeadLetter& d : rows) {
    auto stored = [](const std::string& text) {
      if (detail::is_clean_text(text)) return text;
      ++t_repaired_texts;
      return detail::repair_text(text);
    };
    std::string topic = stored(d.topic);
    std::string reason = stored(d.reason);
    const std::uint64_t size = std::max<std::uint64_t>(d.payload_size, d.payload.size());
    std::string key = detail::dead_letter_key(topic, reason, size, d.payload);
    auto [it, fresh] = by_key.try_emplace(key, letters.size());
    if (!fresh) {
      Letter& l = letters[it->second];
      ++l.count;
      l.last = std::max(l.last, d.received_at);
      continue;
    }
    letters.push_back({&d, std::move(topic), std::move(reason), std::move(key), size, 1,
                       d.received_at});
  }
  ArrayText received, topic, vin, reason, payload, size, count, last, key;
  for (const Letter& l : letters) {
    received.i64(l.d->received_at);
    topic.text(l.topic);
    vin.text(l.d->vin);
    reason.text(l.reason);
    payload.bytes_hex(std::string_view(l.d->payload).substr(0, kMaxDeadLetterPayload));
    size.i64(static_cast<std::int64_t>(l.size));
    count.i64(l.count);
    last.i64(l.last);
    key.bytes_hex(l.key);
  }
  // unnest keeps the array order, so ids follow the batch order. xmax = 0: the row is new.
  auto r = c.exec(
      "WITH w AS (INSERT INTO dead_letters (received_at, topic, vin, reason, payload, "
      "payload_size, occurrences, last_received_at, key_hash) "
      "SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::bytea[], "
      "$6::int8[], $7::int8[], $8::int8[], $9::bytea[]) "
      "ON CONFLICT (key_hash) DO UPDATE SET "
      "occurrences = dead_letters.occurrences + excluded.occurrences, "
      "last_received_at = GREATEST(dead_letters.last_received_at, excluded.last_received_at) "
      "RETURNING xmax = 0 AS inserted) "
      "SELECT COUNT(*) FILTER (WHERE inserted) FROM w",
      Params()
          .text(received.done())
          .text(topic.done())
          .text(vin.done())
          .text(reason.done())
          .text(payload.done())
          .text(size.done())
          .text(count.done())
          .text(last.done())
          .text(key.done()));
  if (!r) return detail::failed(r.error());
  return static_cast<std::size_t>(Row(r->get(), 0).i64(0));
}

Result<BatchResult> PostgresDatabase::write(const BatchView& batch) {
  if (batch.empty()) return BatchResult{};
  t_repaired_texts = 0;
  auto result = on_writer(detail::kOpWriteBatch, [&](PgConnection& c) -> Result<BatchResult> {
    if (auto r = ensure_partitions(c, batch.signals); !r) return detail::failed(r.error());
    if (!batch.signals.empty() && options_.signal_insert == SignalInsert::Copy &&
        stage_session_ != c.session()) {
      auto r = c.exec(
          "CREATE TEMP TABLE IF NOT EXISTS signal_log_stage (LIKE signal_log) "
          "ON COMMIT DELETE ROWS");
      if (!r) return detail::failed(r.error());
      stage_session_ = c.session();
    }
    std::vector<SeriesIds::Entry> new_series;
    auto written = c.transaction([&]() -> Result<BatchResult> {
      BatchResult r;
      auto series = resolve_series(c, batch.signals, new_series);
      if (!series) return series.error();
      auto s = insert_signals(c, batch.signals, *series);
      if (!s) return s.error();
      r.signals = *s;
      auto a = insert_alerts(c, batch.alerts);
      if (!a) return a.error();
      r.alerts = *a;
      auto k = insert_connectivity(c, batch.connectivity);
      if (!k) return k.error();
      r.connectivity = *k;
      auto e = insert_vehicle_errors(c, batch.vehicle_errors);
      if (!e) return e.error();
      r.vehicle_errors = *e;
      auto d = insert_dead_letters(c, batch.dead_letters);
      if (!d) return d.error();
      r.dead_letters = *d;
      return r;
    });
    if (written) {
      for (SeriesIds::Entry& e : new_series) series_ids_.add(std::move(e));
    }
    return written;
  });
  if (t_repaired_texts > 0) {
    metrics_.texts_repaired.inc(t_repaired_texts);
    rate_limited_.warn(log(),
                       "{} text values held NUL bytes or invalid UTF-8, which PostgreSQL "
                       "cannot store; they were stored with U+FFFD in their place",
                       t_repaired_texts);
  }
  if (result) {
    metrics_.rows_written.with({"signal_log"}).inc(result->signals);
    metrics_.duplicate_signals.inc(batch.signals.size() - result->signals);
    metrics_.rows_written.with({"alerts"}).inc(result->alerts);
    metrics_.rows_written.with({"connectivity_events"}).inc(result->connectivity);
    metrics_.rows_written.with({"vehicle_errors"}).inc(result->vehicle_errors);
    metrics_.rows_written.with({"dead_letters"}).inc(result->dead_letters);
  }
  return result;
}

Result<RetentionResult> PostgresDatabase::delete_signals_before(Timestamp cutoff) {
  // On a reader connection: the writer keeps ingesting meanwhile (DROP TABLE waits only for the
  // transactions that use signal_log at that moment).
  auto result = on_reader(detail::kOpRetention, [&](PgConnection& c) -> Result<RetentionResult> {
    RetentionResult out;
    auto days = load_partitions(c);
    if (!days) return days.error();
    for (std::int64_t day : *days) {
      if ((day + 1) * detail::kMicrosPerDay > cutoff) break;
      auto dropped = c.transaction([&]() -> Result<void> {
        if (auto l = c.exec(fmt::format("SELECT pg_advisory_xact_lock({})", kPartitionLock)); !l) {
          return l.error();
        }
        if (auto d = c.exec("DROP TABLE IF EXISTS " + partition_name(day)); !d) return d.error();
        return {};
      });
      if (!dropped) return dropped.error();
      {
        std::lock_guard lock(partitions_mutex_);
        partitions_.erase(day);
      }
      ++out.partitions_dropped;
      metrics_.partitions_dropped.inc();
      log().info("retention dropped signal_log partition {}", partition_name(day));
    }
    // The remainder: the part of the cutoff's day before it, and the default partition.
    auto deleted = c.transaction([&]() -> Result<std::uint64_t> {
      if (auto t =
              c.exec(fmt::format("SET LOCAL statement_timeout = '{}'", kRetentionStatementTimeout));
          !t) {
        return t.error();
      }
      auto d = c.exec("DELETE FROM signal_log WHERE ts < $1", Params().i64(cutoff));
      if (!d) return d.error();
      return static_cast<std::uint64_t>(affected(*d));
    });
    if (!deleted) return deleted.error();
    out.rows_deleted = *deleted;
    metrics_.rows_deleted.inc(*deleted);
    return out;
  });
  return result;
}

Result<std::uint64_t> PostgresDatabase::delete_events_before(Timestamp cutoff) {
  return on_reader(detail::kOpRetention, [&](PgConnection& c) -> Result<std::uint64_t> {
    return c.transaction([&]() -> Result<std::uint64_t> {
      std::uint64_t n = 0;
      for (const char* sql : {"DELETE FROM connectivity_events WHERE received_at < $1",
                              "DELETE FROM vehicle_errors WHERE received_at < $1",
                              "DELETE FROM alerts WHERE ended_at IS NOT NULL AND ended_at < $1"}) {
        auto r = c.exec(sql, Params().i64(cutoff));
        if (!r) return detail::failed(r.error());
        n += affected(*r);
      }
      metrics_.rows_deleted.inc(n);
      return n;
    });
  });
}

Result<std::uint64_t> PostgresDatabase::delete_dead_letters(Timestamp received_before,
                                                            std::uint64_t keep_max_rows) {
  // On a reader connection, each chunk its own (autocommit) statement: the writer keeps
  // ingesting, and no transaction holds more than kDeadLetterChunk row locks.
  return on_reader(detail::kOpRetention, [&](PgConnection& c) -> Result<std::uint64_t> {
    std::uint64_t total = 0;
    auto chunk = [&](const std::string& where, const Params& p) -> Result<std::uint64_t> {
      auto r = c.exec("DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters" + where +
                          " ORDER BY last_received_at, id LIMIT $1)",
                      p);
      if (!r) return detail::failed(r.error());
      const auto n = static_cast<std::uint64_t>(affected(*r));
      total += n;
      metrics_.rows_deleted.inc(n);
      return n;
    };
    while (true) {
      auto n = chunk(" WHERE last_received_at < $2", Params().i64(kDeadLetterChunk).i64(received_before));
      if (!n) return n.error();
      if (*n < static_cast<std::uint64_t>(kDeadLetterChunk)) break;
    }
    auto count = c.exec("SELECT COUNT(*) FROM dead_letters");
    if (!count) return detail::failed(count.error());
    const auto rows = static_cast<std::uint64_t>(Row(count->get(), 0).i64(0));
    std::uint64_t excess = rows > keep_max_rows ? rows - keep_max_rows : 0;
    while (excess > 0) {
      const auto step = std::min<std::uint64_t>(excess, kDeadLetterChunk);
      auto n = chunk("", Params().i64(static_cast<std::int64_t>(step)));
      if (!n) return n.error();
      if (*n == 0) break;
      excess -= std::min(excess, *n);
    }
    return total;
  });
}

Result<Vehicle> PostgresDatabase::upsert_vehicle(const Vehicle& vehicle) {
  if (vehicle.vin.empty()) return make_error_code(errc::invalid_argument);
  return on_writer(detail::kOpWrite, [&](PgConnection& c) -> Result<Vehicle> {
    auto r = c.exec(
        "INSERT INTO vehicles (vin, name, source, created_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (vin) DO UPDATE SET "
        "name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE vehicles.name END, "
        "source = excluded.source RETURNING vin, name, source, created_at",
        Params()
            .text(vehicle.vin)
            .text(vehicle.name)
            .text(vehicle_source_name(vehicle.source))
            .i64(vehicle.created_at));
    if (!r) return detail::failed(r.error());
    if (PQntuples(r->get()) != 1) return make_error_code(errc::query_failed);
    return read_vehicle(Row(r->get(), 0));
  });
}

Result<bool> PostgresDatabase::delete_vehicle(std::string_view vin) {
  return on_writer(detail::kOpWrite, [&](PgConnection& c) -> Result<bool> {
    auto r = c.exec("DELETE FROM vehicles WHERE vin = $1", Params().text(vin));
    if (!r) return detail::failed(r.error());
    return affected(*r) > 0;
  });
}

Result<std::size_t> PostgresDatabase::upsert_fleet_errors(std::span<const FleetError> errors) {
  if (errors.empty()) return std::size_t{0};
  // One entry per key (the last wins), as ON CONFLICT DO UPDATE requires.
  std::vector<const FleetError*> unique;
  std::map<std::tuple<std::string_view, std::string_view, Timestamp, std::string_view>, std::size_t>
      index;
  for (const FleetError& e : errors) {
    auto [it, fresh] =
        index.try_emplace({e.vin, e.error_name, e.created_at, e.error}, unique.size());
    if (fresh) {
      unique.push_back(&e);
    } else {
      unique[it->second] = &e;
    }
  }
  ArrayText vin, error_name, error, created, name, txid, raw, fetched;
  for (const FleetError* e : unique) {
    vin.text(e->vin);
    error_name.text(e->error_name);
    error.text(e->error);
    created.i64(e->created_at);
    name.text(e->name);
    txid.text(e->txid);
    raw.text(e->raw_json);
    fetched.i64(e->fetched_at);
  }
  auto n = on_writer(detail::kOpWrite, [&](PgConnection& c) -> Result<std::size_t> {
    auto r = c.exec(
        "INSERT INTO fleet_telemetry_errors (vin, error_name, error, created_at, name, txid, "
        "raw_json, fetched_at) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], "
        "$4::int8[], $5::text[], $6::text[], $7::text[], $8::int8[]) "
        "ON CONFLICT (vin, ts_text_key(error_name), created_at, ts_text_key(error)) DO UPDATE SET "
        "name = excluded.name, txid = excluded.txid, raw_json = excluded.raw_json, "
        "fetched_at = excluded.fetched_at",
        Params()
            .text(vin.done())
            .text(error_name.done())
            .text(error.done())
            .text(created.done())
            .text(name.done())
            .text(txid.done())
            .text(raw.done())
            .text(fetched.done()));
    if (!r) return detail::failed(r.error());
    return affected(*r);
  });
  if (n) metrics_.rows_written.with({"fleet_telemetry_errors"}).inc(*n);
  return n;
}

Result<void> PostgresDatabase::replace_error_vins(std::span<const std::string> vins,
                                                  Timestamp now) {
  ArrayText list;
  for (const std::string& v : vins) list.text(v);
  const std::string array = list.done();
  return on_writer(detail::kOpWrite, [&](PgConnection& c) -> Result<void> {
    return c.transaction([&]() -> Result<void> {
      auto up = c.exec(
          "INSERT INTO fleet_telemetry_error_vins (vin, active, first_seen_at, last_seen_at, "
          "resolved_at) SELECT DISTINCT v, true, $2::int8, $2::int8, NULL::int8 FROM "
          "unnest($1::text[]) AS v ON CONFLICT (vin) DO UPDATE SET active = true, "
          "last_seen_at = excluded.last_seen_at, resolved_at = NULL",
          Params().text(array).i64(now));
      if (!up) return up.error();
      auto down = c.exec(
          "UPDATE fleet_telemetry_error_vins SET active = false, resolved_at = $2 "
          "WHERE active AND vin <> ALL ($1::text[])",
          Params().text(array).i64(now));
      if (!down) return down.error();
      return {};
    });
  });
}

Result<ApiToken> PostgresDatabase::create_token(std::string_view name, std::string_view sha256_hex,
                                                Timestamp created_at) {
  const std::optional<std::string> hash = normalized_sha256(sha256_hex);
  if (!hash) return make_error_code(errc::invalid_argument);
  return on_writer(detail::kOpWrite, [&](PgConnection& c) -> Result<ApiToken> {
    auto r = c.exec(
        "INSERT INTO api_tokens (name, token_sha256, created_at) VALUES ($1, $2, $3) "
        "RETURNING id, name, token_sha256, created_at, last_used_at",
        Params().text(name).text(*hash).i64(created_at));
    if (!r) return detail::failed(r.error());
    return read_token(Row(r->get(), 0));
  });
}

Result<bool> PostgresDatabase::touch_token(std::int64_t id, Timestamp used_at) {
  return on_writer(detail::kOpWrite, [&](PgConnection& c) -> Result<bool> {
    auto r = c.exec("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1",
                    Params().i64(id).i64(used_at));
    if (!r) return detail::failed(r.error());
    return affected(*r) > 0;
  });
}

Result<bool> PostgresDatabase::delete_token(std::int64_t id) {
  return on_writer(detail::kOpWrite, [&](PgConnection& c) -> Result<bool> {
    auto r = c.exec("DELETE FROM api_tokens WHERE id = $1", Params().i64(id));
    if (!r) return detail::failed(r.error());
    return affected(*r) > 0;
  });
}

Result<void> PostgresDatabase::set_setting(std::string_view key, std::string_view value) {
  return on_writer(detail::kOpWrite, [&](PgConnection& c) -> Result<void> {
    auto r = c.exec(
        "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) "
        "DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        Params().text(key).text(value).i64(signal::now()));
    if (!r) return detail::failed(r.error());
    return {};
  });
}

// ---- reads ----------------------------------------------------------------------------------

Result<int> PostgresDatabase::schema_version() {
  return on_reader(detail::kOpRead, [&](PgConnection& c) -> Result<int> {
    auto r = c.exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (!r) return detail::failed(r.error());
    return static_cast<int>(Row(r->get(), 0).i64(0));
  });
}

Result<SignalPage> PostgresDatabase::query_signals(const SignalQuery& query) {
  if (query.vin.empty()) return make_error_code(errc::invalid_argument);
  const std::size_t limit = detail::clamp_limit(query.limit);
  Timestamp lower = query.from.value_or(kMinTs);
  if (query.after) lower = std::max(lower, query.after->ts);
  const Timestamp upper = query.to.value_or(kMaxTs);
  // The series of the vehicle (one with a name), each read through the primary key (series_id,
  // ts) up to the page size, merged by (ts, name): at most series x (limit + 1) rows are read.
  Params p;
  p.text(query.vin).i64(lower).i64(upper).i64(static_cast<std::int64_t>(limit + 1));
  std::string sql = "SELECT " + kSignalSelect +
                    " FROM signal_series s CROSS JOIN LATERAL (SELECT * FROM signal_log "
                    "WHERE series_id = s.id AND ts >= $2 AND ts < $3";
  if (query.after) {
    p.i64(query.after->ts).text(query.after->name);
    sql += " AND (ts > $5 OR s.name > $6)";
  }
  sql += " ORDER BY ts LIMIT $4) l WHERE s.vin = $1";
  if (query.name) {
    p.text(*query.name);
    sql += query.after ? " AND ts_text_key(s.name) = ts_text_key($7) AND s.name = $7"
                       : " AND ts_text_key(s.name) = ts_text_key($5) AND s.name = $5";
  }
  sql += " ORDER BY l.ts, s.name LIMIT $4";
  return on_reader(detail::kOpRead, [&](PgConnection& c) -> Result<SignalPage> {
    auto r = c.exec(sql, p);
    if (!r) return r.error();
    SignalPage page;
    page.rows = collect<Signal>(*r, read_signal);
    if (page.rows.size() > limit) {
      page.rows.resize(limit);
      page.next = SignalCursor{page.rows.back().ts, page.rows.back().name};
    }
    return page;
  });
}

Result<std::vector<Signal>> PostgresDatabase::latest_signals(
    std::optional<std::string_view> vin, std::optional<std::chrono::microseconds> max_future_skew) {
  return on_reader(detail::kOpRead, [&](PgConnection& c) -> Result<std::vector<Signal>> {
    // One probe per series: its newest row through the primary key, read backwards. With a
    // skew, rows stamped beyond now + skew are skipped inside the index (ts <= bound: no row
    // received so far can satisfy ts <= received_at + skew above it); the few between are
    // filtered. A series whose rows retention removed (or that has only future rows) is left out.
    Params p;
    std::string filter;
    if (max_future_skew) {
      const std::int64_t skew = std::max<std::int64_t>(0, max_future_skew->count());
      const Timestamp now = signal::now();
      const Timestamp bound = skew > kMaxTs - now ? kMaxTs : now + skew;
      p.i64(bound).i64(skew);
      filter = " AND ts <= $1 AND ts <= received_at + $2";
    }
    if (vin) p.text(*vin);
    const std::string sql =
        "SELECT " + kSignalSelect +
        " FROM signal_series s CROSS JOIN LATERAL (SELECT * FROM signal_log WHERE series_id = s.id" +
        filter + " ORDER BY ts DESC LIMIT 1) l" +
        (vin ? (max_future_skew ? " WHERE s.vin = $3" : " WHERE s.vin = $1") : "") +
        " ORDER BY s.vin, s.name";
    auto r = p.size() > 0 ? c.exec(sql, p) : c.exec(sql);
    if (!r) return r.error();
    return collect<Signal>(*r, read_signal);
  });
}

Result<std::vector<DeadLetter>> PostgresDatabase::list_dead_letters(
    std::size_t offset, std::size_t limit, std::optional<std::string_view> vin) {
  return on_reader(detail::kOpRead, [&](PgConnection& c) -> Result<std::vector<DeadLetter>> {
    Params p;
    p.i64(static_cast<std::int64_t>(detail::clamp_limit(limit)))
        .i64(static_cast<std::int64_t>(offset));
    if (vin) p.text(*vin);
    auto r = c.exec(std::string("SELECT id, received_at, topic, vin, reason, payload, "
                                "payload_size, occurrences, last_received_at FROM dead_letters") +
                        (vin ? " WHERE vin = $3" : "") + " ORDER BY id DESC LIMIT $1 OFFSET $2",
                    p);
    if (!r) return detail::failed(r.error());
    return collect<DeadLetter>(*r, [](const Row& row) {
      return DeadLetter{.id = row.i64(0),
                        .received_at = row.i64(1),
                        .topic = row.text(2),
                        .vin = row.text(3),
                        .reason = row.text(4),
                        .payload = row.bytea(5),
                        .payload_size = static_cast<std::uint64_t>(row.i64(6)),
                        .occurrences = static_cast<std::uint64_t>(row.i64(7)),
                        .last_received_at = row.i64(8)};
    });
  });
}

Result<std::uint64_t> PostgresDatabase::count_dead_letters(std::optional<std::string_view> vin) {
  return on_reader(detail::kOpRead, [&](PgConnection& c) -> Result<std::uint64_t> {
    auto r = vin ? c.exec("SELECT COUNT(*) FROM dead_letters WHERE vin = $1", Params().text(*vin))
                 : c.exec("SELECT COUNT(*) FROM dead_letters");
    if (!r) return detail::failed(r.error());
    return static_cast<std::uint64_t>(Row(r->get(), 0).i64(0));
  });
}

Result<std::optional<Vehicle>> PostgresDatabase::get_vehicle(std::string_view vin) {
  return on_reader(detail::kOpRead, [&](PgConnection& c) -> Result<std::optional<Vehicle>> {
    auto r = c.exec("SELECT vin, name, source, created_at FROM vehicles WHERE vin = $1",
                    Params().text(vin));
    if (!r) return detail::failed(r.error());
    if (PQntuples(r->get()) == 0) return std::optional<Vehicle>();
    return std::optional<Vehicle>(read_vehicle(Row(r->get(), 0)));
  });
}

Result<std::vector<Vehicle>> PostgresDatabase::list_vehicles() {
  return on_reader(detail::kOpRead, [&](PgConnection& c) -> Result<std::vector<Vehicle>> {
    auto r =
        c.exec("SELECT vin, name, source, created_at FROM vehicles ORDER BY vin COLLATE \"C\"");
    if (!r) return detail::failed(r.error());
    return collect<Vehicle>(*r, read_vehicle);
  });
}

Result<std::vector<Alert>> PostgresDatabase::list_alerts(std::string_view vin, std::size_t limit,
                                                         std::size_t offset) {
  return on_reader(detail::kOpRead, [&](PgConnection& c) -> Result<std::vector<Alert>> {
    auto r = c.exec(
        "SELECT vin, name, started_at, ended_at, audiences, received_at FROM alerts WHERE vin = $1 "
        "ORDER BY started_at DESC, name COLLATE \"C\" LIMIT $2 OFFSET $3",
        Params()
            .text(vin)
            .i64(static_cast<std::int64_t>(detail::clamp_limit(limit)))
            .i64(static_cast<std::int64_t>(offset)));
    if (!r) return detail::failed(r.error());
    return collect<Alert>(*r, [](const Row& row) {
      return Alert{.vin = row.text(0),
                   .name = row.text(1),
                   .started_at = row.i64(2),
                   .ended_at = row.opt_i64(3),
                   .audiences_json = row.text(4),
                   .received_at = row.i64(5)};
    });
  });
}

Result<std::vector<ConnectivityEvent>> PostgresDatabase::list_connectivity(std::string_view vin,
                                                                           std::size_t limit,
                                                                           std::size_t offset) {
  return on_reader(detail::kOpRead, [&](PgConnection& c) -> Result<std::vector<ConnectivityEvent>> {
    auto r = c.exec(
        "SELECT vin, connection_id, status, network_interface, ts, received_at FROM "
        "connectivity_events WHERE vin = $1 ORDER BY ts DESC, id DESC LIMIT $2 OFFSET $3",
        Params()
            .text(vin)
            .i64(static_cast<std::int64_t>(detail::clamp_limit(limit)))
            .i64(static_cast<std::int64_t>(offset)));
    if (!r) return detail::failed(r.error());
    return collect<ConnectivityEvent>(*r, [](const Row& row) {
      return ConnectivityEvent{.vin = row.text(0),
                               .connection_id = row.text(1),
                               .status = row.text(2),
                               .network_interface = row.text(3),
                               .ts = row.i64(4),
                               .received_at = row.i64(5)};
    });
  });
}

Result<std::vector<VehicleError>> PostgresDatabase::list_vehicle_errors(std::string_view vin,
                                                                        std::size_t limit,
                                                                        std::size_t offset) {
  return on_reader(detail::kOpRead, [&](PgConnection& c) -> Result<std::vector<VehicleError>> {
    auto r = c.exec(
        "SELECT vin, name, body, tags, created_at, received_at FROM vehicle_errors WHERE vin = $1 "
        "ORDER BY created_at DESC, received_at DESC, id DESC LIMIT $2 OFFSET $3",
        Params()
            .text(vin)
            .i64(static_cast<std::int64_t>(detail::clamp_limit(limit)))
            .i64(static_cast<std::int64_t>(offset)));
    if (!r) return detail::failed(r.error());
    return collect<VehicleError>(*r, [](const Row& row) {
      return VehicleError{.vin = row.text(0),
                          .name = row.text(1),
                          .body = row.text(2),
                          .tags_json = row.text(3),
                          .created_at = row.i64(4),
                          .received_at = row.i64(5)};
    });
  });
}

Result<std::vector<FleetError>> PostgresDatabase::list_fleet_errors(
    std::optional<std::string_view> vin, std::size_t limit, std::size_t offset) {
  return on_reader(detail::kOpRead, [&](PgConnection& c) -> Result<std::vector<FleetError>> {
    Params p;
    p.i64(static_cast<std::int64_t>(detail::clamp_limit(limit)))
        .i64(static_cast<std::int64_t>(offset));
    if (vin) p.text(*vin);
    auto r = c.exec(std::string("SELECT id, vin, error_name, error, created_at, name, txid, "
                                "raw_json, fetched_at FROM fleet_telemetry_errors") +
                        (vin ? " WHERE vin = $3" : "") +
                        " ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
                    p);
    if (!r) return detail::failed(r.error());
    return collect<FleetError>(*r, [](const Row& row) {
      return FleetError{.id = row.i64(0),
                        .vin = row.text(1),
                        .error_name = row.text(2),
                        .error = row.text(3),
                        .created_at = row.i64(4),
                        .name = row.text(5),
                        .txid = row.text(6),
                        .raw_json = row.text(7),
                        .fetched_at = row.i64(8)};
    });
  });
}

Result<std::vector<ErrorVin>> PostgresDatabase::list_error_vins(bool active_only) {
  return on_reader(detail::kOpRead, [&](PgConnection& c) -> Result<std::vector<ErrorVin>> {
    auto r = c.exec(std::string("SELECT vin, active, first_seen_at, last_seen_at, resolved_at FROM "
                                "fleet_telemetry_error_vins") +
                    (active_only ? " WHERE active" : "") +
                    " ORDER BY last_seen_at DESC, vin COLLATE \"C\"");
    if (!r) return detail::failed(r.error());
    return collect<ErrorVin>(*r, [](const Row& row) {
      return ErrorVin{.vin = row.text(0),
                      .active = row.boolean(1),
                      .first_seen_at = row.i64(2),
                      .last_seen_at = row.i64(3),
                      .resolved_at = row.opt_i64(4)};
    });
  });
}

Result<std::optional<ApiToken>> PostgresDatabase::find_token(std::string_view sha256_hex) {
  const std::optional<std::string> hash = normalized_sha256(sha256_hex);
  if (!hash) return std::optional<ApiToken>();
  return on_reader(detail::kOpRead, [&](PgConnection& c) -> Result<std::optional<ApiToken>> {
    auto r = c.exec(
        "SELECT id, name, token_sha256, created_at, last_used_at FROM api_tokens "
        "WHERE token_sha256 = $1",
        Params().text(*hash));
    if (!r) return detail::failed(r.error());
    if (PQntuples(r->get()) == 0) return std::optional<ApiToken>();
    return std::optional<ApiToken>(read_token(Row(r->get(), 0)));
  });
}

Result<std::vector<ApiToken>> PostgresDatabase::list_tokens() {
  return on_reader(detail::kOpRead, [&](PgConnection& c) -> Result<std::vector<ApiToken>> {
    auto r = c.exec(
        "SELECT id, name, token_sha256, created_at, last_used_at FROM api_tokens ORDER BY id");
    if (!r) return detail::failed(r.error());
    return collect<ApiToken>(*r, read_token);
  });
}

Result<std::optional<std::string>> PostgresDatabase::get_setting(std::string_view key) {
  return on_reader(detail::kOpRead, [&](PgConnection& c) -> Result<std::optional<std::string>> {
    auto r = c.exec("SELECT value FROM settings WHERE key = $1", Params().text(key));
    if (!r) return detail::failed(r.error());
    if (PQntuples(r->get()) == 0) return std::optional<std::string>();
    return std::optional<std::string>(Row(r->get(), 0).text(0));
  });
}

// ---- test hooks -----------------------------------------------------------------------------

Result<std::vector<std::int64_t>> PostgresDatabase::partition_days() {
  return on_reader(detail::kOpRead, [&](PgConnection& c) { return load_partitions(c); });
}

Result<void> PostgresDatabase::create_partition_now(std::int64_t day) {
  return on_writer(detail::kOpWrite,
                   [&](PgConnection& c) -> Result<void> { return create_partition(c, day); });
}

Result<std::uint64_t> PostgresDatabase::default_partition_rows() {
  return on_reader(detail::kOpRead, [&](PgConnection& c) -> Result<std::uint64_t> {
    auto r = c.exec("SELECT COUNT(*) FROM signal_log_default");
    if (!r) return detail::failed(r.error());
    return static_cast<std::uint64_t>(Row(r->get(), 0).i64(0));
  });
}

PostgresDatabase* as_postgres(Database& db) { return dynamic_cast<PostgresDatabase*>(&db); }

}  // namespace

Result<std::unique_ptr<Database>> open_postgres(const PostgresOptions& options) {
  std::unique_ptr<core::MetricsRegistry> own;
  if (options.metrics == nullptr) own = std::make_unique<core::MetricsRegistry>();
  auto db = std::make_unique<PostgresDatabase>(options, std::move(own));
  if (auto r = db->init(); !r) return detail::failed(r.error());
  return std::unique_ptr<Database>(std::move(db));
}

Result<std::vector<std::int64_t>> partition_days_for_test(Database& db) {
  PostgresDatabase* pg = as_postgres(db);
  if (pg == nullptr) return make_error_code(errc::invalid_argument);
  return pg->partition_days();
}

Result<void> create_partition_for_test(Database& db, std::int64_t day) {
  PostgresDatabase* pg = as_postgres(db);
  if (pg == nullptr) return make_error_code(errc::invalid_argument);
  return pg->create_partition_now(day);
}

Result<std::uint64_t> default_partition_rows_for_test(Database& db) {
  PostgresDatabase* pg = as_postgres(db);
  if (pg == nullptr) return make_error_code(errc::invalid_argument);
  return pg->default_partition_rows();
}

}  // namespace ts::storage::postgres

#include "storage/sqlite/sqlite_database.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <cctype>
#include <limits>
#include <mutex>
#include <set>
#include <unordered_map>
#include <utility>

#include "storage/detail.hpp"

namespace ts::storage::sqlite {

boost::system::error_code error_code_of_sqlite(int rc) noexcept {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return make_error_code(errc::timeout);
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return make_error_code(errc::unavailable);
    // The data itself: too big for a row, a constraint (also a trigger's RAISE(ABORT)), a
    // datatype mismatch, a parameter out of range. The same rows fail again.
    case SQLITE_TOOBIG:
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
      return make_error_code(errc::rejected);
    default:  // SQLITE_FULL (disk full), SQLITE_NOMEM, SQLITE_ERROR, ...: may pass later
      return make_error_code(errc::query_failed);
  }
}

namespace {

using detail::log;
using signal::Signal;

constexpr std::int64_t kMinTs = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMaxTs = std::numeric_limits<std::int64_t>::max();
/// Rows deleted, and series visited, per retention transaction: the writer is never held long.
constexpr std::int64_t kRetentionChunk = 20'000;
constexpr int kRetentionSeries = 2'000;
/// Rows per dead-letter retention transaction.
constexpr std::int64_t kDeadLetterChunk = 5'000;

/// SQL function ts_dead_letter_key(topic, reason, payload_size, payload): detail::dead_letter_key
/// (migration 5 fills key_hash of older rows with it).
void dead_letter_key_function(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  if (argc != 4) {
    sqlite3_result_error(ctx, "ts_dead_letter_key takes 4 arguments", -1);
    return;
  }
  auto bytes = [&](int i) {
    const void* p = sqlite3_value_blob(argv[i]);
    const int n = sqlite3_value_bytes(argv[i]);
    return p != nullptr ? std::string_view(static_cast<const char*>(p), static_cast<std::size_t>(n))
                        : std::string_view();
  };
  const std::string key =
      detail::dead_letter_key(bytes(0), bytes(1),
                              static_cast<std::uint64_t>(sqlite3_value_int64(argv[2])), bytes(3));
  sqlite3_result_blob(ctx, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
}

/// Gives the database file and its -wal, -shm and -journal mode 0600 (those that exist).
void restrict_file_modes(const std::filesystem::path& db) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    const std::string file = db.string() + suffix;
    if (::chmod(file.c_str(), 0600) != 0 && errno != ENOENT) {
      log().warn("cannot set mode 0600 on {}: {}", file, std::strerror(errno));
    }
  }
}

boost::system::error_code code_of(int rc) { return error_code_of_sqlite(rc); }

/// One sqlite3 connection with its prepared statements. Used by one thread at a time (the
/// owner's mutex or the reader pool guarantees it).
class Connection {
 public:
  Connection(sqlite3* db, detail::RateLimitedLog& rl) : db_(db), rl_(rl) {}
  ~Connection() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* db() const { return db_; }

  /// The cached statement for `sql` (prepared on first use).
  Result<sqlite3_stmt*> prepare(const std::string& sql) {
    if (auto it = cache_.find(sql); it != cache_.end()) return it->second;
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size() + 1),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return fail(rc, "prepare");
    cache_.emplace(sql, stmt);
    return stmt;
  }

  /// Runs one or more statements without results (DDL, pragmas).
  Result<void> exec(const std::string& sql) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
    if (rc != SQLITE_OK) {
      const std::string text = message != nullptr ? message : sqlite3_errstr(rc);
      sqlite3_free(message);
      rl_.warn(log(), "sqlite: {} (statement: {:.80})", text, sql);
      return code_of(rc);
    }
    return {};
  }

  /// Logs the connection's current error (rate-limited) and maps it to an errc.
  boost::system::error_code fail(int rc, std::string_view what) {
    rl_.warn(log(), "sqlite {}: {} ({})", what, sqlite3_errmsg(db_), sqlite3_errstr(rc));
    return code_of(rc);
  }

 private:
  sqlite3* db_;
  detail::RateLimitedLog& rl_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

/// One execution of a cached statement; resets it when done, which also ends its implicit read
/// transaction (a reader must not keep a WAL snapshot open). Text and blobs are bound without
/// copying: they must outlive the Stmt.
class Stmt {
 public:
  Stmt(Connection& c, sqlite3_stmt* s) : c_(c), s_(s) {}
  ~Stmt() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  void bind_int(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void bind_double(int i, double v) { sqlite3_bind_double(s_, i, v); }
  void bind_text(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data() != nullptr ? v.data() : "", static_cast<int>(v.size()),
                      SQLITE_STATIC);
  }
  void bind_blob(int i, std::string_view v) {
    if (v.empty()) {
      sqlite3_bind_zeroblob(s_, i, 0);
    } else {
      sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    }
  }
  void bind_null(int i) { sqlite3_bind_null(s_, i); }
  void bind_opt(int i, const std::optional<std::int64_t>& v) {
    if (v)
      bind_int(i, *v);
    else
      bind_null(i);
  }
  void bind_opt(int i, const std::optional<double>& v) {
    if (v)
      bind_double(i, *v);
    else
      bind_null(i);
  }
  void bind_opt(int i, const std::optional<std::string_view>& v) {
    if (v)
      bind_text(i, *v);
    else
      bind_null(i);
  }

  enum class Step { Row, Done };
  /// Row: a row is available; Done: no more rows.
  Result<Step> step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return Step::Row;
    if (rc == SQLITE_DONE) return Step::Done;
    return c_.fail(rc, "step");
  }
  /// Steps to completion (a statement without result rows, or RETURNING not needed).
  Result<void> run() {
    while (true) {
      auto r = step();
      if (!r) return detail::failed(r.error());
      if (*r == Step::Done) return {};
    }
  }

  bool is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
  double f64(int col) const { return sqlite3_column_double(s_, col); }
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(s_, col);
    const int n = sqlite3_column_bytes(s_, col);
    return p != nullptr ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n))
                        : std::string();
  }
  std::string blob(int col) const {
    const void* p = sqlite3_column_blob(s_, col);
    const int n = sqlite3_column_bytes(s_, col);
    return p != nullptr ? std::string(static_cast<const char*>(p), static_cast<std::size_t>(n))
                        : std::string();
  }
  std::optional<std::int64_t> opt_i64(int col) const {
    if (is_null(col)) return std::nullopt;
    return i64(col);
  }
  std::optional<double> opt_f64(int col) const {
    if (is_null(col)) return std::nullopt;
    return f64(col);
  }

 private:
  Connection& c_;
  sqlite3_stmt* s_;
};

/// Prepares (cached) and wraps in a Stmt.
#define TS_SQLITE_STMT(var, conn, sql)                                \
  auto var##_prepared = (conn).prepare(sql);                          \
  if (!var##_prepared) return detail::failed(var##_prepared.error()); \
  Stmt var((conn), *var##_prepared)

/// A signal row as queries return it (read_signal's order).
const std::string kSignalSelect =
    "s.vin, s.name, l.ts, l.kind, l.value_int, l.value_num, l.value_num2, l.value_text, l.source, "
    "l.received_at";
/// signal_log's value columns after (series_id, ts).
const std::string kValueColumns =
    "kind, value_int, value_num, value_num2, value_text, source, received_at";

/// Reads a signal_log row without its series: columns ts, then kValueColumns, from `first`.
Signal read_log_row(const Stmt& q, int first, std::string vin, std::string name) {
  Signal s;
  s.vin = std::move(vin);
  s.name = std::move(name);
  s.ts = q.i64(first);
  detail::ValueColumns c;
  c.integer = q.opt_i64(first + 2);
  c.number = q.opt_f64(first + 3);
  c.number2 = q.opt_f64(first + 4);
  std::string text;
  if (!q.is_null(first + 5)) {
    text = q.text(first + 5);
    c.text = text;
  }
  s.value = detail::value_of(static_cast<int>(q.i64(first + 1)), c);
  s.source = signal::parse_source_name(q.text(first + 6)).value_or(signal::Source::Stream);
  s.received_at = q.i64(first + 7);
  return s;
}

Signal read_signal(const Stmt& q) { return read_log_row(q, 2, q.text(0), q.text(1)); }

std::optional<std::string> normalized_sha256(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  std::string out(hex);
  for (char& ch : out) {
    if (std::isxdigit(static_cast<unsigned char>(ch)) == 0) return std::nullopt;
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  return out;
}

class SqliteDatabase final : public Database {
 public:
  SqliteDatabase(SqliteOptions options, std::unique_ptr<core::MetricsRegistry> own_registry)
      : options_(std::move(options)),
        own_registry_(std::move(own_registry)),
        metrics_(options_.metrics != nullptr ? *options_.metrics : *own_registry_, "sqlite") {}

  Result<void> init();

  std::string_view backend() const noexcept override { return "sqlite"; }
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

 private:
  Result<std::unique_ptr<Connection>> connect(bool reader);
  /// Applies the pending migrations; returns the schema version reached.
  Result<int> migrate();

  /// Runs f(Connection&) -> Result<T> in one IMMEDIATE transaction on the writer connection.
  template <class F>
  auto in_write_tx(std::string_view op, F&& f) -> decltype(f(std::declval<Connection&>()));
  /// Runs f on a reader connection (the writer's, for an in-memory database).
  template <class F>
  auto on_reader(F&& f) -> decltype(f(std::declval<Connection&>()));

  // Statements run inside a write transaction.
  Result<std::size_t> insert_signals(Connection& c, std::span<const Signal> rows,
                                     std::vector<detail::SeriesIds::Entry>& fresh);
  /// The id of series (vin, name), created if new (then also appended to `fresh`).
  Result<std::int64_t> series_id(Connection& c, std::string_view vin, std::string_view name,
                                 std::vector<detail::SeriesIds::Entry>& fresh);
  Result<std::size_t> insert_alerts(Connection& c, std::span<const Alert> rows);
  Result<std::size_t> insert_connectivity(Connection& c, std::span<const ConnectivityEvent> rows);
  Result<std::size_t> insert_vehicle_errors(Connection& c, std::span<const VehicleError> rows);
  Result<std::size_t> insert_dead_letters(Connection& c, std::span<const DeadLetter> rows);

  SqliteOptions options_;
  std::unique_ptr<core::MetricsRegistry> own_registry_;  // when options_.metrics is null
  detail::StorageMetrics metrics_;
  detail::RateLimitedLog rate_limited_;

  std::mutex writer_mutex_;  // guards writer_, series_ids_ (in memory: every use of the database)
  std::unique_ptr<Connection> writer_;
  detail::SeriesIds series_ids_;  // committed rows of signal_series

  detail::Pool<Connection> readers_;  // filled by init(); empty for an in-memory database
};

Result<std::unique_ptr<Connection>> SqliteDatabase::connect(bool reader) {
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  const std::string path = options_.in_memory ? ":memory:" : options_.path.string();
  if (!reader && !options_.in_memory) {
    // Create the file 0600 before SQLite does (it would use 0644 & ~umask), and restrict an
    // existing one: it holds the Tesla refresh token. SQLite gives -wal and -shm the database
    // file's mode. If this open fails, sqlite3_open_v2 below reports why.
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);
    restrict_file_modes(options_.path);
  }
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    log().error("cannot open SQLite database {}: {}", path,
                db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    return make_error_code(errc::unavailable);
  }
  auto c = std::make_unique<Connection>(db, rate_limited_);
  sqlite3_extended_result_codes(db, 1);
  if (!reader) {
    sqlite3_create_function_v2(db, "ts_dead_letter_key", 4,
                               SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, nullptr,
                               dead_letter_key_function, nullptr, nullptr, nullptr);
  }
  sqlite3_busy_timeout(db, static_cast<int>(options_.busy_timeout.count()));
  std::string pragmas;
  if (!reader) {
    if (!options_.in_memory) pragmas += "PRAGMA journal_mode=WAL;";
    // FULL: a commit is on disk (fsync of the WAL) when it returns; NORMAL: it survives a crash of
    // the process but the last commits may be lost on power failure (docs/storage.md).
    pragmas +=
        options_.synchronous_full ? "PRAGMA synchronous=FULL;" : "PRAGMA synchronous=NORMAL;";
    pragmas += "PRAGMA cache_size=-65536;PRAGMA temp_store=MEMORY;";
    pragmas += "PRAGMA journal_size_limit=67108864;";
  } else {
    pragmas += "PRAGMA cache_size=-16384;PRAGMA query_only=1;";
  }
  if (auto r = c->exec(pragmas); !r) {
    log().error("cannot configure SQLite database {}: {}", path, sqlite3_errmsg(db));
    return detail::failed(r.error());
  }
  metrics_.reconnects.inc();
  return c;
}

Result<void> SqliteDatabase::init() {
  auto w = connect(false);
  if (!w) return w.error();
  writer_ = std::move(*w);
  auto version = migrate();
  if (!version) return version.error();
  if (!options_.in_memory) restrict_file_modes(options_.path);  // -wal and -shm now exist
  if (!options_.in_memory) {
    const std::size_t n = std::max<std::size_t>(1, options_.readers);
    for (std::size_t i = 0; i < n; ++i) {
      auto c = connect(true);
      if (!c) return c.error();
      readers_.add(std::move(*c));
    }
  }
  log().info("SQLite database {} open (schema version {}, synchronous={}, {} readers)",
             options_.in_memory ? std::string(":memory:") : options_.path.string(), *version,
             options_.synchronous_full ? "FULL" : "NORMAL", readers_.size());
  return {};
}

Result<int> SqliteDatabase::migrate() {
  detail::OpTimer timer(metrics_, detail::kOpMigrate);
  std::lock_guard lock(writer_mutex_);
  Connection& c = *writer_;
  if (auto r = c.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                      "name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
      !r) {
    return make_error_code(errc::migration_failed);
  }
  const auto all = migrations();
  const int target =
      options_.migrate_to_version > 0 ? options_.migrate_to_version : all.back().version;
  int reached = 0;
  for (const detail::Migration& m : all) {
    if (m.version > target) break;
    // Each step re-reads the version inside its own IMMEDIATE transaction, so two processes
    // opening the same file at once apply every step exactly once.
    if (auto r = c.exec("BEGIN IMMEDIATE"); !r) return make_error_code(errc::migration_failed);
    int current = 0;
    {
      auto st = c.prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
      if (!st) {
        (void)c.exec("ROLLBACK");
        return make_error_code(errc::migration_failed);
      }
      Stmt q(c, *st);
      auto row = q.step();
      if (!row || *row != Stmt::Step::Row) {
        (void)c.exec("ROLLBACK");
        return make_error_code(errc::migration_failed);
      }
      current = static_cast<int>(q.i64(0));
    }
    if (current > all.back().version) {
      (void)c.exec("ROLLBACK");
      log().error(
          "the SQLite schema is at version {}, newer than this release knows ({}); "
          "refusing to use it",
          current, all.back().version);
      return make_error_code(errc::schema_too_new);
    }
    reached = current;
    if (current >= m.version) {
      (void)c.exec("COMMIT");
      continue;
    }
    auto applied = c.exec(std::string(m.sql));
    if (applied) {
      auto st =
          c.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)");
      if (!st) {
        applied = st.error();
      } else {
        Stmt q(c, *st);
        q.bind_int(1, m.version);
        q.bind_text(2, m.name);
        q.bind_int(3, signal::now());
        applied = q.run();
      }
    }
    if (applied) applied = c.exec("COMMIT");
    if (!applied) {
      (void)c.exec("ROLLBACK");
      log().error("SQLite migration {} ({}) failed; the schema stays at version {}", m.version,
                  m.name, current);
      return make_error_code(errc::migration_failed);
    }
    log().info("SQLite schema migrated to version {} ({})", m.version, m.name);
    reached = m.version;
  }
  timer.ok();
  return reached;
}

Result<void> commit(Connection& c) {
  TS_SQLITE_STMT(q, c, "COMMIT");
  return q.run();
}

template <class F>
auto SqliteDatabase::in_write_tx(std::string_view op, F&& f)
    -> decltype(f(std::declval<Connection&>())) {
  detail::OpTimer timer(metrics_, op);
  std::lock_guard lock(writer_mutex_);
  Connection& c = *writer_;
  {
    TS_SQLITE_STMT(begin, c, "BEGIN IMMEDIATE");
    if (auto r = begin.run(); !r) return detail::failed(r.error());
  }
  auto result = f(c);
  if (result) {
    Result<void> committed = commit(c);
    if (committed) {
      timer.ok();
      return result;
    }
    result = detail::failed(committed.error());
  }
  if (sqlite3_get_autocommit(c.db()) == 0) (void)c.exec("ROLLBACK");
  return result;
}

template <class F>
auto SqliteDatabase::on_reader(F&& f) -> decltype(f(std::declval<Connection&>())) {
  detail::OpTimer timer(metrics_, detail::kOpRead);
  if (readers_.empty()) {
    std::lock_guard lock(writer_mutex_);
    auto result = f(*writer_);
    if (result) timer.ok();
    return result;
  }
  auto lease = readers_.acquire();
  auto result = f(*lease);
  if (result) timer.ok();
  return result;
}

Result<int> SqliteDatabase::schema_version() {
  return on_reader([](Connection& c) -> Result<int> {
    TS_SQLITE_STMT(q, c, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    auto row = q.step();
    if (!row) return detail::failed(row.error());
    return static_cast<int>(q.i64(0));
  });
}

// ---- writes ---------------------------------------------------------------------------------

Result<std::int64_t> SqliteDatabase::series_id(Connection& c, std::string_view vin,
                                               std::string_view name,
                                               std::vector<detail::SeriesIds::Entry>& fresh) {
  for (const detail::SeriesIds::Entry& e : fresh) {  // new in this transaction
    if (e.vin == vin && e.name == name) return e.id;
  }
  {
    TS_SQLITE_STMT(q, c, "INSERT OR IGNORE INTO signal_series (vin, name) VALUES (?1, ?2)");
    q.bind_text(1, vin);
    q.bind_text(2, name);
    if (auto r = q.run(); !r) return r.error();
  }
  TS_SQLITE_STMT(q, c, "SELECT id FROM signal_series WHERE vin = ?1 AND name = ?2");
  q.bind_text(1, vin);
  q.bind_text(2, name);
  auto row = q.step();
  if (!row) return row.error();
  if (*row != Stmt::Step::Row) return make_error_code(errc::query_failed);
  const std::int64_t id = q.i64(0);
  fresh.push_back({std::string(vin), std::string(name), id});
  return id;
}

Result<std::size_t> SqliteDatabase::insert_signals(Connection& c, std::span<const Signal> rows,
                                                   std::vector<detail::SeriesIds::Entry>& fresh) {
  if (rows.empty()) return std::size_t{0};
  auto st = c.prepare("INSERT OR IGNORE INTO signal_log (series_id, ts, " + kValueColumns +
                      ") VALUES (?,?,?,?,?,?,?,?,?)");
  if (!st) return detail::failed(st.error());
  std::size_t inserted = 0;
  for (const Signal& s : rows) {
    std::optional<std::int64_t> id = series_ids_.find(s.vin, s.name);
    if (!id) {
      auto created = series_id(c, s.vin, s.name, fresh);
      if (!created) return detail::failed(created.error());
      id = *created;
    }
    Stmt q(c, *st);
    const detail::ValueColumns v = detail::columns_of(s.value);
    q.bind_int(1, *id);
    q.bind_int(2, s.ts);
    q.bind_int(3, static_cast<int>(s.value.kind));
    q.bind_opt(4, v.integer);
    q.bind_opt(5, v.number);
    q.bind_opt(6, v.number2);
    q.bind_opt(7, v.text);
    q.bind_text(8, signal::source_name(s.source));
    q.bind_int(9, s.received_at);
    if (auto r = q.run(); !r) return detail::failed(r.error());
    inserted += static_cast<std::size_t>(sqlite3_changes(c.db()));
  }
  return inserted;
}

Result<std::size_t> SqliteDatabase::insert_alerts(Connection& c, std::span<const Alert> rows) {
  if (rows.empty()) return std::size_t{0};
  auto st = c.prepare(
      "INSERT INTO alerts (vin, name, started_at, ended_at, audiences, received_at) "
      "VALUES (?,?,?,?,?,?) ON CONFLICT (vin, name, started_at) DO UPDATE SET "
      "ended_at = excluded.ended_at WHERE alerts.ended_at IS NULL AND excluded.ended_at IS NOT "
      "NULL");
  if (!st) return detail::failed(st.error());
  std::size_t n = 0;
  for (const Alert& a : rows) {
    Stmt q(c, *st);
    q.bind_text(1, a.vin);
    q.bind_text(2, a.name);
    q.bind_int(3, a.started_at);
    q.bind_opt(4, a.ended_at);
    q.bind_text(5, a.audiences_json);
    q.bind_int(6, a.received_at);
    if (auto r = q.run(); !r) return detail::failed(r.error());
    n += static_cast<std::size_t>(sqlite3_changes(c.db()));
  }
  return n;
}

Result<std::size_t> SqliteDatabase::insert_connectivity(Connection& c,
                                                        std::span<const ConnectivityEvent> rows) {
  if (rows.empty()) return std::size_t{0};
  auto st = c.prepare(
      "INSERT OR IGNORE INTO connectivity_events (vin, connection_id, status, network_interface, "
      "ts, received_at) VALUES (?,?,?,?,?,?)");
  if (!st) return detail::failed(st.error());
  std::size_t n = 0;
  for (const ConnectivityEvent& e : rows) {
    Stmt q(c, *st);
    q.bind_text(1, e.vin);
    q.bind_text(2, e.connection_id);
    q.bind_text(3, e.status);
    q.bind_text(4, e.network_interface);
    q.bind_int(5, e.ts);
    q.bind_int(6, e.received_at);
    if (auto r = q.run(); !r) return detail::failed(r.error());
    n += static_cast<std::size_t>(sqlite3_changes(c.db()));
  }
  return n;
}

Result<std::size_t> SqliteDatabase::insert_vehicle_errors(Connection& c,
                                                          std::span<const VehicleError> rows) {
  if (rows.empty()) return std::size_t{0};
  auto st = c.prepare(
      "INSERT OR IGNORE INTO vehicle_errors (vin, name, body, tags, created_at, received_at, "
      "fingerprint) VALUES (?,?,?,?,?,?,?)");
  if (!st) return detail::failed(st.error());
  std::size_t n = 0;
  for (const VehicleError& e : rows) {
    Stmt q(c, *st);
    q.bind_text(1, e.vin);
    q.bind_text(2, e.name);
    q.bind_text(3, e.body);
    q.bind_text(4, e.tags_json);
    q.bind_int(5, e.created_at);
    q.bind_int(6, e.received_at);
    q.bind_int(7, detail::error_fingerprint(e.body, e.tags_json));
    if (auto r = q.run(); !r) return detail::failed(r.error());
    n += static_cast<std::size_t>(sqlite3_changes(c.db()));
  }
  return n;
}

Result<std::size_t> SqliteDatabase::insert_dead_letters(Connection& c,
                                                        std::span<const DeadLetter> rows) {
  if (rows.empty()) return std::size_t{0};
  auto insert = c.prepare(
      "INSERT INTO dead_letters (received_at, topic, vin, reason, payload, payload_size, "
      "occurrences, last_received_at, key_hash) VALUES (?1,?2,?3,?4,?5,?6,1,?1,?7) "
      "ON CONFLICT (key_hash) DO NOTHING");
  if (!insert) return detail::failed(insert.error());
  auto repeat = c.prepare(
      "UPDATE dead_letters SET occurrences = occurrences + 1, "
      "last_received_at = max(last_received_at, ?2) WHERE key_hash = ?1");
  if (!repeat) return detail::failed(repeat.error());
  std::size_t added = 0;
  for (const DeadLetter& d : rows) {
    const std::uint64_t size = std::max<std::uint64_t>(d.payload_size, d.payload.size());
    const std::string key = detail::dead_letter_key(d.topic, d.reason, size, d.payload);
    {
      Stmt q(c, *insert);
      q.bind_int(1, d.received_at);
      q.bind_text(2, d.topic);
      q.bind_text(3, d.vin);
      q.bind_text(4, d.reason);
      q.bind_blob(5, std::string_view(d.payload).substr(0, kMaxDeadLetterPayload));
      q.bind_int(6, static_cast<std::int64_t>(size));
      q.bind_blob(7, key);
      if (auto r = q.run(); !r) return detail::failed(r.error());
    }
    if (sqlite3_changes(c.db()) > 0) {
      ++added;
      continue;
    }
    Stmt q(c, *repeat);  // stored before: one more occurrence
    q.bind_blob(1, key);
    q.bind_int(2, d.received_at);
    if (auto r = q.run(); !r) return detail::failed(r.error());
  }
  return added;
}

Result<BatchResult> SqliteDatabase::write(const BatchView& batch) {
  if (batch.empty()) return BatchResult{};
  std::vector<detail::SeriesIds::Entry> new_series;
  auto result = in_write_tx(detail::kOpWriteBatch, [&](Connection& c) -> Result<BatchResult> {
    new_series.clear();
    BatchResult r;
    auto s = insert_signals(c, batch.signals, new_series);
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
  if (result && !new_series.empty()) {
    std::lock_guard lock(writer_mutex_);  // committed: remember the new series
    for (detail::SeriesIds::Entry& e : new_series) series_ids_.add(std::move(e));
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

Result<RetentionResult> SqliteDatabase::delete_signals_before(Timestamp cutoff) {
  // Series by series through the primary key (series_id, ts), in transactions of at most
  // kRetentionChunk rows or kRetentionSeries series, releasing the writer in between.
  RetentionResult total;
  std::int64_t after = std::numeric_limits<std::int64_t>::min();  // last series finished
  bool done = false;
  while (!done) {
    auto deleted = in_write_tx(detail::kOpRetention, [&](Connection& c) -> Result<std::uint64_t> {
      std::uint64_t n = 0;
      for (int visited = 0; visited < kRetentionSeries; ++visited) {
        std::int64_t id = 0;
        {
          TS_SQLITE_STMT(q, c, "SELECT id FROM signal_series WHERE id > ?1 ORDER BY id LIMIT 1");
          q.bind_int(1, after);
          auto row = q.step();
          if (!row) return row.error();
          if (*row == Stmt::Step::Done) {
            done = true;
            return n;
          }
          id = q.i64(0);
        }
        const std::int64_t budget = kRetentionChunk - static_cast<std::int64_t>(n);
        Timestamp bound = cutoff;  // delete ts < bound: all before the cutoff, or `budget` rows
        bool partial = false;
        {
          TS_SQLITE_STMT(q, c,
                         "SELECT ts FROM signal_log WHERE series_id = ?1 AND ts < ?2 ORDER BY ts "
                         "LIMIT 1 OFFSET ?3");
          q.bind_int(1, id);
          q.bind_int(2, cutoff);
          q.bind_int(3, budget);
          auto row = q.step();
          if (!row) return row.error();
          if (*row == Stmt::Step::Row) {
            bound = q.i64(0);
            partial = true;
          }
        }
        TS_SQLITE_STMT(d, c, "DELETE FROM signal_log WHERE series_id = ?1 AND ts < ?2");
        d.bind_int(1, id);
        d.bind_int(2, bound);
        if (auto r = d.run(); !r) return r.error();
        n += static_cast<std::uint64_t>(sqlite3_changes(c.db()));
        if (partial) return n;  // this series has more: the next transaction continues it
        after = id;
      }
      return n;
    });
    if (!deleted) return deleted.error();
    total.rows_deleted += *deleted;
    metrics_.rows_deleted.inc(*deleted);
  }
  return total;
}

Result<std::uint64_t> SqliteDatabase::delete_events_before(Timestamp cutoff) {
  return in_write_tx(detail::kOpRetention, [&](Connection& c) -> Result<std::uint64_t> {
    std::uint64_t n = 0;
    for (const char* sql : {"DELETE FROM connectivity_events WHERE received_at < ?1",
                            "DELETE FROM vehicle_errors WHERE received_at < ?1",
                            "DELETE FROM alerts WHERE ended_at IS NOT NULL AND ended_at < ?1"}) {
      TS_SQLITE_STMT(q, c, sql);
      q.bind_int(1, cutoff);
      if (auto r = q.run(); !r) return detail::failed(r.error());
      n += static_cast<std::uint64_t>(sqlite3_changes(c.db()));
    }
    metrics_.rows_deleted.inc(n);
    return n;
  });
}

Result<std::uint64_t> SqliteDatabase::delete_dead_letters(Timestamp received_before,
                                                          std::uint64_t keep_max_rows) {
  // Chunks of kDeadLetterChunk rows, each its own transaction: the writer is released between
  // them, so ingest waits for one chunk at most.
  std::uint64_t total = 0;
  auto chunk = [&](bool by_age, std::int64_t limit) -> Result<std::uint64_t> {
    auto n = in_write_tx(detail::kOpRetention, [&](Connection& c) -> Result<std::uint64_t> {
      TS_SQLITE_STMT(q, c,
                     by_age ? "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters "
                              "WHERE last_received_at < ?2 ORDER BY last_received_at, id LIMIT ?1)"
                            : "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters "
                              "ORDER BY last_received_at, id LIMIT ?1)");
      q.bind_int(1, limit);
      if (by_age) q.bind_int(2, received_before);
      if (auto r = q.run(); !r) return detail::failed(r.error());
      return static_cast<std::uint64_t>(sqlite3_changes(c.db()));
    });
    if (n) {
      total += *n;
      metrics_.rows_deleted.inc(*n);
    }
    return n;
  };
  while (true) {
    auto n = chunk(true, kDeadLetterChunk);
    if (!n) return n.error();
    if (*n < static_cast<std::uint64_t>(kDeadLetterChunk)) break;
  }
  auto rows = count_dead_letters(std::nullopt);
  if (!rows) return rows.error();
  std::uint64_t excess = *rows > keep_max_rows ? *rows - keep_max_rows : 0;
  while (excess > 0) {
    auto n = chunk(false, static_cast<std::int64_t>(
                              std::min<std::uint64_t>(excess, kDeadLetterChunk)));
    if (!n) return n.error();
    if (*n == 0) break;
    excess -= std::min(excess, *n);
  }
  return total;
}

Vehicle read_vehicle(const Stmt& q) {
  Vehicle v;
  v.vin = q.text(0);
  v.name = q.text(1);
  v.source = parse_vehicle_source(q.text(2)).value_or(VehicleSource::Manual);
  v.created_at = q.i64(3);
  return v;
}

Result<Vehicle> SqliteDatabase::upsert_vehicle(const Vehicle& vehicle) {
  if (vehicle.vin.empty()) return make_error_code(errc::invalid_argument);
  return in_write_tx(detail::kOpWrite, [&](Connection& c) -> Result<Vehicle> {
    TS_SQLITE_STMT(
        q, c,
        "INSERT INTO vehicles (vin, name, source, created_at) VALUES (?,?,?,?) "
        "ON CONFLICT (vin) DO UPDATE SET "
        "name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE vehicles.name END, "
        "source = excluded.source RETURNING vin, name, source, created_at");
    q.bind_text(1, vehicle.vin);
    q.bind_text(2, vehicle.name);
    q.bind_text(3, vehicle_source_name(vehicle.source));
    q.bind_int(4, vehicle.created_at);
    auto row = q.step();
    if (!row) return detail::failed(row.error());
    if (*row == Stmt::Step::Done) return make_error_code(errc::query_failed);
    Vehicle stored = read_vehicle(q);
    if (auto r = q.run(); !r) return detail::failed(r.error());
    return stored;
  });
}

Result<bool> SqliteDatabase::delete_vehicle(std::string_view vin) {
  return in_write_tx(detail::kOpWrite, [&](Connection& c) -> Result<bool> {
    TS_SQLITE_STMT(q, c, "DELETE FROM vehicles WHERE vin = ?1");
    q.bind_text(1, vin);
    if (auto r = q.run(); !r) return detail::failed(r.error());
    return sqlite3_changes(c.db()) > 0;
  });
}

Result<std::size_t> SqliteDatabase::upsert_fleet_errors(std::span<const FleetError> errors) {
  if (errors.empty()) return std::size_t{0};
  auto n = in_write_tx(detail::kOpWrite, [&](Connection& c) -> Result<std::size_t> {
    auto st = c.prepare(
        "INSERT INTO fleet_telemetry_errors (vin, error_name, error, created_at, name, txid, "
        "raw_json, fetched_at) VALUES (?,?,?,?,?,?,?,?) "
        "ON CONFLICT (vin, error_name, created_at, error) DO UPDATE SET name = excluded.name, "
        "txid = excluded.txid, raw_json = excluded.raw_json, fetched_at = excluded.fetched_at");
    if (!st) return detail::failed(st.error());
    for (const FleetError& e : errors) {
      Stmt q(c, *st);
      q.bind_text(1, e.vin);
      q.bind_text(2, e.error_name);
      q.bind_text(3, e.error);
      q.bind_int(4, e.created_at);
      q.bind_text(5, e.name);
      q.bind_text(6, e.txid);
      q.bind_text(7, e.raw_json);
      q.bind_int(8, e.fetched_at);
      if (auto r = q.run(); !r) return detail::failed(r.error());
    }
    return errors.size();
  });
  if (n) metrics_.rows_written.with({"fleet_telemetry_errors"}).inc(*n);
  return n;
}

Result<void> SqliteDatabase::replace_error_vins(std::span<const std::string> vins, Timestamp now) {
  return in_write_tx(detail::kOpWrite, [&](Connection& c) -> Result<void> {
    const std::set<std::string_view> current(vins.begin(), vins.end());
    {
      auto st = c.prepare(
          "INSERT INTO fleet_telemetry_error_vins (vin, active, first_seen_at, last_seen_at, "
          "resolved_at) VALUES (?1, 1, ?2, ?2, NULL) ON CONFLICT (vin) DO UPDATE SET active = 1, "
          "last_seen_at = excluded.last_seen_at, resolved_at = NULL");
      if (!st) return detail::failed(st.error());
      for (std::string_view vin : current) {
        Stmt q(c, *st);
        q.bind_text(1, vin);
        q.bind_int(2, now);
        if (auto r = q.run(); !r) return detail::failed(r.error());
      }
    }
    std::vector<std::string> resolved;
    {
      TS_SQLITE_STMT(q, c, "SELECT vin FROM fleet_telemetry_error_vins WHERE active = 1");
      while (true) {
        auto row = q.step();
        if (!row) return detail::failed(row.error());
        if (*row == Stmt::Step::Done) break;
        std::string vin = q.text(0);
        if (!current.contains(vin)) resolved.push_back(std::move(vin));
      }
    }
    auto st = c.prepare(
        "UPDATE fleet_telemetry_error_vins SET active = 0, resolved_at = ?2 WHERE vin = ?1");
    if (!st) return detail::failed(st.error());
    for (const std::string& vin : resolved) {
      Stmt q(c, *st);
      q.bind_text(1, vin);
      q.bind_int(2, now);
      if (auto r = q.run(); !r) return detail::failed(r.error());
    }
    return {};
  });
}

ApiToken read_token(const Stmt& q) {
  ApiToken t;
  t.id = q.i64(0);
  t.name = q.text(1);
  t.sha256_hex = q.text(2);
  t.created_at = q.i64(3);
  t.last_used_at = q.opt_i64(4);
  return t;
}

Result<ApiToken> SqliteDatabase::create_token(std::string_view name, std::string_view sha256_hex,
                                              Timestamp created_at) {
  const std::optional<std::string> hash = normalized_sha256(sha256_hex);
  if (!hash) return make_error_code(errc::invalid_argument);
  return in_write_tx(detail::kOpWrite, [&](Connection& c) -> Result<ApiToken> {
    TS_SQLITE_STMT(q, c,
                   "INSERT INTO api_tokens (name, token_sha256, created_at) VALUES (?,?,?) "
                   "RETURNING id, name, token_sha256, created_at, last_used_at");
    q.bind_text(1, name);
    q.bind_text(2, *hash);
    q.bind_int(3, created_at);
    auto row = q.step();
    if (!row) return detail::failed(row.error());
    if (*row == Stmt::Step::Done) return make_error_code(errc::query_failed);
    ApiToken t = read_token(q);
    if (auto r = q.run(); !r) return detail::failed(r.error());
    return t;
  });
}

Result<bool> SqliteDatabase::touch_token(std::int64_t id, Timestamp used_at) {
  return in_write_tx(detail::kOpWrite, [&](Connection& c) -> Result<bool> {
    TS_SQLITE_STMT(q, c, "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1");
    q.bind_int(1, id);
    q.bind_int(2, used_at);
    if (auto r = q.run(); !r) return detail::failed(r.error());
    return sqlite3_changes(c.db()) > 0;
  });
}

Result<bool> SqliteDatabase::delete_token(std::int64_t id) {
  return in_write_tx(detail::kOpWrite, [&](Connection& c) -> Result<bool> {
    TS_SQLITE_STMT(q, c, "DELETE FROM api_tokens WHERE id = ?1");
    q.bind_int(1, id);
    if (auto r = q.run(); !r) return detail::failed(r.error());
    return sqlite3_changes(c.db()) > 0;
  });
}

Result<void> SqliteDatabase::set_setting(std::string_view key, std::string_view value) {
  return in_write_tx(detail::kOpWrite, [&](Connection& c) -> Result<void> {
    TS_SQLITE_STMT(q, c,
                   "INSERT INTO settings (key, value, updated_at) VALUES (?,?,?) ON CONFLICT (key) "
                   "DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at");
    q.bind_text(1, key);
    q.bind_text(2, value);
    q.bind_int(3, signal::now());
    return q.run();
  });
}

// ---- reads ----------------------------------------------------------------------------------

Result<SignalPage> SqliteDatabase::query_signals(const SignalQuery& query) {
  if (query.vin.empty()) return make_error_code(errc::invalid_argument);
  const std::size_t limit = detail::clamp_limit(query.limit);
  const std::size_t cap = limit + 1;  // one more row tells whether a next page exists
  using Key = std::pair<Timestamp, std::string_view>;
  return on_reader([&](Connection& c) -> Result<SignalPage> {
    // The vehicle's series (one, with a name), each read through the primary key (series_id, ts)
    // in time order and merged by (ts, name) into the best `cap` rows: a max-heap whose top
    // bounds the next series' scan. Reads at most series x cap rows.
    std::vector<std::pair<std::int64_t, std::string>> series;
    {
      TS_SQLITE_STMT(q, c,
                     query.name
                         ? "SELECT id, name FROM signal_series WHERE vin = ?1 AND name = ?2"
                         : "SELECT id, name FROM signal_series WHERE vin = ?1 ORDER BY name");
      q.bind_text(1, query.vin);
      if (query.name) q.bind_text(2, *query.name);
      while (true) {
        auto row = q.step();
        if (!row) return row.error();
        if (*row == Stmt::Step::Done) break;
        series.emplace_back(q.i64(0), q.text(1));
      }
    }
    std::vector<Signal> heap;
    const auto less = [](const Signal& a, const Signal& b) {
      return Key(a.ts, a.name) < Key(b.ts, b.name);
    };
    for (const auto& [id, name] : series) {
      Timestamp lower = query.from.value_or(kMinTs);
      if (query.after) {
        // Keyset: after (ts, name) means ts > after.ts, or ts == after.ts for a later name.
        const bool later_name = name > query.after->name;
        if (!later_name && query.after->ts == kMaxTs) continue;
        lower = std::max(lower, later_name ? query.after->ts : query.after->ts + 1);
      }
      Timestamp upper = query.to.value_or(kMaxTs);  // exclusive
      if (heap.size() == cap && heap.front().ts < kMaxTs) {
        upper = std::min(upper, heap.front().ts + 1);
      }
      if (lower >= upper) continue;
      TS_SQLITE_STMT(q, c,
                     "SELECT ts, " + kValueColumns +
                         " FROM signal_log WHERE series_id = ?1 AND ts >= ?2 AND ts < ?3 "
                         "ORDER BY ts LIMIT ?4");
      q.bind_int(1, id);
      q.bind_int(2, lower);
      q.bind_int(3, upper);
      q.bind_int(4, static_cast<std::int64_t>(cap));
      while (true) {
        auto row = q.step();
        if (!row) return row.error();
        if (*row == Stmt::Step::Done) break;
        const Timestamp ts = q.i64(0);
        if (heap.size() == cap) {
          if (!(Key(ts, name) < Key(heap.front().ts, heap.front().name))) break;
          std::pop_heap(heap.begin(), heap.end(), less);
          heap.pop_back();
        }
        heap.push_back(read_log_row(q, 0, query.vin, name));
        std::push_heap(heap.begin(), heap.end(), less);
      }
    }
    std::sort_heap(heap.begin(), heap.end(), less);
    SignalPage page;
    page.rows = std::move(heap);
    if (page.rows.size() > limit) {
      page.rows.resize(limit);
      page.next = SignalCursor{page.rows.back().ts, page.rows.back().name};
    }
    return page;
  });
}

Result<std::vector<Signal>> SqliteDatabase::latest_signals(
    std::optional<std::string_view> vin, std::optional<std::chrono::microseconds> max_future_skew) {
  return on_reader([&](Connection& c) -> Result<std::vector<Signal>> {
    // Per series one probe for its newest ts (the max() optimization on the primary key; with a
    // skew, a backwards scan of the key from now + skew, skipping rows stamped too far ahead of
    // their receipt) and one to read that row. A series without such a row is left out.
    const std::string newest =
        max_future_skew ? "SELECT ts FROM signal_log WHERE series_id = s.id AND ts <= ?2 AND "
                          "ts <= received_at + ?3 ORDER BY ts DESC LIMIT 1"
                        : "SELECT max(ts) FROM signal_log WHERE series_id = s.id";
    TS_SQLITE_STMT(q, c,
                   "SELECT " + kSignalSelect +
                       " FROM signal_series s JOIN signal_log l ON l.series_id = s.id AND l.ts = (" +
                       newest + ")" + (vin ? " WHERE s.vin = ?1" : "") +
                       " ORDER BY s.vin, s.name");
    if (vin) q.bind_text(1, *vin);
    if (max_future_skew) {
      const std::int64_t skew = std::max<std::int64_t>(0, max_future_skew->count());
      const Timestamp now = signal::now();
      q.bind_int(2, skew > kMaxTs - now ? kMaxTs : now + skew);
      q.bind_int(3, skew);
    }
    std::vector<Signal> out;
    while (true) {
      auto row = q.step();
      if (!row) return row.error();
      if (*row == Stmt::Step::Done) return out;
      out.push_back(read_signal(q));
    }
  });
}

DeadLetter read_dead_letter(const Stmt& q) {
  DeadLetter d;
  d.id = q.i64(0);
  d.received_at = q.i64(1);
  d.topic = q.text(2);
  d.vin = q.text(3);
  d.reason = q.text(4);
  d.payload = q.blob(5);
  d.payload_size = static_cast<std::uint64_t>(q.i64(6));
  d.occurrences = static_cast<std::uint64_t>(q.i64(7));
  d.last_received_at = q.i64(8);
  return d;
}

/// Steps through every row, appending read(q) to a vector.
template <class T, class Read>
Result<std::vector<T>> collect(Stmt& q, Read read) {
  std::vector<T> out;
  while (true) {
    auto row = q.step();
    if (!row) return detail::failed(row.error());
    if (*row == Stmt::Step::Done) return out;
    out.push_back(read(q));
  }
}

Result<std::vector<DeadLetter>> SqliteDatabase::list_dead_letters(
    std::size_t offset, std::size_t limit, std::optional<std::string_view> vin) {
  return on_reader([&](Connection& c) -> Result<std::vector<DeadLetter>> {
    TS_SQLITE_STMT(q, c,
                   std::string("SELECT id, received_at, topic, vin, reason, payload, "
                               "payload_size, occurrences, last_received_at FROM dead_letters") +
                       (vin ? " WHERE vin = ?3" : "") + " ORDER BY id DESC LIMIT ?1 OFFSET ?2");
    q.bind_int(1, static_cast<std::int64_t>(detail::clamp_limit(limit)));
    q.bind_int(2, static_cast<std::int64_t>(offset));
    if (vin) q.bind_text(3, *vin);
    return collect<DeadLetter>(q, read_dead_letter);
  });
}

Result<std::uint64_t> SqliteDatabase::count_dead_letters(std::optional<std::string_view> vin) {
  return on_reader([&](Connection& c) -> Result<std::uint64_t> {
    TS_SQLITE_STMT(q, c,
                   vin ? "SELECT COUNT(*) FROM dead_letters WHERE vin = ?1"
                       : "SELECT COUNT(*) FROM dead_letters");
    if (vin) q.bind_text(1, *vin);
    auto row = q.step();
    if (!row) return detail::failed(row.error());
    return static_cast<std::uint64_t>(q.i64(0));
  });
}

Result<std::optional<Vehicle>> SqliteDatabase::get_vehicle(std::string_view vin) {
  return on_reader([&](Connection& c) -> Result<std::optional<Vehicle>> {
    TS_SQLITE_STMT(q, c, "SELECT vin, name, source, created_at FROM vehicles WHERE vin = ?1");
    q.bind_text(1, vin);
    auto row = q.step();
    if (!row) return detail::failed(row.error());
    if (*row == Stmt::Step::Done) return std::optional<Vehicle>();
    return std::optional<Vehicle>(read_vehicle(q));
  });
}

Result<std::vector<Vehicle>> SqliteDatabase::list_vehicles() {
  return on_reader([&](Connection& c) -> Result<std::vector<Vehicle>> {
    TS_SQLITE_STMT(q, c, "SELECT vin, name, source, created_at FROM vehicles ORDER BY vin");
    return collect<Vehicle>(q, read_vehicle);
  });
}

Result<std::vector<Alert>> SqliteDatabase::list_alerts(std::string_view vin, std::size_t limit,
                                                       std::size_t offset) {
  return on_reader([&](Connection& c) -> Result<std::vector<Alert>> {
    TS_SQLITE_STMT(q, c,
                   "SELECT vin, name, started_at, ended_at, audiences, received_at FROM alerts "
                   "WHERE vin = ?1 ORDER BY started_at DESC, name LIMIT ?2 OFFSET ?3");
    q.bind_text(1, vin);
    q.bind_int(2, static_cast<std::int64_t>(detail::clamp_limit(limit)));
    q.bind_int(3, static_cast<std::int64_t>(offset));
    return collect<Alert>(q, [](const Stmt& r) {
      return Alert{.vin = r.text(0),
                   .name = r.text(1),
                   .started_at = r.i64(2),
                   .ended_at = r.opt_i64(3),
                   .audiences_json = r.text(4),
                   .received_at = r.i64(5)};
    });
  });
}

Result<std::vector<ConnectivityEvent>> SqliteDatabase::list_connectivity(std::string_view vin,
                                                                         std::size_t limit,
                                                                         std::size_t offset) {
  return on_reader([&](Connection& c) -> Result<std::vector<ConnectivityEvent>> {
    TS_SQLITE_STMT(q, c,
                   "SELECT vin, connection_id, status, network_interface, ts, received_at FROM "
                   "connectivity_events WHERE vin = ?1 ORDER BY ts DESC, id DESC LIMIT ?2 "
                   "OFFSET ?3");
    q.bind_text(1, vin);
    q.bind_int(2, static_cast<std::int64_t>(detail::clamp_limit(limit)));
    q.bind_int(3, static_cast<std::int64_t>(offset));
    return collect<ConnectivityEvent>(q, [](const Stmt& r) {
      return ConnectivityEvent{.vin = r.text(0),
                               .connection_id = r.text(1),
                               .status = r.text(2),
                               .network_interface = r.text(3),
                               .ts = r.i64(4),
                               .received_at = r.i64(5)};
    });
  });
}

Result<std::vector<VehicleError>> SqliteDatabase::list_vehicle_errors(std::string_view vin,
                                                                      std::size_t limit,
                                                                      std::size_t offset) {
  return on_reader([&](Connection& c) -> Result<std::vector<VehicleError>> {
    TS_SQLITE_STMT(q, c,
                   "SELECT vin, name, body, tags, created_at, received_at FROM vehicle_errors "
                   "WHERE vin = ?1 ORDER BY created_at DESC, received_at DESC, id DESC "
                   "LIMIT ?2 OFFSET ?3");
    q.bind_text(1, vin);
    q.bind_int(2, static_cast<std::int64_t>(detail::clamp_limit(limit)));
    q.bind_int(3, static_cast<std::int64_t>(offset));
    return collect<VehicleError>(q, [](const Stmt& r) {
      return VehicleError{.vin = r.text(0),
                          .name = r.text(1),
                          .body = r.text(2),
                          .tags_json = r.text(3),
                          .created_at = r.i64(4),
                          .received_at = r.i64(5)};
    });
  });
}

Result<std::vector<FleetError>> SqliteDatabase::list_fleet_errors(
    std::optional<std::string_view> vin, std::size_t limit, std::size_t offset) {
  return on_reader([&](Connection& c) -> Result<std::vector<FleetError>> {
    TS_SQLITE_STMT(q, c,
                   std::string("SELECT id, vin, error_name, error, created_at, name, txid, "
                               "raw_json, fetched_at FROM fleet_telemetry_errors") +
                       (vin ? " WHERE vin = ?3" : "") +
                       " ORDER BY created_at DESC, id DESC LIMIT ?1 OFFSET ?2");
    q.bind_int(1, static_cast<std::int64_t>(detail::clamp_limit(limit)));
    q.bind_int(2, static_cast<std::int64_t>(offset));
    if (vin) q.bind_text(3, *vin);
    return collect<FleetError>(q, [](const Stmt& r) {
      return FleetError{.id = r.i64(0),
                        .vin = r.text(1),
                        .error_name = r.text(2),
                        .error = r.text(3),
                        .created_at = r.i64(4),
                        .name = r.text(5),
                        .txid = r.text(6),
                        .raw_json = r.text(7),
                        .fetched_at = r.i64(8)};
    });
  });
}

Result<std::vector<ErrorVin>> SqliteDatabase::list_error_vins(bool active_only) {
  return on_reader([&](Connection& c) -> Result<std::vector<ErrorVin>> {
    TS_SQLITE_STMT(q, c,
                   std::string("SELECT vin, active, first_seen_at, last_seen_at, resolved_at FROM "
                               "fleet_telemetry_error_vins") +
                       (active_only ? " WHERE active = 1" : "") +
                       " ORDER BY last_seen_at DESC, vin");
    return collect<ErrorVin>(q, [](const Stmt& r) {
      return ErrorVin{.vin = r.text(0),
                      .active = r.i64(1) != 0,
                      .first_seen_at = r.i64(2),
                      .last_seen_at = r.i64(3),
                      .resolved_at = r.opt_i64(4)};
    });
  });
}

Result<std::optional<ApiToken>> SqliteDatabase::find_token(std::string_view sha256_hex) {
  const std::optional<std::string> hash = normalized_sha256(sha256_hex);
  if (!hash) return std::optional<ApiToken>();
  return on_reader([&](Connection& c) -> Result<std::optional<ApiToken>> {
    TS_SQLITE_STMT(q, c,
                   "SELECT id, name, token_sha256, created_at, last_used_at FROM api_tokens "
                   "WHERE token_sha256 = ?1");
    q.bind_text(1, *hash);
    auto row = q.step();
    if (!row) return detail::failed(row.error());
    if (*row == Stmt::Step::Done) return std::optional<ApiToken>();
    return std::optional<ApiToken>(read_token(q));
  });
}

Result<std::vector<ApiToken>> SqliteDatabase::list_tokens() {
  return on_reader([&](Connection& c) -> Result<std::vector<ApiToken>> {
    TS_SQLITE_STMT(q, c,
                   "SELECT id, name, token_sha256, created_at, last_used_at FROM api_tokens "
                   "ORDER BY id");
    return collect<ApiToken>(q, read_token);
  });
}

Result<std::optional<std::string>> SqliteDatabase::get_setting(std::string_view key) {
  return on_reader([&](Connection& c) -> Result<std::optional<std::string>> {
    TS_SQLITE_STMT(q, c, "SELECT value FROM settings WHERE key = ?1");
    q.bind_text(1, key);
    auto row = q.step();
    if (!row) return detail::failed(row.error());
    if (*row == Stmt::Step::Done) return std::optional<std::string>();
    return std::optional<std::string>(q.text(0));
  });
}

}  // namespace

Result<std::unique_ptr<Database>> open_sqlite(const SqliteOptions& options) {
  std::unique_ptr<core::MetricsRegistry> own;
  if (options.metrics == nullptr) own = std::make_unique<core::MetricsRegistry>();
  auto db = std::make_unique<SqliteDatabase>(options, std::move(own));
  if (auto r = db->init(); !r) return detail::failed(r.error());
  return std::unique_ptr<Database>(std::move(db));
}

}  // namespace ts::storage::sqlite

#pragma once
/// The database of teslasync-api: signal_log (the append-only history of every Signal) and the
/// small tables around it (dead letters, vehicles, stream alerts/connectivity/errors, Tesla's
/// partner diagnostics, API tokens, settings). See README.md and docs/storage.md.
///
/// Backends: SQLite (default, a file in the data dir) and PostgreSQL (DATABASE_URL), both behind
/// `Database`; `open_database` picks one from the URL, opens it and applies the schema
/// migrations before returning.
///
/// Owner: main() owns the one instance (unique_ptr) and destroys it after every thread that uses
/// it has stopped. Thread-safety: every method may be called from any thread at the same time.
/// Each instance keeps one writer connection (guarded by a mutex: writes are serialized) and a
/// small pool of reader connections, so HTTP requests read while the ingest writer thread writes
/// (SQLite in WAL mode; PostgreSQL MVCC). Every method blocks on disk or network I/O: never call
/// one on a shard's io_context thread (shared/STYLE.md "Concurrency").
///
/// Failure: expected failures are values (`errc` in errc.hpp): the database down or unreachable
/// (`unavailable`), timeouts, refused statements. A failed call changes nothing (its transaction
/// is rolled back) and leaves the object usable: the PostgreSQL backend reconnects on the next
/// call, bounded by connect_timeout, so no call hangs forever. The database's own message is
/// logged ("storage" logger, rate-limited) and counted (`teslasync_storage_failures_total`).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/metrics.hpp"
#include "core/result.hpp"
#include "signal/signal.hpp"
#include "storage/errc.hpp"

namespace ts::storage {

using signal::Timestamp;  // µs since the Unix epoch, UTC; stored as a 64-bit integer everywhere

/// Upper bound of every `limit` argument; larger values are clamped to it.
inline constexpr std::size_t kMaxLimit = 10'000;

// ---- signal_log -----------------------------------------------------------------------------

/// Position after the last row of a page of query_signals (rows are ordered by ts, then name).
struct SignalCursor {
  Timestamp ts = 0;
  std::string name;

  /// Opaque text for a URL ("<ts>.<name>"), and back; parse gives nullopt for anything else.
  std::string to_string() const;
  static std::optional<SignalCursor> parse(std::string_view text);

  friend bool operator==(const SignalCursor&, const SignalCursor&) = default;
};

/// One page of one vehicle's history: rows with from <= ts < to, ordered by (ts, name).
struct SignalQuery {
  std::string vin;                    ///< required
  std::optional<std::string> name;    ///< one field only (e.g. "VehicleSpeed"); empty: all fields
  std::optional<Timestamp> from;      ///< inclusive
  std::optional<Timestamp> to;        ///< exclusive
  std::size_t limit = 1'000;          ///< rows per page, clamped to [1, kMaxLimit]
  std::optional<SignalCursor> after;  ///< keyset paging: the `next` of the previous page
};

struct SignalPage {
  std::vector<signal::Signal> rows;
  /// Set when more rows may follow: pass it as `after` to get the next page.
  std::optional<SignalCursor> next;
};

/// What retention removed.
struct RetentionResult {
  std::uint64_t rows_deleted = 0;      ///< rows removed by DELETE (not those in dropped partitions)
  std::size_t partitions_dropped = 0;  ///< PostgreSQL: whole daily partitions dropped
};

// ---- the other tables -----------------------------------------------------------------------

/// Dead-letter payloads are stored up to this many bytes; the rest is cut (payload_size keeps
/// the original length).
inline constexpr std::size_t kMaxDeadLetterPayload = 64 * 1024;

/// A message the ingest could not use: undecodable, or from a VIN that is not registered.
/// Keyed by (topic, reason, payload_size, payload) through a SHA-256 of them: appending the
/// same letter again (a redelivery, a vehicle repeating itself) adds no row, it increments
/// `occurrences` and moves `last_received_at`.
struct DeadLetter {
  std::int64_t id = 0;  ///< assigned by the database (ignored on append)
  Timestamp received_at = 0;  ///< first received (on append: when this copy was received)
  std::string topic;
  std::string vin;      ///< may be empty (topic without a VIN)
  std::string reason;   ///< short machine-readable cause, e.g. "not_json", "unregistered_vin"
  /// The raw payload bytes (binary-safe), at most kMaxDeadLetterPayload of them when read back
  /// (append cuts a longer one).
  std::string payload;
  /// The payload's original length in bytes. On append: max(payload_size, payload.size()), so
  /// a caller that already cut the payload can pass the length it had.
  std::uint64_t payload_size = 0;
  std::uint64_t occurrences = 1;  ///< times appended (ignored on append: each append is one)
  Timestamp last_received_at = 0;  ///< latest receipt (ignored on append: received_at)

  friend bool operator==(const DeadLetter&, const DeadLetter&) = default;
};

enum class VehicleSource : std::uint8_t { Manual, FleetApi };
std::string_view vehicle_source_name(VehicleSource source) noexcept;  ///< "manual" | "fleet_api"
std::optional<VehicleSource> parse_vehicle_source(std::string_view name) noexcept;

/// A registered vehicle: the ingest stores signals only for these.
struct Vehicle {
  std::string vin;
  std::string name;
  VehicleSource source = VehicleSource::Manual;
  Timestamp created_at = 0;  ///< kept from the first registration by upsert_vehicle

  friend bool operator==(const Vehicle&, const Vehicle&) = default;
};

/// An alert from the stream (`alerts` records). Key: (vin, name, started_at).
struct Alert {
  std::string vin;
  std::string name;
  Timestamp started_at = 0;
  std::optional<Timestamp> ended_at;  ///< empty while the alert is active
  std::string audiences_json = "[]";  ///< JSON array text, e.g. ["Customer","Service"]
  Timestamp received_at = 0;

  friend bool operator==(const Alert&, const Alert&) = default;
};

/// A connectivity record (CONNECTED/DISCONNECTED). Key: (vin, connection_id, status, ts).
struct ConnectivityEvent {
  std::string vin;
  std::string connection_id;
  std::string status;             ///< "CONNECTED", "DISCONNECTED", "UNKNOWN", or digits
  std::string network_interface;  ///< e.g. "wifi"; may be empty
  Timestamp ts = 0;
  Timestamp received_at = 0;

  friend bool operator==(const ConnectivityEvent&, const ConnectivityEvent&) = default;
};

/// A vehicle error record from the stream (`errors`). Key: (vin, name, created_at, body, tags),
/// so a redelivered message is stored once.
struct VehicleError {
  std::string vin;
  std::string name;
  std::string body;
  std::string tags_json = "{}";  ///< JSON object text
  Timestamp created_at = 0;      ///< the receive time when the vehicle did not set it
  Timestamp received_at = 0;

  friend bool operator==(const VehicleError&, const VehicleError&) = default;
};

/// One entry of Tesla's partner endpoint fleet_telemetry_errors.
/// Key: (vin, error_name, created_at, error); a repeated refresh updates, never duplicates.
struct FleetError {
  std::int64_t id = 0;  ///< assigned by the database (ignored on upsert)
  std::string vin;
  std::string error_name;  ///< e.g. "config_manager_error"
  std::string error;       ///< e.g. "InvalidSignature: unknown issuer"
  Timestamp created_at = 0;
  std::string name;  ///< the client id Tesla reports
  std::string txid;
  std::string raw_json = "{}";  ///< the entry as Tesla sent it
  Timestamp fetched_at = 0;

  friend bool operator==(const FleetError&, const FleetError&) = default;
};

/// A VIN from Tesla's fleet_telemetry_error_vins, with when it was seen and resolved.
struct ErrorVin {
  std::string vin;
  bool active = true;
  Timestamp first_seen_at = 0;
  Timestamp last_seen_at = 0;
  std::optional<Timestamp> resolved_at;  ///< set when a refresh no longer returned it

  friend bool operator==(const ErrorVin&, const ErrorVin&) = default;
};

/// An API token. Only the SHA-256 of the token is stored (64 lowercase hex digits).
struct ApiToken {
  std::int64_t id = 0;
  std::string name;
  std::string sha256_hex;
  Timestamp created_at = 0;
  std::optional<Timestamp> last_used_at;

  friend bool operator==(const ApiToken&, const ApiToken&) = default;
};

// ---- ingest batches -------------------------------------------------------------------------

/// Everything one ingest batch writes. write_batch stores it in ONE transaction.
struct Batch {
  std::vector<signal::Signal> signals;
  std::vector<Alert> alerts;
  std::vector<ConnectivityEvent> connectivity;
  std::vector<VehicleError> vehicle_errors;
  std::vector<DeadLetter> dead_letters;

  bool empty() const noexcept;
  std::size_t size() const noexcept;  ///< rows of all kinds
  void clear() noexcept;
};

/// A Batch by reference (spans), so callers need not copy what they already hold.
struct BatchView {
  std::span<const signal::Signal> signals;
  std::span<const Alert> alerts;
  std::span<const ConnectivityEvent> connectivity;
  std::span<const VehicleError> vehicle_errors;
  std::span<const DeadLetter> dead_letters;

  BatchView() = default;
  BatchView(const Batch& b)  // NOLINT(google-explicit-constructor): a view of a Batch
      : signals(b.signals),
        alerts(b.alerts),
        connectivity(b.connectivity),
        vehicle_errors(b.vehicle_errors),
        dead_letters(b.dead_letters) {}
  bool empty() const noexcept;
};

/// Rows a write actually added; the rest were already stored (idempotent redelivery).
struct BatchResult {
  std::size_t signals = 0;
  std::size_t alerts = 0;  ///< inserted or updated (an alert that ended)
  std::size_t connectivity = 0;
  std::size_t vehicle_errors = 0;
  std::size_t dead_letters = 0;
};

// ---- the interface --------------------------------------------------------------------------

class Database {
 public:
  virtual ~Database() = default;

  /// "sqlite" or "postgresql".
  virtual std::string_view backend() const noexcept = 0;
  /// The highest applied migration (schema_migrations).
  virtual Result<int> schema_version() = 0;

  // ---- writes (serialized on the writer connection) ----

  /// Writes everything in ONE transaction; committed (durable, see docs/storage.md) when it
  /// returns a value. Idempotent for signals, alerts (an existing alert gets the ended_at it
  /// did not have), connectivity, vehicle errors and dead letters (a repeat counts an
  /// occurrence). Keys of any length are stored (names, connection ids, topics are hashed in
  /// the unique indexes, docs/storage.md).
  ///
  /// THE rule for signals: a signal is keyed by (vin, name, ts) and the FIRST STORED VALUE
  /// WINS. A later signal with the same event time is ignored, whether it is a redelivery or a
  /// different value (counted in teslasync_storage_duplicate_signals_total); L1 and Redis
  /// follow the same rule.
  ///
  /// On error nothing of the batch is stored. The error tells whether retrying can help
  /// (is_retryable): `rejected` means some row is refused by the database itself (a value it
  /// cannot hold, a constraint) and will be refused again; the caller splits the batch.
  virtual Result<BatchResult> write(const BatchView& batch) = 0;
  Result<BatchResult> write_batch(const Batch& batch) { return write(BatchView(batch)); }

  /// Each of these is write() with only that kind: one transaction, rows added returned.
  Result<std::size_t> append_signals(std::span<const signal::Signal> signals);
  Result<std::size_t> append_alerts(std::span<const Alert> alerts);
  Result<std::size_t> append_connectivity(std::span<const ConnectivityEvent> events);
  Result<std::size_t> append_vehicle_errors(std::span<const VehicleError> errors);
  Result<std::size_t> append_dead_letters(std::span<const DeadLetter> letters);
  Result<std::size_t> append_dead_letter(const DeadLetter& letter) {
    return append_dead_letters({&letter, 1});
  }

  /// Retention: removes signal_log rows with ts < cutoff. PostgreSQL drops whole daily
  /// partitions that end at or before the cutoff, then deletes the remainder. Runs in several
  /// short transactions so ingest is not stalled for long.
  virtual Result<RetentionResult> delete_signals_before(Timestamp cutoff) = 0;
  /// Retention of the event tables: connectivity and vehicle errors received before the cutoff,
  /// and alerts that ended before it. Returns rows removed. Dead letters are NOT touched: they
  /// have their own retention, delete_dead_letters.
  virtual Result<std::uint64_t> delete_events_before(Timestamp cutoff) = 0;
  /// Retention of dead letters: removes those last received before `received_before`, then,
  /// while more than `keep_max_rows` remain, the oldest (by last_received_at, then id) — 0
  /// keeps none; pass UINT64_MAX for no cap. Deletes in transactions of at most 5,000 rows,
  /// so ingest is never held behind one long one. Returns rows removed.
  virtual Result<std::uint64_t> delete_dead_letters(Timestamp received_before,
                                                    std::uint64_t keep_max_rows) = 0;

  /// Registers a vehicle, or updates its name (when non-empty) and source. created_at is kept
  /// from the first registration. Returns the stored row.
  virtual Result<Vehicle> upsert_vehicle(const Vehicle& vehicle) = 0;
  /// True if it existed. Its signals and events stay.
  virtual Result<bool> delete_vehicle(std::string_view vin) = 0;

  /// Upserts on (vin, error_name, created_at, error): a new row, or the existing one gets the new
  /// name, txid, raw_json and fetched_at. One transaction. Returns rows processed.
  virtual Result<std::size_t> upsert_fleet_errors(std::span<const FleetError> errors) = 0;
  /// In one transaction: every VIN in `vins` becomes active (first_seen_at = now when new,
  /// last_seen_at = now, resolved_at cleared); every active VIN not in `vins` becomes inactive
  /// with resolved_at = now. Duplicates in `vins` are fine.
  virtual Result<void> replace_error_vins(std::span<const std::string> vins, Timestamp now) = 0;

  /// Stores a new token (sha256_hex: 64 hex digits of SHA-256 of the token, never the token).
  /// rejected if the hash is already stored (a unique constraint).
  virtual Result<ApiToken> create_token(std::string_view name, std::string_view sha256_hex,
                                        Timestamp created_at) = 0;
  /// Sets last_used_at. False if no such token.
  virtual Result<bool> touch_token(std::int64_t id, Timestamp used_at) = 0;
  virtual Result<bool> delete_token(std::int64_t id) = 0;

  virtual Result<void> set_setting(std::string_view key, std::string_view value) = 0;

  // ---- reads (reader connections; never wait for the writer) ----

  /// A page of one vehicle's signal_log (see SignalQuery). invalid_argument for an empty VIN.
  virtual Result<SignalPage> query_signals(const SignalQuery& query) = 0;
  /// The newest row of every (vin, name), ordered by vin, name: to warm L1 at start-up. With
  /// `vin`, that vehicle only. With `max_future_skew`, a row whose event time is more than the
  /// skew ahead of its received_at (ts > received_at + skew: a vehicle clock far ahead) is
  /// never the newest: the newest row that satisfies the bound is returned instead, and a
  /// series without one is left out. Cost grows with the number of (vin, name) series, not rows
  /// (each series is read backwards through its (series_id, ts) key).
  virtual Result<std::vector<signal::Signal>> latest_signals(
      std::optional<std::string_view> vin = std::nullopt,
      std::optional<std::chrono::microseconds> max_future_skew = std::nullopt) = 0;

  /// Newest first (by id, i.e. first receipt). limit clamped to [1, kMaxLimit].
  virtual Result<std::vector<DeadLetter>> list_dead_letters(
      std::size_t offset, std::size_t limit,
      std::optional<std::string_view> vin = std::nullopt) = 0;
  virtual Result<std::uint64_t> count_dead_letters(
      std::optional<std::string_view> vin = std::nullopt) = 0;

  virtual Result<std::optional<Vehicle>> get_vehicle(std::string_view vin) = 0;
  /// Ordered by vin.
  virtual Result<std::vector<Vehicle>> list_vehicles() = 0;

  /// Newest first (started_at, then name).
  virtual Result<std::vector<Alert>> list_alerts(std::string_view vin, std::size_t limit,
                                                 std::size_t offset) = 0;
  /// Newest first (ts).
  virtual Result<std::vector<ConnectivityEvent>> list_connectivity(std::string_view vin,
                                                                   std::size_t limit,
                                                                   std::size_t offset) = 0;
  /// Newest first (created_at, then received_at).
  virtual Result<std::vector<VehicleError>> list_vehicle_errors(std::string_view vin,
                                                                std::size_t limit,
                                                                std::size_t offset) = 0;

  /// Newest first (created_at, then id); all VINs without `vin`.
  virtual Result<std::vector<FleetError>> list_fleet_errors(std::optional<std::string_view> vin,
                                                            std::size_t limit,
                                                            std::size_t offset) = 0;
  /// Ordered by last_seen_at descending, then vin.
  virtual Result<std::vector<ErrorVin>> list_error_vins(bool active_only) = 0;

  virtual Result<std::optional<ApiToken>> find_token(std::string_view sha256_hex) = 0;
  /// Ordered by id.
  virtual Result<std::vector<ApiToken>> list_tokens() = 0;

  virtual Result<std::optional<std::string>> get_setting(std::string_view key) = 0;
};

// ---- opening --------------------------------------------------------------------------------

struct OpenOptions {
  /// Where the teslasync_storage_* metrics go; null: counted privately (not exported).
  core::MetricsRegistry* metrics = nullptr;
  /// Reader connections (HTTP requests); at least 1.
  std::size_t readers = 2;
  /// PostgreSQL: per connection attempt (libpq connect_timeout, whole seconds, at least 2).
  std::chrono::milliseconds connect_timeout{5'000};
  /// PostgreSQL statement_timeout / SQLite busy timeout.
  std::chrono::milliseconds statement_timeout{30'000};
  /// Retention of signal_log (TESLASYNC_RETENTION_DAYS); 0 = keep forever. PostgreSQL creates
  /// daily partitions only for days in [now - retention, now + 7 days] (without retention:
  /// [now - 30 days, now + 7 days]); rows outside go to the default partition.
  std::chrono::hours retention{0};
  /// Tests only: stop migrating at this version (0 = apply all).
  int migrate_to_version_for_test = 0;
};

/// Opens the database named by `url` and migrates its schema to the current version:
/// - "" → SQLite file `data_dir/teslasync.db` (data_dir is created with mode 0700 if missing);
/// - "sqlite:PATH" or "sqlite://PATH" → SQLite file PATH (relative to the working directory),
///   options as a query: "?synchronous=normal" (default full, see docs/storage.md);
///   "sqlite::memory:" → a private in-memory database (tests; one connection);
/// - "postgresql://…" or "postgres://…" → PostgreSQL via libpq (any libpq URI parameters).
/// SQLite files (the database, its -wal and -shm) get mode 0600 whatever the umask.
/// Errors: bad_url, unavailable (with the reason logged; passwords never appear in logs),
/// migration_failed, schema_too_new.
Result<std::unique_ptr<Database>> open_database(const std::string& url,
                                                const std::filesystem::path& data_dir,
                                                const OpenOptions& options = {});

/// The URL with any password replaced by "***" (user:pass@ and password=…), for logs.
std::string redact_url(std::string_view url);

}  // namespace ts::storage

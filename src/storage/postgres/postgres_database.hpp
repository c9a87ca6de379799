#pragma once
/// The PostgreSQL backend of Database (see database.hpp for the contract; docs/storage.md for the
/// schema, partitions and timeouts), on libpq. One writer connection behind a mutex and a pool of
/// reader connections; each reconnects on the next call after the server was lost. signal_log is
/// keyed by (series_id, ts) and range-partitioned by day on ts (bigint µs), with a default
/// partition as a safety net; a batch's signals go in with one COPY (a redelivered batch falls
/// back to a staging table and INSERT … ON CONFLICT DO NOTHING).
/// Use open_database(); open_postgres is the backend's own entry point.
#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/metrics.hpp"
#include "core/result.hpp"
#include "storage/database.hpp"
#include "storage/detail.hpp"

namespace ts::storage::postgres {

/// How write() inserts signals (docs/storage.md compares them; Copy is faster here).
enum class SignalInsert {
  Copy,  ///< COPY into a temporary staging table, then INSERT … SELECT … ON CONFLICT DO NOTHING
  Unnest,  ///< one INSERT … SELECT FROM unnest($1::text[], …) ON CONFLICT DO NOTHING
};

struct PostgresOptions {
  std::string url;  ///< libpq URI (postgresql://…)
  std::size_t readers = 2;
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds statement_timeout{30'000};
  int migrate_to_version = 0;  ///< 0: all migrations
  /// signal_log retention (0 = forever): daily partitions are created only for days in
  /// [now - retention (30 days without one), now + 7 days]; other rows use the default partition.
  std::chrono::hours retention{0};
  core::MetricsRegistry* metrics = nullptr;
  SignalInsert signal_insert = SignalInsert::Copy;  ///< the benchmark measures both
};

Result<std::unique_ptr<Database>> open_postgres(const PostgresOptions& options);

/// The schema, in order (migrations.cpp).
std::span<const detail::Migration> migrations();

/// Tests only (invalid_argument for a non-PostgreSQL Database): the days that have a
/// signal_log partition (catalog), creating one now (moving its rows out of the default
/// partition), and the number of rows in the default partition.
Result<std::vector<std::int64_t>> partition_days_for_test(Database& db);
Result<void> create_partition_for_test(Database& db, std::int64_t day);
Result<std::uint64_t> default_partition_rows_for_test(Database& db);

}  // namespace ts::storage::postgres

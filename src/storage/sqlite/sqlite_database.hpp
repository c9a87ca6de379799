#pragma once
/// The SQLite backend of Database (see database.hpp for the contract; docs/storage.md for the
/// schema and durability). One writer connection behind a mutex and a pool of reader
/// connections, WAL mode, prepared statements cached per connection, INSERT OR IGNORE for
/// idempotency. Use open_database(); open_sqlite is the backend's own entry point.
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "core/metrics.hpp"
#include "core/result.hpp"
#include "storage/database.hpp"
#include "storage/detail.hpp"

namespace ts::storage::sqlite {

struct SqliteOptions {
  std::filesystem::path path;    ///< the database file (its directory must exist)
  bool in_memory = false;        ///< a private in-memory database (path ignored; one connection)
  bool synchronous_full = true;  ///< PRAGMA synchronous=FULL (else NORMAL), see docs/storage.md
  std::size_t readers = 2;
  std::chrono::milliseconds busy_timeout{30'000};
  int migrate_to_version = 0;  ///< 0: all migrations
  core::MetricsRegistry* metrics = nullptr;
};

/// The errc of a failed SQLite call by its (extended) result code: `rejected` for what the data
/// causes (SQLITE_TOOBIG, SQLITE_CONSTRAINT, SQLITE_MISMATCH, SQLITE_RANGE), `timeout` for
/// SQLITE_BUSY/LOCKED, `unavailable` for a file that cannot be opened or read (CANTOPEN, IOERR,
/// NOTADB, CORRUPT, PERM, READONLY), `query_failed` for the rest (FULL, NOMEM, ERROR, ...).
boost::system::error_code error_code_of_sqlite(int rc) noexcept;

Result<std::unique_ptr<Database>> open_sqlite(const SqliteOptions& options);

/// The schema, in order (migrations.cpp).
std::span<const detail::Migration> migrations();

}  // namespace ts::storage::sqlite

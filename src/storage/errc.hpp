#pragma once
/// Error codes of the storage module: why a database call failed. Registered as a Boost.System
/// error category ("ts.storage"), so callers can log the text and count by value. The detail
/// (the database's own message) is logged by the storage logger, never put in the code.
/// Immutable, any thread.
#include <boost/system/error_code.hpp>

#include <type_traits>

namespace ts::storage {

enum class errc {
  bad_url = 1,       ///< DATABASE_URL is not understood (scheme, missing path, bad option)
  unavailable,       ///< cannot open/connect, or the connection was lost (server down, no file)
  timeout,           ///< statement timeout, lock/busy timeout
  query_failed,      ///< the database refused a statement (constraint, disk full, bad data)
  migration_failed,  ///< a schema migration failed; the schema stays at the previous version
  schema_too_new,    ///< the schema was written by a newer release than this one
  invalid_argument,  ///< the call's arguments are out of range (e.g. an empty VIN)
  /// The database refused the data itself (a value or key it cannot hold, a constraint): the
  /// same rows fail again however often they are retried. The caller isolates the row.
  rejected,
};

/// True for failures that may pass on a later attempt with the same data: the database down or
/// unreachable, timeouts, serialization failures, disk full (`unavailable`, `timeout`,
/// `query_failed`). False for `rejected` and for errors of the call itself (`invalid_argument`,
/// `bad_url`, migrations), and for any error code of another category.
bool is_retryable(const boost::system::error_code& ec) noexcept;

/// The category named "ts.storage".
const boost::system::error_category& storage_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), storage_category()};
}

}  // namespace ts::storage

template <>
struct boost::system::is_error_code_enum<ts::storage::errc> : std::true_type {};

template <>
struct std::is_error_code_enum<ts::storage::errc> : std::true_type {};

#pragma once
/// One libpq connection of the PostgreSQL backend, with the reconnect rule of database.hpp: a
/// connection found broken is replaced at the start of the next call, and a call whose FIRST
/// command failed because an idle connection had died meanwhile (server restarted) is retried
/// once on a fresh connection (nothing of it can have been applied). Internal to storage.
///
/// Not thread-safe: its owner (the writer mutex or the reader pool) gives it to one thread at a
/// time. Blocking: every call waits for the server, bounded by connect_timeout (connecting),
/// statement_timeout (server side) and TCP keepalives / tcp_user_timeout (a dead peer).
#include <libpq-fe.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"
#include "storage/detail.hpp"

namespace ts::storage::postgres {

struct PgResultFree {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultFree>;

/// Statement parameters: text format (bytea: binary). Values are copied; text with NUL bytes or
/// invalid UTF-8 is stored with U+FFFD in their place (PostgreSQL refuses it otherwise).
class Params {
 public:
  Params& text(std::string_view v);
  Params& null();
  Params& i64(std::int64_t v);
  Params& f64(double v);
  Params& bytes(std::string_view v);  ///< bytea, binary format
  Params& opt(const std::optional<std::int64_t>& v) { return v ? i64(*v) : null(); }

  int size() const { return static_cast<int>(values_.size()); }
  const char* const* values() const { return values_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  std::deque<std::string> storage_;  // deque: stable addresses for values_
  std::vector<const char*> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
};

/// Read access to one row of a text-format result.
class Row {
 public:
  Row(const PGresult* r, int row) : r_(r), row_(row) {}
  bool null(int col) const { return PQgetisnull(r_, row_, col) != 0; }
  std::string_view view(int col) const {
    return {PQgetvalue(r_, row_, col), static_cast<std::size_t>(PQgetlength(r_, row_, col))};
  }
  std::string text(int col) const { return std::string(view(col)); }
  std::int64_t i64(int col) const;
  double f64(int col) const;
  bool boolean(int col) const { return view(col) == "t"; }
  std::string bytea(int col) const;  ///< decodes the hex output format
  std::optional<std::int64_t> opt_i64(int col) const {
    return null(col) ? std::nullopt : std::optional<std::int64_t>(i64(col));
  }
  std::optional<double> opt_f64(int col) const {
    return null(col) ? std::nullopt : std::optional<double>(f64(col));
  }

 private:
  const PGresult* r_;
  int row_;
};

/// Appends a double as PostgreSQL reads it back exactly (shortest round-trip; Infinity, NaN).
void append_double(std::string& out, double v);

/// The errc of a failed statement by its SQLSTATE (a live connection): `rejected` for what the
/// data causes (classes 22, 23, 54; 42804, 42846), `unavailable` for a lost or shutting-down
/// server (08, 57P01-57P03, 53300), `timeout` for statement/lock timeouts, deadlocks and
/// serialization failures (57014, 55P03, 40P01, 40001), `query_failed` for the rest (disk
/// full, a missing table, a trigger's RAISE, ...). docs/storage.md has the table.
boost::system::error_code error_code_of_sqlstate(std::string_view sqlstate) noexcept;

class PgConnection {
 public:
  /// `keywords`: libpq connection keywords in order (later ones override earlier ones; the URL
  /// is the value of "dbname" with expand_dbname).
  PgConnection(const std::vector<std::pair<std::string, std::string>>& keywords,
               std::string redacted_url, detail::StorageMetrics& metrics,
               detail::RateLimitedLog& rate_limited);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  /// Starts a call (see the retry rule above).
  void begin_call() noexcept;
  /// Connects if there is no healthy connection. unavailable if that fails.
  Result<void> ensure();
  /// True if the call just failed in a way that a retry on a new connection may fix.
  bool retry_possible() const noexcept { return retry_possible_; }
  /// Increases with every new session (session state such as temp tables is gone).
  std::uint64_t session() const noexcept { return session_; }

  /// Simple-protocol statement(s) without parameters.
  Result<PgResult> exec(std::string_view sql);
  /// One statement with parameters.
  Result<PgResult> exec(const std::string& sql, const Params& params);
  /// COPY … FROM STDIN with `data` in COPY text format. A failure with SQLSTATE `expected` is
  /// returned without a log line (the caller handles it).
  Result<void> copy_in(const std::string& copy_sql, std::string_view data,
                       std::string_view expected = {});
  /// The SQLSTATE of the latest failed command ("" if it had none).
  const std::string& last_sqlstate() const noexcept { return last_sqlstate_; }

  /// Runs f() between BEGIN and COMMIT; ROLLBACK when f fails.
  template <class F>
  auto transaction(F&& f) -> decltype(f()) {
    if (auto r = exec("BEGIN"); !r) return detail::failed(r.error());
    auto result = f();
    if (result) {
      if (auto c = exec("COMMIT"); !c) return detail::failed(c.error());
      return result;
    }
    rollback();
    return result;
  }
  void rollback() noexcept;

 private:
  /// Logs the failure (rate-limited) and maps it to an errc; decides retry_possible_.
  boost::system::error_code fail(const PGresult* result, std::string_view what,
                                 std::string_view expected = {});
  bool before_command();

  std::vector<std::string> keys_, values_;
  std::string redacted_url_;
  detail::StorageMetrics& metrics_;
  detail::RateLimitedLog& rate_limited_;
  PGconn* conn_ = nullptr;
  std::uint64_t session_ = 0;
  int commands_in_call_ = 0;
  bool connected_in_call_ = false;
  bool retry_possible_ = false;
  std::string last_sqlstate_;
};

}  // namespace ts::storage::postgres

#include "storage/postgres/pg_connection.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <iterator>
#include <limits>

#include <fmt/format.h>

namespace ts::storage::postgres {

using detail::log;

Params& Params::text(std::string_view v) {
  // PostgreSQL text holds neither NUL nor invalid UTF-8 (docs/storage.md).
  const std::string& s = detail::is_clean_text(v) ? storage_.emplace_back(v)
                                                  : storage_.emplace_back(detail::repair_text(v));
  values_.push_back(s.c_str());
  lengths_.push_back(static_cast<int>(s.size()));
  formats_.push_back(0);
  return *this;
}

Params& Params::null() {
  values_.push_back(nullptr);
  lengths_.push_back(0);
  formats_.push_back(0);
  return *this;
}

Params& Params::i64(std::int64_t v) { return text(std::to_string(v)); }

Params& Params::f64(double v) {
  std::string s;
  append_double(s, v);
  return text(s);
}

Params& Params::bytes(std::string_view v) {
  const std::string& s = storage_.emplace_back(v);
  values_.push_back(s.data());
  lengths_.push_back(static_cast<int>(s.size()));
  formats_.push_back(1);
  return *this;
}

std::int64_t Row::i64(int col) const {
  const std::string_view v = view(col);
  std::int64_t out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

double Row::f64(int col) const {
  const std::string_view v = view(col);
  if (v == "Infinity") return std::numeric_limits<double>::infinity();
  if (v == "-Infinity") return -std::numeric_limits<double>::infinity();
  if (v == "NaN") return std::numeric_limits<double>::quiet_NaN();
  double out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

std::string Row::bytea(int col) const {
  const std::string_view v = view(col);
  std::string out;
  if (v.size() < 2 || v[0] != '\\' || v[1] != 'x') return out;  // bytea_output is hex (default)
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 0;
  };
  out.reserve((v.size() - 2) / 2);
  for (std::size_t i = 2; i + 1 < v.size(); i += 2) {
    out.push_back(static_cast<char>((nibble(v[i]) << 4) | nibble(v[i + 1])));
  }
  return out;
}

void append_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "Infinity" : "-Infinity";
  } else {
    fmt::format_to(std::back_inserter(out), "{}", v);
  }
}

PgConnection::PgConnection(const std::vector<std::pair<std::string, std::string>>& keywords,
                           std::string redacted_url, detail::StorageMetrics& metrics,
                           detail::RateLimitedLog& rate_limited)
    : redacted_url_(std::move(redacted_url)), metrics_(metrics), rate_limited_(rate_limited) {
  for (const auto& [k, v] : keywords) {
    keys_.push_back(k);
    values_.push_back(v);
  }
}

PgConnection::~PgConnection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

void PgConnection::begin_call() noexcept {
  commands_in_call_ = 0;
  connected_in_call_ = false;
  retry_possible_ = false;
}

Result<void> PgConnection::ensure() {
  if (conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK) return {};
  if (conn_ != nullptr) {
    PQfinish(conn_);
    conn_ = nullptr;
  }
  std::vector<const char*> keys;
  std::vector<const char*> values;
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    keys.push_back(keys_[i].c_str());
    values.push_back(values_[i].c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  conn_ = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) {
    std::string message = conn_ != nullptr ? PQerrorMessage(conn_) : "out of memory";
    while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
      message.pop_back();
    rate_limited_.warn(log(), "cannot connect to PostgreSQL {}: {}", redacted_url_, message);
    if (conn_ != nullptr) {
      PQfinish(conn_);
      conn_ = nullptr;
    }
    return make_error_code(errc::unavailable);
  }
  // Server notices (e.g. "relation already exists, skipping") go to the debug log, not stderr.
  PQsetNoticeProcessor(
      conn_,
      [](void*, const char* message) {
        std::string_view text(message);
        while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
        log().debug("PostgreSQL notice: {}", text);
      },
      nullptr);
  ++session_;
  connected_in_call_ = true;
  metrics_.reconnects.inc();
  return {};
}

bool PgConnection::before_command() {
  ++commands_in_call_;
  return conn_ != nullptr;
}

Result<PgResult> PgConnection::exec(std::string_view sql) {
  if (!before_command()) return make_error_code(errc::unavailable);
  PgResult r(PQexec(conn_, std::string(sql).c_str()));
  const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return fail(r.get(), sql);
  return r;
}

Result<PgResult> PgConnection::exec(const std::string& sql, const Params& params) {
  if (!before_command()) return make_error_code(errc::unavailable);
  PgResult r(PQexecParams(conn_, sql.c_str(), params.size(), nullptr, params.values(),
                          params.lengths(), params.formats(), /*resultFormat=*/0));
  const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return fail(r.get(), sql);
  return r;
}

Result<void> PgConnection::copy_in(const std::string& copy_sql, std::string_view data,
                                   std::string_view expected) {
  if (!before_command()) return make_error_code(errc::unavailable);
  {
    PgResult r(PQexec(conn_, copy_sql.c_str()));
    if (!r || PQresultStatus(r.get()) != PGRES_COPY_IN) return fail(r.get(), copy_sql);
  }
  constexpr std::size_t kChunk = 256 * 1024;
  bool sent = true;
  for (std::size_t off = 0; off < data.size() && sent; off += kChunk) {
    const std::size_t n = std::min(kChunk, data.size() - off);
    sent = PQputCopyData(conn_, data.data() + off, static_cast<int>(n)) == 1;
  }
  if (PQputCopyEnd(conn_, sent ? nullptr : "client could not send the data") != 1) sent = false;
  // Read every result of the COPY (one), so the connection is ready for the next command.
  boost::system::error_code error;
  while (PgResult r{PQgetResult(conn_)}) {
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK && !error) {
      error = fail(r.get(), copy_sql, expected);
    }
  }
  if (!error && !sent) error = fail(nullptr, copy_sql);
  if (error) return error;
  return {};
}

void PgConnection::rollback() noexcept {
  if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) return;
  PgResult r(PQexec(conn_, "ROLLBACK"));
}

boost::system::error_code error_code_of_sqlstate(std::string_view sqlstate) noexcept {
  const std::string_view cls = sqlstate.substr(0, 2);
  // The server or the connection is gone: connection exceptions, shutdown, too many clients.
  if (cls == "08" || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03" ||
      sqlstate == "53300") {
    return make_error_code(errc::unavailable);
  }
  // Statement/lock timeout, deadlock victim, serialization failure: another attempt may pass.
  if (sqlstate == "57014" || sqlstate == "55P03" || sqlstate == "40P01" || sqlstate == "40001") {
    return make_error_code(errc::timeout);
  }
  // The data itself: a value the type cannot hold (22), a constraint (23), a limit such as
  // 54000 "index row size exceeds btree maximum" (54), and the few syntax-class errors that only
  // a value can cause (42804 datatype_mismatch, 42846 cannot_coerce). The same rows fail again.
  if (cls == "22" || cls == "23" || cls == "54" || sqlstate == "42804" || sqlstate == "42846") {
    return make_error_code(errc::rejected);
  }
  // Everything else (53 disk full / out of memory, other 42 such as a missing table or
  // privilege, internal errors, a trigger's RAISE) is the database's state, not the data's.
  return make_error_code(errc::query_failed);
}

boost::system::error_code PgConnection::fail(const PGresult* result, std::string_view what,
                                             std::string_view expected) {
  const bool broken = conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK;
  std::string message = result != nullptr ? PQresultErrorMessage(result) : "";
  if (message.empty() && conn_ != nullptr) message = PQerrorMessage(conn_);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string_view sqlstate = state != nullptr ? state : "";
  last_sqlstate_ = sqlstate;
  // A command that failed because the idle connection had died: the first of its call, on a
  // connection made before this call. Nothing of the call can have been applied.
  retry_possible_ = broken && commands_in_call_ == 1 && !connected_in_call_;
  if (!retry_possible_ && (expected.empty() || sqlstate != expected)) {
    rate_limited_.warn(log(), "PostgreSQL: {}{}{} (statement: {:.100})", message,
                       sqlstate.empty() ? "" : " SQLSTATE ", sqlstate, what);
  }
  if (broken) return make_error_code(errc::unavailable);
  return error_code_of_sqlstate(sqlstate);
}

}  // namespace ts::storage::postgres

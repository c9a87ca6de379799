#include "storage/detail.hpp"

#include <chrono>
#include <cstdlib>
#include <memory>
#include <cmath>
#include <limits>
#include <map>
#include <tuple>

#include <openssl/evp.h>

#include "core/log.hpp"

namespace ts::storage::detail {

StorageMetrics::StorageMetrics(core::MetricsRegistry& r, std::string_view backend)
    : rows_written(r.counter("teslasync_storage_rows_written_total",
                             "Rows added to the database, by table (duplicates not counted).",
                             {"table"})),
      duplicate_signals(r.counter("teslasync_storage_duplicate_signals_total",
                                  "Signals not stored because (vin, name, ts) was already "
                                  "stored: redelivery.")
                            .get()),
      transactions(r.counter("teslasync_storage_transactions_total",
                             "Database operations (transactions and queries), by kind.", {"op"})),
      failures(r.counter("teslasync_storage_failures_total",
                         "Database operations that failed, by kind.", {"op"})),
      duration_us(r.counter("teslasync_storage_duration_microseconds_total",
                            "Time spent in database operations, by kind (divide by "
                            "teslasync_storage_transactions_total for the mean).",
                            {"op"})),
      last_duration_s(r.gauge("teslasync_storage_last_duration_seconds",
                              "Duration of the latest database operation, by kind.", {"op"})),
      reconnects(r.counter("teslasync_storage_connects_total",
                           "Database connections opened (PostgreSQL: including reconnects).")
                     .get()),
      partitions_created(r.counter("teslasync_storage_partitions_created_total",
                                   "signal_log partitions created (PostgreSQL).")
                             .get()),
      partitions_dropped(r.counter("teslasync_storage_partitions_dropped_total",
                                   "signal_log partitions dropped by retention (PostgreSQL).")
                             .get()),
      rows_deleted(r.counter("teslasync_storage_rows_deleted_total",
                             "Rows deleted by retention (not counting dropped partitions).")
                       .get()),
      texts_repaired(r.counter("teslasync_storage_texts_repaired_total",
                               "Text values with NUL bytes or invalid UTF-8, stored with U+FFFD "
                               "in their place (PostgreSQL cannot store them).")
                         .get()) {
  r.gauge("teslasync_storage_backend_info", "The database backend in use (value 1).", {"backend"})
      .with({std::string(backend)})
      .set(1);
}

OpTimer::OpTimer(StorageMetrics& metrics, std::string_view op)
    : metrics_(metrics), op_(op), start_(std::chrono::steady_clock::now()) {}

OpTimer::~OpTimer() {
  const auto elapsed = std::chrono::steady_clock::now() - start_;
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
  metrics_.transactions.with({op_}).inc();
  metrics_.duration_us.with({op_}).inc(static_cast<std::uint64_t>(us));
  metrics_.last_duration_s.with({op_}).set(static_cast<double>(us) / 1e6);
  if (!ok_) metrics_.failures.with({op_}).inc();
}

bool RateLimitedLog::admit(std::uint64_t& suppressed) {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (last_ != std::chrono::steady_clock::time_point{} && now - last_ < interval_) {
    ++suppressed_;
    return false;
  }
  last_ = now;
  suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

void RateLimitedLog::write(spdlog::logger& log, spdlog::level::level_enum level,
                           const std::string& text) {
  std::uint64_t suppressed = 0;
  if (!admit(suppressed)) return;
  if (suppressed > 0) {
    log.log(level, "{} ({} similar messages suppressed)", text, suppressed);
  } else {
    log.log(level, "{}", text);
  }
}

namespace {

/// Length of the valid UTF-8 sequence at the start of `s` (1-4), or 0 if it is not one.
std::size_t utf8_sequence(std::string_view s) noexcept {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  if (c >= 0x01 && c <= 0x7f) return 1;
  std::size_t n = 0;
  unsigned lo = 0x80;
  unsigned hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;  // overlong
    if (c == 0xed) hi = 0x9f;  // surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;  // overlong
    if (c == 0xf4) hi = 0x8f;  // beyond U+10FFFF
  } else {
    return 0;  // NUL, a continuation byte, 0xc0/0xc1, 0xf5..
  }
  if (s.size() < n) return 0;
  if (b(1) < lo || b(1) > hi) return 0;
  for (std::size_t i = 2; i < n; ++i) {
    if (b(i) < 0x80 || b(i) > 0xbf) return 0;
  }
  return n;
}

}  // namespace

bool is_clean_text(std::string_view text) noexcept {
  for (std::size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) - 1u < 0x7fu) {  // 0x01..0x7f, the common case
      ++i;
      continue;
    }
    const std::size_t n = utf8_sequence(text.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string repair_text(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = utf8_sequence(text.substr(i));
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::size_t clamp_limit(std::size_t limit) noexcept {
  if (limit == 0) return 1;
  return limit > kMaxLimit ? kMaxLimit : limit;
}

ValueColumns columns_of(const signal::Value& v) {
  using signal::Kind;
  ValueColumns c;
  switch (v.kind) {
    case Kind::Invalid:
      break;
    case Kind::Bool:
    case Kind::Int:
      c.integer = v.integer;
      break;
    case Kind::Float:
      c.number = v.number;
      break;
    case Kind::Location:
      c.number = v.number;
      c.number2 = v.number2;
      break;
    case Kind::String:
    case Kind::Enum:
    case Kind::Doors:
    case Kind::Tires:
    case Kind::Time:
      c.text = v.text;
      break;
  }
  return c;
}

signal::Value value_of(int kind, const ValueColumns& c) {
  using signal::Kind;
  using signal::Value;
  const std::optional<Kind> k = signal::kind_from_int(kind);
  if (!k) return Value::invalid();
  const std::string text = c.text ? std::string(*c.text) : std::string();
  // SQLite stores NaN as NULL: a Float without a number is read back as NaN.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  switch (*k) {
    case Kind::Invalid:
      return Value::invalid();
    case Kind::Bool:
      return Value::boolean(c.integer.value_or(0) != 0);
    case Kind::Int:
      return Value::int64(c.integer.value_or(0));
    case Kind::Float:
      return Value::float64(c.number.value_or(nan));
    case Kind::Location:
      return Value::location(c.number.value_or(nan), c.number2.value_or(nan));
    case Kind::String:
      return Value::string(text);
    case Kind::Enum:
      return Value::enumeration(text);
    case Kind::Doors:
      return Value::doors(text);
    case Kind::Tires:
      return Value::tires(text);
    case Kind::Time:
      return Value::time_of_day(text);
  }
  return Value::invalid();
}

std::string dead_letter_key(std::string_view topic, std::string_view reason,
                            std::uint64_t payload_size, std::string_view payload) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  auto number = [&](std::uint64_t v) {
    unsigned char be[8];
    for (int i = 0; i < 8; ++i) be[i] = static_cast<unsigned char>(v >> (8 * (7 - i)));
    EVP_DigestUpdate(ctx.get(), be, sizeof be);
  };
  auto bytes = [&](std::string_view v) { EVP_DigestUpdate(ctx.get(), v.data(), v.size()); };
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  // SHA-256 in the default provider fails only without memory: a broken invariant.
  if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) std::abort();
  number(topic.size());
  bytes(topic);
  number(reason.size());
  bytes(reason);
  number(payload_size);
  bytes(payload);
  if (EVP_DigestFinal_ex(ctx.get(), digest, &length) != 1) std::abort();
  return std::string(reinterpret_cast<const char*>(digest), length);
}

std::int64_t error_fingerprint(std::string_view body, std::string_view tags_json) noexcept {
  std::uint64_t h = 14695981039346656037ULL;
  auto mix = [&h](std::string_view s) {
    for (unsigned char ch : s) {
      h ^= ch;
      h *= 1099511628211ULL;
    }
  };
  mix(body);
  mix(std::string_view("\0", 1));
  mix(tags_json);
  return static_cast<std::int64_t>(h);
}

std::vector<Alert> merge_alerts(std::span<const Alert> alerts) {
  std::vector<Alert> out;
  out.reserve(alerts.size());
  std::map<std::tuple<std::string_view, std::string_view, Timestamp>, std::size_t> index;
  for (const Alert& a : alerts) {
    auto [it, fresh] = index.try_emplace({a.vin, a.name, a.started_at}, out.size());
    if (fresh) {
      out.push_back(a);
    } else if (!out[it->second].ended_at && a.ended_at) {
      out[it->second].ended_at = a.ended_at;
    }
  }
  return out;
}

std::int64_t day_of(Timestamp ts) noexcept {
  std::int64_t day = ts / kMicrosPerDay;
  if (ts % kMicrosPerDay < 0) --day;
  return day;
}

std::string day_label(std::int64_t day) {
  const std::chrono::sys_days d{std::chrono::days{day}};
  const std::chrono::year_month_day ymd{d};
  return fmt::format("{:04}{:02}{:02}", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
}

std::optional<std::int64_t> parse_day_label(std::string_view label) {
  if (label.size() != 8) return std::nullopt;
  int value[3] = {0, 0, 0};
  const std::size_t widths[3] = {4, 2, 2};
  std::size_t pos = 0;
  for (int i = 0; i < 3; ++i) {
    for (std::size_t k = 0; k < widths[i]; ++k, ++pos) {
      const char c = label[pos];
      if (c < '0' || c > '9') return std::nullopt;
      value[i] = value[i] * 10 + (c - '0');
    }
  }
  const std::chrono::year_month_day ymd{std::chrono::year{value[0]},
                                        std::chrono::month{static_cast<unsigned>(value[1])},
                                        std::chrono::day{static_cast<unsigned>(value[2])}};
  if (!ymd.ok()) return std::nullopt;
  return std::chrono::sys_days{ymd}.time_since_epoch().count();
}

spdlog::logger& log() {
  static const std::shared_ptr<spdlog::logger> logger = ts::log::get("storage");
  return *logger;
}

}  // namespace ts::storage::detail

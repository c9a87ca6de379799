#pragma once
/// Internals shared by the storage backends (sqlite/, postgres/): not for use outside
/// src/storage. Metrics, rate-limited logging, the mapping of a Value to columns, day math for
/// partitions, migrations.
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/metrics.hpp"
#include "signal/signal.hpp"
#include "storage/database.hpp"

namespace ts::storage::detail {

/// An error to return from a function returning any Result<T>, including Result<bool> (which
/// does not convert from error_code implicitly: bool is constructible from error_code).
struct Failure {
  boost::system::error_code ec;
  template <class T>
  operator Result<T>() const {  // NOLINT(google-explicit-constructor): the point of the type
    return Result<T>(boost::system::in_place_error, ec);
  }
};
inline Failure failed(boost::system::error_code ec) noexcept { return {ec}; }

/// One schema step. Versions start at 1 and increase by 1; applied in order, each in its own
/// transaction together with its schema_migrations row. Never edit a released migration: add one.
struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;  ///< one or more statements separated by ';'
};

/// Counters of one Database (shared by its connections; relaxed atomics).
struct StorageMetrics {
  StorageMetrics(core::MetricsRegistry& registry, std::string_view backend);

  core::Family<core::Counter>& rows_written;   ///< {table}
  core::Counter& duplicate_signals;            ///< signals already stored, ignored
  core::Family<core::Counter>& transactions;   ///< {op}
  core::Family<core::Counter>& failures;       ///< {op}
  core::Family<core::Counter>& duration_us;    ///< {op}: sum of transaction time
  core::Family<core::Gauge>& last_duration_s;  ///< {op}
  core::Counter& reconnects;                   ///< PostgreSQL connections (re)established
  core::Counter& partitions_created;
  core::Counter& partitions_dropped;
  core::Counter& rows_deleted;    ///< by retention
  core::Counter& texts_repaired;  ///< PostgreSQL: NUL / invalid UTF-8 replaced
};

/// The operations metrics are labelled with.
inline constexpr std::string_view kOpWriteBatch = "write_batch";  // write()/append_*
inline constexpr std::string_view kOpWrite = "write";             // other writes
inline constexpr std::string_view kOpRead = "read";
inline constexpr std::string_view kOpRetention = "retention";
inline constexpr std::string_view kOpMigrate = "migrate";

/// Times one operation; records duration and, unless ok() was called, a failure.
class OpTimer {
 public:
  OpTimer(StorageMetrics& metrics, std::string_view op);
  ~OpTimer();
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;
  void ok() noexcept { ok_ = true; }

 private:
  StorageMetrics& metrics_;
  std::string op_;
  std::chrono::steady_clock::time_point start_;
  bool ok_ = false;
};

/// Logs at most one line per `interval` (plus how many were suppressed). Thread-safe.
class RateLimitedLog {
 public:
  explicit RateLimitedLog(std::chrono::seconds interval = std::chrono::seconds(10))
      : interval_(interval) {}
  template <class... Args>
  void warn(spdlog::logger& log, fmt::format_string<Args...> format, Args&&... args) {
    write(log, spdlog::level::warn, fmt::format(format, std::forward<Args>(args)...));
  }
  template <class... Args>
  void info(spdlog::logger& log, fmt::format_string<Args...> format, Args&&... args) {
    write(log, spdlog::level::info, fmt::format(format, std::forward<Args>(args)...));
  }

 private:
  bool admit(std::uint64_t& suppressed);
  void write(spdlog::logger& log, spdlog::level::level_enum level, const std::string& text);

  std::chrono::seconds interval_;
  std::mutex mutex_;  // guards the two members below
  std::chrono::steady_clock::time_point last_{};
  std::uint64_t suppressed_ = 0;
};

/// True if `text` is valid UTF-8 without NUL bytes (what PostgreSQL's text accepts).
bool is_clean_text(std::string_view text) noexcept;
/// `text` with every NUL byte and invalid UTF-8 sequence replaced by U+FFFD.
std::string repair_text(std::string_view text);

/// limit clamped to [1, kMaxLimit].
std::size_t clamp_limit(std::size_t limit) noexcept;

/// A Value as signal_log columns; which are set depends on the kind (README.md).
struct ValueColumns {
  std::optional<std::int64_t> integer;   ///< value_int: Bool, Int
  std::optional<double> number;          ///< value_num: Float, Location latitude
  std::optional<double> number2;         ///< value_num2: Location longitude
  std::optional<std::string_view> text;  ///< value_text: String, Enum, Doors, Tires, Time
};
ValueColumns columns_of(const signal::Value& value);
/// The inverse of columns_of. An unknown kind gives an Invalid value.
signal::Value value_of(int kind, const ValueColumns& columns);

/// The stable key of a vehicle error's content (FNV-1a 64 of body and tags).
std::int64_t error_fingerprint(std::string_view body, std::string_view tags_json) noexcept;

/// The key of a dead letter: SHA-256 (32 bytes) of the length-prefixed topic and reason (each
/// length as 8 bytes big-endian), the payload size (8 bytes big-endian) and the payload. The
/// PostgreSQL migration 5 computes the same in SQL for rows stored before it.
std::string dead_letter_key(std::string_view topic, std::string_view reason,
                            std::uint64_t payload_size, std::string_view payload);

/// Alerts merged by key (vin, name, started_at), first occurrence order; a later copy supplies
/// an ended_at the earlier lacked. Upserts need each key once per statement.
std::vector<Alert> merge_alerts(std::span<const Alert> alerts);

/// (vin, name) -> signal_series.id, looked up per signal without allocating. The writer's cache
/// of committed series; used by one thread at a time (the writer mutex).
class SeriesIds {
 public:
  struct Entry {
    std::string vin;
    std::string name;
    std::int64_t id;
  };

  std::optional<std::int64_t> find(std::string_view vin, std::string_view name) {
    if (last_ == nullptr || last_vin_ != vin) {  // consecutive signals mostly share the VIN
      auto it = by_vin_.find(vin);
      if (it == by_vin_.end()) return std::nullopt;
      last_vin_ = it->first;
      last_ = &it->second;
    }
    auto it = last_->find(name);
    if (it == last_->end()) return std::nullopt;
    return it->second;
  }
  void add(Entry e) {
    by_vin_[std::move(e.vin)].emplace(std::move(e.name), e.id);
    last_ = nullptr;
  }
  void clear() {
    by_vin_.clear();
    last_ = nullptr;
  }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using Names = std::unordered_map<std::string, std::int64_t, Hash, std::equal_to<>>;
  std::unordered_map<std::string, Names, Hash, std::equal_to<>> by_vin_;
  std::string_view last_vin_;  // a key of by_vin_ (stable: node-based)
  Names* last_ = nullptr;
};

/// Microseconds per UTC day.
inline constexpr std::int64_t kMicrosPerDay = 86'400LL * 1'000'000;
/// The UTC day (days since 1970-01-01) of a timestamp (floor).
std::int64_t day_of(Timestamp ts) noexcept;
/// "20261124" for that day.
std::string day_label(std::int64_t day);

/// "20261124" back to its day; nullopt if it is not 8 digits of a valid date.
std::optional<std::int64_t> parse_day_label(std::string_view label);

/// The "storage" logger.
spdlog::logger& log();

/// A fixed set of connections handed to one thread at a time. acquire() waits until one is
/// free (callers hold a lease only for one call, each bounded by timeouts). Thread-safe.
template <class C>
class Pool {
 public:
  class Lease {
   public:
    Lease(Pool& pool, C* c) : pool_(pool), c_(c) {}
    ~Lease() { pool_.release(c_); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    C& operator*() const { return *c_; }
    C* operator->() const { return c_; }

   private:
    Pool& pool_;
    C* c_;
  };

  void add(std::unique_ptr<C> c) {
    std::lock_guard lock(mutex_);
    free_.push_back(c.get());
    all_.push_back(std::move(c));
  }
  bool empty() const {
    std::lock_guard lock(mutex_);
    return all_.empty();
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return all_.size();
  }
  Lease acquire() {
    std::unique_lock lock(mutex_);
    returned_.wait(lock, [&] { return !free_.empty(); });
    C* c = free_.back();
    free_.pop_back();
    return Lease(*this, c);
  }

 private:
  void release(C* c) {
    {
      std::lock_guard lock(mutex_);
      free_.push_back(c);
    }
    returned_.notify_one();
  }

  mutable std::mutex mutex_;  // guards all_ and free_
  std::condition_variable returned_;
  std::vector<std::unique_ptr<C>> all_;
  std::vector<C*> free_;
};

}  // namespace ts::storage::detail

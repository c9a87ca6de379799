#pragma once
/// Metrics registry with Prometheus text exposition (format 0.0.4).
///
/// Families are created once (at start-up or on first use of a label set); the returned
/// Counter/Gauge references stay valid for the registry's lifetime, so hot paths look a child up
/// once and then only do a relaxed atomic add. Thread-safe: creation takes a mutex, updates are
/// lock-free, rendering takes the mutex and reads the atomics.
///
/// Label values may come from the network (a record type, a VIN), so every family has a cap on
/// its children: past it, a new label set gets the family's one overflow child (every label
/// value `_overflow`) and `teslasync_metrics_label_overflow_total{family}` counts the lookup.
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ts::core {

class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(double v) noexcept {
    double cur = value_.load(std::memory_order_relaxed);
    while (!value_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
    }
  }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

enum class MetricType { Counter, Gauge };

/// Children a family keeps before new label sets go to its overflow child. Families whose labels
/// include a VIN ask for more (MetricsRegistry::counter's `max_children`).
inline constexpr std::size_t kDefaultMaxChildren = 10'000;
/// The value of every label of a family's overflow child.
inline constexpr const char* kOverflowLabelValue = "_overflow";

/// A metric name with a fixed list of label names; children per label-value tuple, at most
/// `max_children` of them plus one overflow child.
template <class T>
class Family {
 public:
  /// `overflow` (may be null) is the family whose child {name} counts redirected lookups.
  Family(std::string name, std::string help, std::vector<std::string> labels,
         std::size_t max_children = kDefaultMaxChildren, Family<Counter>* overflow = nullptr)
      : name_(std::move(name)),
        help_(std::move(help)),
        labels_(std::move(labels)),
        max_children_(max_children),
        overflow_(overflow) {}

  /// The child for these label values (same count and order as the label names). Once the
  /// family has `max_children` children, a label set it has not seen gets the overflow child
  /// (all values `_overflow`) and the overflow counter is incremented.
  T& with(const std::vector<std::string>& values) {
    std::lock_guard lock(mutex_);
    auto it = index_.find(values);
    if (it != index_.end()) return *it->second;
    if (children_.size() >= max_children_) return overflow_child();
    auto& child = children_.emplace_back();
    index_.emplace(values, &child);
    return child;
  }
  T& get() { return with({}); }

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& labels() const { return labels_; }
  std::size_t max_children() const { return max_children_; }

  /// Calls f(label_values, child) for every child, in label-value order.
  template <class F>
  void for_each(F&& f) const {
    std::lock_guard lock(mutex_);
    for (const auto& [values, child] : index_) f(values, *child);
  }

 private:
  // Called with mutex_ held. Lock order: this family, then the overflow family (which has no
  // overflow family of its own); rendering takes one family at a time, so no cycle.
  T& overflow_child() {
    if (overflow_ != nullptr) {
      if (overflow_counter_ == nullptr) overflow_counter_ = &overflow_->with({name_});
      overflow_counter_->inc();
    }
    if (overflow_value_ == nullptr) {
      overflow_value_ = &overflow_storage_.emplace_back();
      index_.emplace(std::vector<std::string>(labels_.size(), kOverflowLabelValue),
                     overflow_value_);
    }
    return *overflow_value_;
  }

  std::string name_, help_;
  std::vector<std::string> labels_;
  const std::size_t max_children_;
  Family<Counter>* const overflow_;
  mutable std::mutex mutex_;  // guards children_, index_ and the overflow members
  std::deque<T> children_;    // deque: stable addresses
  std::deque<T> overflow_storage_;  // at most the one overflow child
  std::map<std::vector<std::string>, T*> index_;
  T* overflow_value_ = nullptr;
  Counter* overflow_counter_ = nullptr;
};

/// Owns every metric family of one process. One instance per process, created in main().
class MetricsRegistry {
 public:
  /// Registers `teslasync_metrics_label_overflow_total{family}` (label sets past a family's cap).
  MetricsRegistry();

  /// The family `name`, created on first use. `max_children` caps its label sets (see Family);
  /// it is fixed by the first call for a name.
  Family<Counter>& counter(const std::string& name, const std::string& help,
                           std::vector<std::string> labels = {},
                           std::size_t max_children = kDefaultMaxChildren);
  Family<Gauge>& gauge(const std::string& name, const std::string& help,
                       std::vector<std::string> labels = {},
                       std::size_t max_children = kDefaultMaxChildren);

  /// A gauge computed when scraped (e.g. connections, uptime, RSS).
  void callback_gauge(const std::string& name, const std::string& help,
                      std::function<double()> read);
  /// A counter whose value another component keeps (e.g. a client library's statistics).
  void callback_counter(const std::string& name, const std::string& help,
                        std::function<double()> read);

  /// Prometheus text exposition of every family, sorted by name.
  std::string render_prometheus() const;

 private:
  mutable std::mutex mutex_;  // guards the three maps (not the values)
  std::map<std::string, std::unique_ptr<Family<Counter>>> counters_;
  std::map<std::string, std::unique_ptr<Family<Gauge>>> gauges_;
  struct Callback {
    std::string help;
    std::function<double()> read;
    const char* type;
  };
  std::map<std::string, Callback> callbacks_;
  Family<Counter>* label_overflow_ = nullptr;  // in counters_; set once by the constructor
};

/// The process's own gauges, read at scrape time from /proc and getrusage:
/// `process_resident_memory_bytes`, `process_cpu_seconds_total` and `uptime_sec` (since this
/// call). Every server registers them once in main().
void register_process_metrics(MetricsRegistry& metrics);

/// Escapes a label value for the Prometheus text format.
std::string prometheus_escape(const std::string& value);

}  // namespace ts::core

#pragma once
/// Metrics registry with Prometheus text exposition (format 0.0.4).
///
/// Families are created once (at start-up or on first use of a label set); the returned
/// Counter/Gauge references stay valid for the registry's lifetime, so hot paths look a child up
/// once and then only do a relaxed atomic add. Thread-safe: creation takes a mutex, updates are
/// lock-free, rendering takes the mutex and reads the atomics.
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

/// A metric name with a fixed list of label names; children per label-value tuple.
template <class T>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> labels)
      : name_(std::move(name)), help_(std::move(help)), labels_(std::move(labels)) {}

  /// The child for these label values (same count and order as the label names).
  T& with(const std::vector<std::string>& values) {
    std::lock_guard lock(mutex_);
    auto it = index_.find(values);
    if (it != index_.end()) return *it->second;
    auto& child = children_.emplace_back();
    index_.emplace(values, &child);
    return child;
  }
  T& get() { return with({}); }

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& labels() const { return labels_; }

  /// Calls f(label_values, child) for every child, in label-value order.
  template <class F>
  void for_each(F&& f) const {
    std::lock_guard lock(mutex_);
    for (const auto& [values, child] : index_) f(values, *child);
  }

 private:
  std::string name_, help_;
  std::vector<std::string> labels_;
  mutable std::mutex mutex_;  // guards children_ and index_
  std::deque<T> children_;    // deque: stable addresses
  std::map<std::vector<std::string>, T*> index_;
};

/// Owns every metric family of one process. One instance per process, created in main().
class MetricsRegistry {
 public:
  Family<Counter>& counter(const std::string& name, const std::string& help,
                           std::vector<std::string> labels = {});
  Family<Gauge>& gauge(const std::string& name, const std::string& help,
                       std::vector<std::string> labels = {});

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
};

/// The process's own gauges, read at scrape time from /proc and getrusage:
/// `process_resident_memory_bytes`, `process_cpu_seconds_total` and `uptime_sec` (since this
/// call). Every server registers them once in main().
void register_process_metrics(MetricsRegistry& metrics);

/// Escapes a label value for the Prometheus text format.
std::string prometheus_escape(const std::string& value);

}  // namespace ts::core

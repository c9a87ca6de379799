#include "core/metrics.hpp"

#include <fmt/format.h>

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>

namespace ts::core {

namespace {
constexpr const char* kLabelOverflowName = "teslasync_metrics_label_overflow_total";
}  // namespace

MetricsRegistry::MetricsRegistry() {
  // One child per family that ever overflowed: bounded by the number of families, so no cap.
  auto family = std::make_unique<Family<Counter>>(
      kLabelOverflowName,
      "Lookups of a new label set that went to the family's _overflow child because the family "
      "had reached its cap.",
      std::vector<std::string>{"family"}, std::numeric_limits<std::size_t>::max());
  label_overflow_ = family.get();
  counters_[kLabelOverflowName] = std::move(family);
}

Family<Counter>& MetricsRegistry::counter(const std::string& name, const std::string& help,
                                          std::vector<std::string> labels,
                                          std::size_t max_children) {
  std::lock_guard lock(mutex_);
  auto& slot = counters_[name];
  if (!slot)
    slot = std::make_unique<Family<Counter>>(name, help, std::move(labels), max_children,
                                             label_overflow_);
  return *slot;
}

Family<Gauge>& MetricsRegistry::gauge(const std::string& name, const std::string& help,
                                      std::vector<std::string> labels, std::size_t max_children) {
  std::lock_guard lock(mutex_);
  auto& slot = gauges_[name];
  if (!slot)
    slot = std::make_unique<Family<Gauge>>(name, help, std::move(labels), max_children,
                                           label_overflow_);
  return *slot;
}

void MetricsRegistry::callback_gauge(const std::string& name, const std::string& help,
                                     std::function<double()> read) {
  std::lock_guard lock(mutex_);
  callbacks_[name] = Callback{help, std::move(read), "gauge"};
}

void MetricsRegistry::callback_counter(const std::string& name, const std::string& help,
                                       std::function<double()> read) {
  std::lock_guard lock(mutex_);
  callbacks_[name] = Callback{help, std::move(read), "counter"};
}

std::string prometheus_escape(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

std::string label_block(const std::vector<std::string>& names,
                        const std::vector<std::string>& values) {
  if (names.empty()) return {};
  std::string out = "{";
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    if (i) out += ',';
    out += fmt::format("{}=\"{}\"", names[i], prometheus_escape(values[i]));
  }
  out += '}';
  return out;
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);
}

}  // namespace

namespace {

// One family's block: HELP, TYPE and a line per label set.
template <class T, class Value>
std::string render_family(const std::string& name, const Family<T>& family, const char* type,
                          Value value) {
  std::string b = fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, family.help(), name, type);
  family.for_each([&](const std::vector<std::string>& values, const T& child) {
    b += fmt::format("{}{} {}\n", name, label_block(family.labels(), values), value(child));
  });
  return b;
}

}  // namespace

std::string MetricsRegistry::render_prometheus() const {
  // Collect every family under one lock, then render sorted by metric name.
  std::map<std::string, std::string> blocks;
  std::lock_guard lock(mutex_);
  for (const auto& entry : counters_)
    blocks[entry.first] = render_family(entry.first, *entry.second, "counter",
                                        [](const Counter& c) { return c.value(); });
  for (const auto& entry : gauges_)
    blocks[entry.first] = render_family(entry.first, *entry.second, "gauge",
                                        [](const Gauge& g) { return number(g.value()); });
  for (const auto& [name, cb] : callbacks_) {
    blocks[name] = fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, cb.help, name, cb.type,
                               name, number(cb.read()));
  }
  std::string out;
  for (auto& [_, b] : blocks) out += b;
  return out;
}

void register_process_metrics(MetricsRegistry& metrics) {
  const auto started = std::chrono::steady_clock::now();
  metrics.callback_gauge("uptime_sec", "Seconds since start.", [started] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  });
  metrics.callback_gauge("process_resident_memory_bytes", "Resident set size.", [] {
    std::ifstream statm("/proc/self/statm");
    long pages_total = 0, pages_resident = 0;
    statm >> pages_total >> pages_resident;
    return static_cast<double>(pages_resident) * static_cast<double>(::sysconf(_SC_PAGESIZE));
  });
  metrics.callback_gauge("process_cpu_seconds_total", "User and system CPU time.", [] {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    return sec(u.ru_utime) + sec(u.ru_stime);
  });
}

}  // namespace ts::core

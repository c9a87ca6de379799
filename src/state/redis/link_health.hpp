#pragma once
/// Up/down bookkeeping of one Redis connection (internal to state/redis): the
/// `teslasync_redis_up{client}` gauge, connection counters, one warning per outage and one info
/// line when it ends. Written by the connection's thread; is_up() from any thread.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "core/metrics.hpp"

namespace ts::state::redis {

class LinkHealth {
 public:
  /// `client` is the label ("mirror", "publisher", "subscriber"), `target` the URL without
  /// credentials.
  LinkHealth(std::string client, std::string target, core::MetricsRegistry& metrics);

  /// A connection was established. `backlog` describes what happens next ("writing 12 pending
  /// changes"), for the log line.
  void up(std::string_view backlog);
  /// An attempt failed or the connection broke; `consequence` says what the service does
  /// meanwhile. Warns once per outage, debug afterwards.
  void down(std::string_view why, std::string_view consequence);

  bool is_up() const noexcept { return up_.load(std::memory_order_relaxed); }
  std::uint64_t connects() const noexcept { return connects_.value(); }
  std::uint64_t connect_failures() const noexcept { return failures_.value(); }

 private:
  const std::string client_;
  const std::string target_;
  std::shared_ptr<spdlog::logger> log_;
  core::Gauge& gauge_;
  core::Counter& failures_;
  core::Counter connects_;
  std::atomic<bool> up_{false};
  bool ever_up_ = false;        // connection thread only
  bool outage_logged_ = false;  // connection thread only
  std::chrono::steady_clock::time_point down_since_{};
};

}  // namespace ts::state::redis

#pragma once
/// Runs the polling Schedule on its own thread: asks the VehicleSource for the due vehicles' data
/// and hands the values to the sink as `poll` signals. Never wakes a car (VehicleSource contract).
///
/// Owner: the API's composition root; start()/stop() from that thread. `stats()` and
/// `state()` are readable from any thread.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/metrics.hpp"
#include "polling/schedule.hpp"
#include "signal/signal.hpp"

namespace ts::polling {

/// The result of asking the cloud about one vehicle.
struct VehicleData {
  PollOutcome outcome;
  /// Ok: the values, named like telemetry Fields.
  std::vector<std::pair<std::string, signal::Value>> values;
  signal::Timestamp measured_at = 0;  ///< Ok: the data's own time if known, else 0
  std::string error;                  ///< Failed: for the log
};

/// The Fleet API as the poller sees it. Implementations must never call wake_up: an asleep or
/// offline car answers Asleep. Called on the poller thread only.
class VehicleSource {
 public:
  virtual ~VehicleSource() = default;
  virtual VehicleData fetch(std::string_view vin) = 0;
};

struct PollerHooks {
  std::function<std::vector<std::string>()> vehicles;  ///< registered VINs (any thread)
  std::function<std::optional<signal::Timestamp>(std::string_view vin)> last_stream;
  std::function<void(std::vector<signal::Signal>&& signals)> sink;  ///< poll results
};

struct PollerStats {
  core::Counter polls;
  core::Counter ok;
  core::Counter asleep;
  core::Counter rate_limited;
  core::Counter failed;
  core::Counter signals;
  std::atomic<std::size_t> polling_vehicles{0};
  std::atomic<std::int64_t> last_poll_us{0};
};

class Poller {
 public:
  Poller(ScheduleOptions options, VehicleSource& source, PollerHooks hooks);
  ~Poller();  ///< stop()
  void start();
  void stop();
  /// Asks for a look at the schedule now (e.g. after registering a vehicle).
  void nudge();

  const PollerStats& stats() const { return stats_; }
  /// Per-vehicle state for diagnostics (copied under the lock).
  std::vector<std::pair<std::string, PollState>> states() const;
  void register_metrics(core::MetricsRegistry& registry) const;

 private:
  void run();

  VehicleSource& source_;
  const PollerHooks hooks_;
  PollerStats stats_;
  mutable std::mutex mutex_;  // guards schedule_, stopping_, nudged_
  std::condition_variable cv_;
  Schedule schedule_;
  bool stopping_ = false;
  bool nudged_ = false;
  std::thread thread_;
};

}  // namespace ts::polling

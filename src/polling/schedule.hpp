#pragma once
/// When to poll which vehicle (see README.md). Pure: time is a parameter; not thread-safe (the
/// Poller's thread owns it).
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "signal/signal.hpp"

namespace ts::polling {

using Duration = std::chrono::microseconds;

/// What the vehicle was doing at its last successful poll.
enum class Activity { Unknown, Driving, Charging, Idle };

struct ScheduleOptions {
  bool telemetry_enabled = true;
  Duration stale_timeout = std::chrono::minutes(15);
  Duration fallback_interval = std::chrono::minutes(5);  ///< 0: no fallback polling
  // Adaptive intervals when telemetry is off (polling is the only source).
  Duration driving_interval = std::chrono::seconds(15);
  Duration charging_interval = std::chrono::seconds(60);
  Duration idle_interval = std::chrono::minutes(5);
  // An asleep or offline car: first wait, doubled per asleep answer up to the cap.
  Duration asleep_initial = std::chrono::minutes(5);
  Duration asleep_max = std::chrono::minutes(30);
  // Other failures: first wait, doubled up to the cap.
  Duration error_initial = std::chrono::seconds(30);
  Duration error_max = std::chrono::minutes(5);
};

/// The outcome of one poll, as the schedule needs it.
struct PollOutcome {
  enum class Kind { Ok, Asleep, RateLimited, Failed } kind = Kind::Ok;
  Activity activity = Activity::Unknown;  ///< Ok
  Duration retry_after{0};                ///< RateLimited: as Tesla said (0: use error back-off)
};

/// Why a vehicle is (not) polled right now; shown by the pipeline summary.
enum class PollState { Streaming, Polling, Asleep, RateLimited, BackingOff, Disabled };
std::string_view to_string(PollState state) noexcept;

class Schedule {
 public:
  /// `started` is when the process started: a vehicle that never streamed counts as streaming
  /// until one stale timeout after it, so the stream gets its chance first.
  Schedule(ScheduleOptions options, signal::Timestamp started);

  /// Vehicles to track; others are forgotten.
  void set_vehicles(const std::vector<std::string>& vins);

  /// The vehicles due at `now`. `last_stream(vin)` is the receive time of the vehicle's newest
  /// stream message, if any. A vehicle whose stream is fresh is not due, and its back-off resets.
  std::vector<std::string> due(signal::Timestamp now,
                               const std::function<std::optional<signal::Timestamp>(std::string_view)>& last_stream);

  /// Records a poll made at `now` and schedules the vehicle's next one.
  void record(std::string_view vin, const PollOutcome& outcome, signal::Timestamp now);

  /// The earliest time any vehicle may become due (for sleeping until then); empty if none.
  /// Stale detection needs a wake-up too, so this is never later than now + 1 s when telemetry
  /// decides.
  std::optional<signal::Timestamp> next_wakeup(signal::Timestamp now) const;

  PollState state(std::string_view vin) const;
  std::size_t polling_count() const;  ///< vehicles currently polled (not streaming)

 private:
  struct Vehicle {
    signal::Timestamp next = 0;  ///< earliest next poll
    Duration backoff{0};         ///< current asleep/error back-off (0: none)
    Activity activity = Activity::Unknown;
    PollState state = PollState::Streaming;
  };
  Duration interval_for(const Vehicle& v) const;

  const ScheduleOptions options_;
  const signal::Timestamp started_;
  std::map<std::string, Vehicle, std::less<>> vehicles_;
};

}  // namespace ts::polling

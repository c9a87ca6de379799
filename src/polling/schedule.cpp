#include "polling/schedule.hpp"

#include <algorithm>

namespace ts::polling {

std::string_view to_string(PollState state) noexcept {
  switch (state) {
    case PollState::Streaming: return "streaming";
    case PollState::Polling: return "polling";
    case PollState::Asleep: return "asleep";
    case PollState::RateLimited: return "rate_limited";
    case PollState::BackingOff: return "backing_off";
    case PollState::Disabled: return "disabled";
  }
  return "unknown";
}

Schedule::Schedule(ScheduleOptions options, signal::Timestamp started)
    : options_(options), started_(started) {}

void Schedule::set_vehicles(const std::vector<std::string>& vins) {
  std::map<std::string, Vehicle, std::less<>> next;
  for (const auto& vin : vins) {
    auto it = vehicles_.find(vin);
    Vehicle fresh{.state = options_.telemetry_enabled ? PollState::Streaming : PollState::Polling};
    next.emplace(vin, it == vehicles_.end() ? fresh : it->second);
  }
  vehicles_ = std::move(next);
}

Duration Schedule::interval_for(const Vehicle& v) const {
  if (options_.telemetry_enabled) return options_.fallback_interval;
  switch (v.activity) {
    case Activity::Driving: return options_.driving_interval;
    case Activity::Charging: return options_.charging_interval;
    case Activity::Idle:
    case Activity::Unknown: return options_.idle_interval;
  }
  return options_.idle_interval;
}

std::vector<std::string> Schedule::due(
    signal::Timestamp now,
    const std::function<std::optional<signal::Timestamp>(std::string_view)>& last_stream) {
  std::vector<std::string> out;
  for (auto& [vin, v] : vehicles_) {
    if (options_.telemetry_enabled) {
      if (options_.fallback_interval.count() <= 0) {
        v.state = PollState::Disabled;
        continue;
      }
      const auto last = last_stream(vin).value_or(started_);
      if (now - last < options_.stale_timeout.count()) {
        // The stream is alive: stop polling at once, forget any back-off.
        v = Vehicle{.activity = v.activity, .state = PollState::Streaming};
        continue;
      }
      if (v.state == PollState::Streaming) {
        v.state = PollState::Polling;  // just went stale: poll now
        v.next = now;
      }
    }
    if (now >= v.next) out.push_back(vin);
  }
  return out;
}

void Schedule::record(std::string_view vin, const PollOutcome& outcome, signal::Timestamp now) {
  auto it = vehicles_.find(vin);
  if (it == vehicles_.end()) return;
  auto& v = it->second;
  switch (outcome.kind) {
    case PollOutcome::Kind::Ok:
      v.activity = outcome.activity;
      v.backoff = Duration{0};
      v.state = PollState::Polling;
      v.next = now + interval_for(v).count();
      break;
    case PollOutcome::Kind::Asleep:
      v.backoff = v.state == PollState::Asleep
                      ? std::min(v.backoff * 2, options_.asleep_max)
                      : options_.asleep_initial;
      v.state = PollState::Asleep;
      v.next = now + std::max(v.backoff, interval_for(v)).count();
      break;
    case PollOutcome::Kind::RateLimited:
      if (outcome.retry_after.count() > 0) {
        v.state = PollState::RateLimited;
        v.next = now + std::max(outcome.retry_after, interval_for(v)).count();
        break;
      }
      [[fallthrough]];
    case PollOutcome::Kind::Failed:
      v.backoff = v.state == PollState::BackingOff ? std::min(v.backoff * 2, options_.error_max)
                                                   : options_.error_initial;
      v.state = PollState::BackingOff;
      v.next = now + v.backoff.count();
      break;
  }
}

std::optional<signal::Timestamp> Schedule::next_wakeup(signal::Timestamp now) const {
  std::optional<signal::Timestamp> best;
  for (const auto& [vin, v] : vehicles_) {
    if (v.state == PollState::Streaming || v.state == PollState::Disabled) continue;
    best = best ? std::min(*best, v.next) : v.next;
  }
  if (options_.telemetry_enabled && !vehicles_.empty()) {
    // Streaming vehicles may go stale at any moment: look again within a second.
    const signal::Timestamp soon = now + 1'000'000;
    best = best ? std::min(*best, soon) : soon;
  }
  return best;
}

PollState Schedule::state(std::string_view vin) const {
  auto it = vehicles_.find(vin);
  return it == vehicles_.end() ? PollState::Disabled : it->second.state;
}

std::size_t Schedule::polling_count() const {
  return static_cast<std::size_t>(std::count_if(vehicles_.begin(), vehicles_.end(), [](const auto& kv) {
    return kv.second.state != PollState::Streaming && kv.second.state != PollState::Disabled;
  }));
}

}  // namespace ts::polling

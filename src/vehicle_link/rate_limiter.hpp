#pragma once
/// Per-socket sliding-log rate limiter (spec §6): remembers the times of the last `limit` granted
/// messages; a message is granted while fewer than `limit` were granted, or when the oldest
/// remembered grant is at least `interval` old (its slot is reused). Owned by one session.
#include <chrono>
#include <cstddef>
#include <vector>

namespace ts::vehicle_link {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  /// `limit` >= 1 (config validation guarantees it; 0 would crash the reference, spec §6).
  RateLimiter(std::size_t limit, Clock::duration interval);
  bool allow(Clock::time_point now);

 private:
  std::size_t limit_;
  Clock::duration interval_;
  std::vector<Clock::time_point> grants_;  // ring buffer of the last `limit` grants
  std::size_t oldest_ = 0;
};

}  // namespace ts::vehicle_link

#include "vehicle_link/rate_limiter.hpp"

#include <algorithm>

namespace ts::vehicle_link {

RateLimiter::RateLimiter(std::size_t limit, Clock::duration interval)
    : limit_(std::max<std::size_t>(1, limit)), interval_(interval) {}

bool RateLimiter::allow(Clock::time_point now) {
  if (grants_.size() < limit_) {
    grants_.push_back(now);
    return true;
  }
  if (now - grants_[oldest_] >= interval_) {
    grants_[oldest_] = now;
    oldest_ = (oldest_ + 1) % limit_;
    return true;
  }
  return false;
}

}  // namespace ts::vehicle_link

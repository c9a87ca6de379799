#include "vehicle_link/rate_limiter.hpp"

#include <gtest/gtest.h>

namespace ts::vehicle_link {
namespace {

using namespace std::chrono_literals;

TEST(RateLimiter, SlidingLogGrantsLimitPerInterval) {
  RateLimiter rl(3, 10s);
  RateLimiter::Clock::time_point t0{};
  EXPECT_TRUE(rl.allow(t0));
  EXPECT_TRUE(rl.allow(t0 + 1s));
  EXPECT_TRUE(rl.allow(t0 + 2s));
  EXPECT_FALSE(rl.allow(t0 + 3s));
  EXPECT_FALSE(rl.allow(t0 + 9999ms));
  EXPECT_TRUE(rl.allow(t0 + 10s));   // the grant at t0 is 10 s old: its slot is reused
  EXPECT_FALSE(rl.allow(t0 + 10s));  // next oldest is t0+1s
  EXPECT_TRUE(rl.allow(t0 + 11s));
}

TEST(RateLimiter, RefusalsDoNotConsumeSlots) {
  RateLimiter rl(1, 1s);
  RateLimiter::Clock::time_point t0{};
  EXPECT_TRUE(rl.allow(t0));
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(rl.allow(t0 + 10ms * i));
  EXPECT_TRUE(rl.allow(t0 + 1s));
}

}  // namespace
}  // namespace ts::vehicle_link

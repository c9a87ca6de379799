#include "polling/schedule.hpp"

#include <gtest/gtest.h>

namespace ts::polling {
namespace {

using namespace std::chrono_literals;
constexpr signal::Timestamp kSecond = 1'000'000;
constexpr signal::Timestamp kMinute = 60 * kSecond;

struct Streams {
  std::map<std::string, signal::Timestamp, std::less<>> last;
  auto fn() {
    return [this](std::string_view vin) -> std::optional<signal::Timestamp> {
      auto it = last.find(vin);
      if (it == last.end()) return std::nullopt;
      return it->second;
    };
  }
};

TEST(Schedule, FreshStreamIsNeverPolled) {
  Schedule s({}, 0);
  s.set_vehicles({"V"});
  Streams streams;
  streams.last["V"] = 100 * kMinute;
  EXPECT_TRUE(s.due(100 * kMinute + 14 * kMinute, streams.fn()).empty());
  EXPECT_EQ(s.state("V"), PollState::Streaming);
}

TEST(Schedule, StaleStreamIsPolledEveryFallbackIntervalAndStopsWhenItIsBack) {
  Schedule s({.stale_timeout = 15min, .fallback_interval = 5min}, 0);
  s.set_vehicles({"V"});
  Streams streams;
  streams.last["V"] = 0;
  EXPECT_TRUE(s.due(14 * kMinute, streams.fn()).empty());
  auto t = 15 * kMinute;
  EXPECT_EQ(s.due(t, streams.fn()), std::vector<std::string>{"V"});
  s.record("V", {.kind = PollOutcome::Kind::Ok}, t);
  EXPECT_EQ(s.state("V"), PollState::Polling);
  EXPECT_TRUE(s.due(t + 4 * kMinute, streams.fn()).empty());
  EXPECT_EQ(s.due(t + 5 * kMinute, streams.fn()).size(), 1u);
  // The stream comes back: no more polls.
  streams.last["V"] = t + 5 * kMinute + kSecond;
  EXPECT_TRUE(s.due(t + 11 * kMinute, streams.fn()).empty());
  EXPECT_EQ(s.state("V"), PollState::Streaming);
  EXPECT_EQ(s.polling_count(), 0u);
}

TEST(Schedule, NeverStreamedVehicleGetsOneStaleTimeoutFromStart) {
  Schedule s({.stale_timeout = 15min}, 10 * kMinute);
  s.set_vehicles({"V"});
  Streams none;
  EXPECT_TRUE(s.due(24 * kMinute, none.fn()).empty());
  EXPECT_EQ(s.due(25 * kMinute, none.fn()).size(), 1u);
}

TEST(Schedule, AsleepCarBacksOffUpToTheCap) {
  Schedule s({.telemetry_enabled = false, .asleep_initial = 5min, .asleep_max = 30min}, 0);
  s.set_vehicles({"V"});
  Streams none;
  signal::Timestamp t = 0;
  std::vector<signal::Timestamp> gaps;
  for (int i = 0; i < 6; ++i) {
    ASSERT_EQ(s.due(t, none.fn()).size(), 1u) << i;
    s.record("V", {.kind = PollOutcome::Kind::Asleep}, t);
    auto next = *s.next_wakeup(t);
    gaps.push_back(next - t);
    t = next;
  }
  EXPECT_EQ(gaps, (std::vector<signal::Timestamp>{5 * kMinute, 10 * kMinute, 20 * kMinute,
                                                  30 * kMinute, 30 * kMinute, 30 * kMinute}));
  EXPECT_EQ(s.state("V"), PollState::Asleep);
  s.record("V", {.kind = PollOutcome::Kind::Ok, .activity = Activity::Idle}, t);
  EXPECT_EQ(*s.next_wakeup(t) - t, 5 * kMinute);
}

TEST(Schedule, RateLimitWaitsAsTold) {
  Schedule s({.telemetry_enabled = false, .driving_interval = 15s}, 0);
  s.set_vehicles({"V"});
  // At least as long as Tesla says, and never sooner than the vehicle's own interval.
  s.record("V", {.kind = PollOutcome::Kind::RateLimited, .retry_after = 600s}, 0);
  EXPECT_EQ(s.state("V"), PollState::RateLimited);
  EXPECT_EQ(*s.next_wakeup(0), 600 * kSecond);
  s.record("V", {.kind = PollOutcome::Kind::RateLimited, .retry_after = 1s}, 0);
  EXPECT_EQ(*s.next_wakeup(0), 5 * kMinute);
}

TEST(Schedule, AdaptiveIntervalsWithoutTelemetry) {
  Schedule s({.telemetry_enabled = false}, 0);
  s.set_vehicles({"V"});
  s.record("V", {.kind = PollOutcome::Kind::Ok, .activity = Activity::Driving}, 0);
  EXPECT_EQ(*s.next_wakeup(0), 15 * kSecond);
  s.record("V", {.kind = PollOutcome::Kind::Ok, .activity = Activity::Charging}, 0);
  EXPECT_EQ(*s.next_wakeup(0), 60 * kSecond);
  s.record("V", {.kind = PollOutcome::Kind::Ok, .activity = Activity::Idle}, 0);
  EXPECT_EQ(*s.next_wakeup(0), 5 * kMinute);
  s.record("V", {.kind = PollOutcome::Kind::Failed}, 0);
  EXPECT_EQ(*s.next_wakeup(0), 30 * kSecond);
  s.record("V", {.kind = PollOutcome::Kind::Failed}, 0);
  EXPECT_EQ(*s.next_wakeup(0), 60 * kSecond);
}

TEST(Schedule, ZeroFallbackIntervalDisablesPolling) {
  Schedule s({.fallback_interval = 0min}, 0);
  s.set_vehicles({"V"});
  Streams none;
  EXPECT_TRUE(s.due(100 * kMinute, none.fn()).empty());
  EXPECT_EQ(s.state("V"), PollState::Disabled);
}

}  // namespace
}  // namespace ts::polling

#include "polling/poller.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace ts::polling {
namespace {

using namespace std::chrono_literals;

class FakeSource : public VehicleSource {
 public:
  VehicleData fetch(std::string_view vin) override {
    std::lock_guard lock(mutex);
    calls.emplace_back(vin);
    VehicleData d;
    if (asleep) {
      d.outcome.kind = PollOutcome::Kind::Asleep;
    } else {
      d.outcome = {.kind = PollOutcome::Kind::Ok, .activity = Activity::Driving};
      d.values = {{"VehicleSpeed", signal::Value::float64(42)}};
    }
    return d;
  }
  std::mutex mutex;
  std::vector<std::string> calls;
  bool asleep = false;
};

bool eventually(const std::function<bool()>& pred) {
  for (int i = 0; i < 5000 && !pred(); ++i) std::this_thread::sleep_for(1ms);
  return pred();
}

TEST(Poller, PollsStaleVehiclesAndRecordsPollSignals) {
  FakeSource source;
  std::mutex m;
  std::vector<signal::Signal> got;
  Poller poller({.telemetry_enabled = false, .driving_interval = 1h}, source,
                {.vehicles = [] { return std::vector<std::string>{"VIN1"}; },
                 .last_stream = [](std::string_view) { return std::nullopt; },
                 .sink = [&](std::vector<signal::Signal>&& s) {
                   std::lock_guard lock(m);
                   for (auto& x : s) got.push_back(std::move(x));
                 }});
  poller.start();
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(m);
    return !got.empty();
  }));
  poller.stop();
  std::lock_guard lock(m);
  EXPECT_EQ(got[0].vin, "VIN1");
  EXPECT_EQ(got[0].name, "VehicleSpeed");
  EXPECT_EQ(got[0].source, signal::Source::Poll);
  EXPECT_EQ(poller.stats().ok.value(), 1u);  // the next poll is an hour away
}

TEST(Poller, StreamingVehicleIsNotPolled) {
  FakeSource source;
  Poller poller({.telemetry_enabled = true, .stale_timeout = 1h}, source,
                {.vehicles = [] { return std::vector<std::string>{"VIN1"}; },
                 .last_stream = [](std::string_view) { return signal::now(); },
                 .sink = [](std::vector<signal::Signal>&&) {}});
  poller.start();
  poller.nudge();
  ASSERT_TRUE(eventually([&] { return poller.states()[0].second == PollState::Streaming; }));
  poller.stop();
  std::lock_guard lock(source.mutex);
  EXPECT_TRUE(source.calls.empty());
}

}  // namespace
}  // namespace ts::polling

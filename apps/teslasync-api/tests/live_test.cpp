// Live with two replicas sharing a real redis-server (tests/support/redis_server.hpp): what one
// ingests reaches the other's L1 over pub/sub, and after Redis was down and back (empty), the
// other catches up from L2 with what changed during the outage. CTest label: redis.
#include "live.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "state/redis/redis_config.hpp"
#include "support/redis_server.hpp"
#include "support/wait_for.hpp"

namespace ts::api {
namespace {

using namespace std::chrono_literals;
using testsupport::wait_for;

/// One API replica's live side, wired as main() does.
struct Replica {
  explicit Replica(const std::string& url)
      : mirror(state::redis::parse_redis_url(url),
               state::redis::RedisMirrorOptions{
                   .max_backoff = 200ms, .health_interval = 100ms, .resync_from = &store},
               metrics),
        bus(state::redis::parse_redis_url(url),
            state::redis::PubSubOptions{.max_backoff = 200ms, .health_interval = 100ms}, metrics),
        live(store, &mirror, hub, &bus, 50ms) {
    EXPECT_TRUE(mirror.load_all());
    live.start();
    mirror.start();
    bus.start();
  }
  ~Replica() {
    live.stop();
    bus.stop();
    mirror.stop();
  }

  /// The records of one message, as ingest hands them over.
  void ingest(const std::string& name, signal::Timestamp ts, double value) {
    storage::Batch batch;
    batch.signals.push_back({.vin = "VIN1",
                             .name = name,
                             .ts = ts,
                             .received_at = ts + 1,
                             .value = signal::Value::float64(value)});
    live.observe(batch);
  }
  signal::Timestamp ts_of(const std::string& name) const {
    auto e = store.get("VIN1", name);
    return e ? e->ts : 0;
  }

  core::MetricsRegistry metrics;
  state::Store store{metrics};
  std::shared_ptr<http::EventHub> hub = std::make_shared<http::EventHub>(metrics);
  state::redis::RedisMirror mirror;
  state::redis::PubSub bus;
  Live live;
};

TEST(Live, ReplicaCatchesUpFromRedisAfterAnOutage) {
  testsupport::RedisServer redis;
  Replica ingesting(redis.url()), other(redis.url());
  ASSERT_TRUE(wait_for([&] { return ingesting.bus.subscribed() && other.bus.subscribed(); }, 20s,
                       "both replicas on the bus"));

  ingesting.ingest("Soc", 100, 50);
  ASSERT_TRUE(wait_for([&] { return other.ts_of("Soc") == 100; }, 20s, "the change over pub/sub"));

  redis.stop();  // no persistence: Redis comes back empty
  ASSERT_TRUE(wait_for(
      [&] {
        return !ingesting.mirror.connected() && !ingesting.bus.publisher_connected() &&
               !other.bus.subscribed();
      },
      20s, "both replicas see Redis gone"));
  // Changes while Redis is away: their events are lost with the bus.
  ingesting.ingest("Soc", 200, 40);
  ingesting.ingest("Odometer", 200, 1234);
  redis.start();

  ASSERT_TRUE(wait_for([&] { return other.ts_of("Soc") == 200 && other.ts_of("Odometer") == 200; },
                       20s, "the other replica caught up from L2"));
  EXPECT_EQ(other.store.get("VIN1", "Odometer")->value, signal::Value::float64(1234));
  // And live events flow again.
  ASSERT_TRUE(
      wait_for([&] { return ingesting.bus.publisher_connected() && other.bus.subscribed(); }, 20s,
               "both replicas on the bus again"));
  ingesting.ingest("Soc", 300, 30);
  ASSERT_TRUE(wait_for([&] { return other.ts_of("Soc") == 300; }, 20s, "the change over pub/sub"));
}

}  // namespace
}  // namespace ts::api

// PubSub against a real redis-server (tests/support/redis_server.hpp). CTest label: redis.
#include "state/redis/pubsub.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "support/redis_server.hpp"
#include "support/wait_for.hpp"

namespace ts::state::redis {
namespace {

using namespace std::chrono_literals;
using testsupport::RedisServer;
using testsupport::wait_for;

constexpr auto kWait = 20s;

PubSubOptions fast_options() {
  PubSubOptions o;
  o.max_backoff = 200ms;
  o.health_interval = 100ms;
  return o;
}

/// Records what a handler received; thread-safe.
class Inbox {
 public:
  PubSub::Handler handler() {
    return [this](std::string_view channel, std::string_view payload) {
      std::lock_guard lock(mutex_);
      messages_.push_back(std::string(channel) + "|" + std::string(payload));
    };
  }
  std::vector<std::string> messages() const {
    std::lock_guard lock(mutex_);
    return messages_;
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return messages_.size();
  }
  bool contains(const std::string& m) const {
    std::lock_guard lock(mutex_);
    return std::find(messages_.begin(), messages_.end(), m) != messages_.end();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> messages_;
};

struct Replica {
  Replica(const RedisServer& server, PubSubOptions o = fast_options())
      : bus(parse_redis_url(server.url()), o, metrics) {}
  core::MetricsRegistry metrics;
  PubSub bus;
  Inbox inbox;
};

::testing::AssertionResult ready(Replica& r) {
  return wait_for([&] { return r.bus.subscribed() && r.bus.publisher_connected(); }, kWait,
                  "subscribed and publisher connected");
}

TEST(PubSub, MessagesReachOtherInstancesButNotTheSender) {
  RedisServer server;
  Replica a(server), b(server);
  a.bus.subscribe("vehicle_signals", a.inbox.handler());
  b.bus.subscribe("vehicle_signals", b.inbox.handler());
  a.bus.start();
  b.bus.start();
  ASSERT_TRUE(ready(a));
  ASSERT_TRUE(ready(b));

  // Redis delivers to each subscriber in the order it processed the PUBLISH commands, so once
  // a message published after X has arrived, X would have arrived too if it were delivered.
  ASSERT_TRUE(a.bus.publish("vehicle_signals", "m1"));
  ASSERT_TRUE(wait_for([&] { return a.bus.stats().published == 1; }, kWait, "m1 published"));
  ASSERT_TRUE(b.bus.publish("vehicle_signals", "m2"));
  ASSERT_TRUE(wait_for([&] { return b.bus.stats().published == 1; }, kWait, "m2 published"));
  ASSERT_TRUE(a.bus.publish("other_channel", "not subscribed"));
  ASSERT_TRUE(a.bus.publish("vehicle_signals", "m3"));
  ASSERT_TRUE(wait_for([&] { return b.inbox.size() >= 2 && a.inbox.size() >= 1; }, kWait,
                       "each side to receive the other's messages"));
  EXPECT_EQ(a.inbox.messages(), std::vector<std::string>{"vehicle_signals|m2"});
  EXPECT_EQ(b.inbox.messages(),
            (std::vector<std::string>{"vehicle_signals|m1", "vehicle_signals|m3"}));
  EXPECT_EQ(b.bus.stats().received, 2u);
  EXPECT_EQ(a.bus.stats().received, 1u);
}

TEST(PubSub, DeliverOwnAlsoDeliversToTheSender) {
  RedisServer server;
  PubSubOptions o = fast_options();
  o.deliver_own = true;
  Replica a(server, o);
  a.bus.subscribe("ch", a.inbox.handler());
  a.bus.start();
  ASSERT_TRUE(ready(a));
  ASSERT_TRUE(a.bus.publish("ch", "hello"));
  ASSERT_TRUE(wait_for([&] { return a.inbox.contains("ch|hello"); }, kWait, "own message"));
}

TEST(PubSub, ForeignMessagesAreDeliveredWhole) {
  RedisServer server;
  Replica a(server);
  a.bus.subscribe("ch", a.inbox.handler());
  a.bus.start();
  ASSERT_TRUE(ready(a));
  server.command({"PUBLISH", "ch", "plain text from redis-cli"});
  ASSERT_TRUE(wait_for([&] { return a.inbox.contains("ch|plain text from redis-cli"); }, kWait,
                       "the foreign message"));
}

TEST(PubSub, SubscribeAfterStart) {
  RedisServer server;
  Replica a(server), b(server);
  a.bus.subscribe("first", a.inbox.handler());
  a.bus.start();
  b.bus.start();
  ASSERT_TRUE(ready(a));
  a.bus.subscribe("second", a.inbox.handler());
  ASSERT_TRUE(wait_for([&] { return a.bus.subscribed(); }, kWait, "second channel confirmed"));
  ASSERT_TRUE(wait_for([&] { return b.bus.publisher_connected(); }, kWait, "b connected"));
  ASSERT_TRUE(b.bus.publish("second", "x"));
  ASSERT_TRUE(wait_for([&] { return a.inbox.contains("second|x"); }, kWait, "message on second"));
}

TEST(PubSub, ResubscribesAfterRedisRestarts) {
  RedisServer server;
  Replica a(server), b(server);
  b.bus.subscribe("ch", b.inbox.handler());
  a.bus.start();
  b.bus.start();
  ASSERT_TRUE(ready(b));
  ASSERT_TRUE(wait_for([&] { return a.bus.publisher_connected(); }, kWait, "a connected"));
  const auto before = b.bus.stats().subscriptions;

  server.stop();
  ASSERT_TRUE(wait_for([&] { return !b.bus.subscribed() && !a.bus.publisher_connected(); }, kWait,
                       "both to notice the outage"));
  EXPECT_FALSE(a.bus.publish("ch", "lost"));  // dropped while down, counted
  EXPECT_EQ(a.bus.stats().dropped, 1u);
  EXPECT_NE(
      a.metrics.render_prometheus().find("teslasync_redis_pubsub_dropped_total{reason=\"down\"} 1"),
      std::string::npos);
  EXPECT_NE(a.metrics.render_prometheus().find("teslasync_redis_up{client=\"publisher\"} 0"),
            std::string::npos);

  server.start();
  ASSERT_TRUE(ready(b));
  EXPECT_GT(b.bus.stats().subscriptions, before);
  ASSERT_TRUE(wait_for([&] { return a.bus.publisher_connected(); }, kWait, "a reconnected"));
  ASSERT_TRUE(a.bus.publish("ch", "after"));
  ASSERT_TRUE(wait_for([&] { return b.inbox.contains("ch|after"); }, kWait, "after restart"));
  EXPECT_FALSE(b.inbox.contains("ch|lost"));
}

TEST(PubSub, AThrowingHandlerIsCountedAndOthersStillRun) {
  RedisServer server;
  Replica a(server), b(server);
  b.bus.subscribe(
      "ch", [](std::string_view, std::string_view) { throw std::runtime_error("handler bug"); });
  b.bus.subscribe("ch", b.inbox.handler());
  a.bus.start();
  b.bus.start();
  ASSERT_TRUE(ready(b));
  ASSERT_TRUE(wait_for([&] { return a.bus.publisher_connected(); }, kWait, "a connected"));
  ASSERT_TRUE(a.bus.publish("ch", "m"));
  ASSERT_TRUE(wait_for([&] { return b.inbox.contains("ch|m"); }, kWait, "second handler ran"));
  EXPECT_EQ(b.bus.stats().handler_errors, 1u);
}

TEST(PubSub, FullQueueDropsAndCounts) {
  RedisServer server;
  PubSubOptions o = fast_options();
  o.max_queued = 1;
  Replica a(server, o);
  a.bus.start();
  ASSERT_TRUE(wait_for([&] { return a.bus.publisher_connected(); }, kWait, "connected"));
  // Publish from this thread faster than one publisher round trip can take them; bounded.
  std::size_t accepted = 0, refused = 0;
  for (int i = 0; i < 100'000 && refused == 0; ++i) {
    (a.bus.publish("ch", "m") ? accepted : refused) += 1;
  }
  EXPECT_GT(accepted, 0u);
  ASSERT_EQ(refused, 1u);
  EXPECT_NE(
      a.metrics.render_prometheus().find("teslasync_redis_pubsub_dropped_total{reason=\"full\"} 1"),
      std::string::npos);
}

}  // namespace
}  // namespace ts::state::redis

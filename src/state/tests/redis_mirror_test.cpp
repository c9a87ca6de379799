// RedisMirror against a real redis-server (tests/support/redis_server.hpp). CTest label: redis.
#include "state/redis/redis_mirror.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "state/redis/codec.hpp"
#include "state/redis/errc.hpp"
#include "state/store.hpp"
#include "support/redis_server.hpp"
#include "support/wait_for.hpp"

namespace ts::state::redis {
namespace {

using namespace std::chrono_literals;
using signal::Signal;
using signal::Source;
using signal::Value;
using testsupport::RedisReply;
using testsupport::RedisServer;
using testsupport::wait_for;

constexpr auto kWait = 20s;

Signal sig(std::string vin, std::string name, signal::Timestamp ts, Value v,
           Source source = Source::Stream) {
  return Signal{.vin = std::move(vin),
                .name = std::move(name),
                .ts = ts,
                .received_at = ts + 7,
                .source = source,
                .value = std::move(v)};
}

RedisMirrorOptions fast_options() {
  RedisMirrorOptions o;
  o.max_backoff = 200ms;
  o.health_interval = 100ms;
  return o;
}

/// The stored event time of a field, or -1 when absent.
signal::Timestamp stored_ts(const RedisServer& server, const std::string& vin,
                            const std::string& name, int db = 0) {
  const RedisReply r = server.command({"HGET", vehicle_key(kDefaultKeyPrefix, vin), name}, db);
  if (r.is_nil()) return -1;
  auto s = decode_value(vin, name, r.str);
  return s ? s->ts : -2;
}

double metric(core::MetricsRegistry& metrics, const std::string& series) {
  const std::string text = metrics.render_prometheus();
  const auto pos = text.find("\n" + series + " ");
  if (pos == std::string::npos) return -1;
  return std::stod(text.substr(pos + series.size() + 2));
}

TEST(RedisMirror, OlderWriteDoesNotLandNewerDoes) {
  RedisServer server;
  core::MetricsRegistry metrics;
  RedisMirror mirror(parse_redis_url(server.url()), fast_options(), metrics);
  mirror.start();

  mirror.enqueue(sig("VIN1", "Soc", 2000, Value::float64(50)));
  ASSERT_TRUE(mirror.wait_idle(kWait));
  EXPECT_EQ(stored_ts(server, "VIN1", "Soc"), 2000);

  mirror.enqueue(sig("VIN1", "Soc", 1000, Value::float64(60)));  // out of order: older
  ASSERT_TRUE(mirror.wait_idle(kWait));
  EXPECT_EQ(stored_ts(server, "VIN1", "Soc"), 2000);
  EXPECT_EQ(mirror.stats().stale, 1u);

  mirror.enqueue(sig("VIN1", "Soc", 3000, Value::float64(40)));
  ASSERT_TRUE(mirror.wait_idle(kWait));
  EXPECT_EQ(stored_ts(server, "VIN1", "Soc"), 3000);
  EXPECT_EQ(mirror.stats().written, 2u);
  EXPECT_EQ(mirror.stats().errors, 0u);
  EXPECT_EQ(metric(metrics, "teslasync_redis_mirror_stale_total"), 1);
  EXPECT_EQ(metric(metrics, "teslasync_redis_up{client=\"mirror\"}"), 1);
  EXPECT_EQ(metric(metrics, "teslasync_redis_mirror_pending"), 0);
}

/// The stored value of a field (it must be there).
Value stored_value(const RedisServer& server, const std::string& vin, const std::string& name) {
  auto held = decode_value(
      vin, name, server.command({"HGET", vehicle_key(kDefaultKeyPrefix, vin), name}).str);
  EXPECT_TRUE(held);
  return held ? held->value : Value{};
}

// L1's rule (store.hpp): at the same event time the first stored value stays, whatever the
// receive times, so that Redis, L1 and signal_log agree after a restart.
TEST(RedisMirror, SameEventTimeKeepsTheFirstAsInL1) {
  RedisServer server;
  core::MetricsRegistry metrics;
  RedisMirror mirror(parse_redis_url(server.url()), fast_options(), metrics);
  mirror.start();
  Signal a = sig("VIN1", "Locked", 1000, Value::boolean(false));
  mirror.enqueue(a);
  ASSERT_TRUE(mirror.wait_idle(kWait));
  for (int delta : {-1, +1}) {
    Signal other = sig("VIN1", "Locked", 1000, Value::boolean(true));
    other.received_at = a.received_at + delta;
    mirror.enqueue(other);
    ASSERT_TRUE(mirror.wait_idle(kWait));
    EXPECT_EQ(stored_value(server, "VIN1", "Locked"), Value::boolean(false)) << delta;
  }
}

// An event time far ahead of its receive time never lands; one written before the rule existed
// does not block current values.
TEST(RedisMirror, EventTimeTooFarAheadNeverLands) {
  RedisServer server;
  core::MetricsRegistry metrics;
  RedisMirror mirror(parse_redis_url(server.url()), fast_options(), metrics);
  mirror.start();
  constexpr signal::Timestamp kNow = 1'796'000'000'000'000, k2099 = 4'070'908'800'000'000;
  Signal future = sig("VIN1", "VehicleSpeed", k2099, Value::float64(10));
  future.received_at = kNow;
  mirror.enqueue(future);
  ASSERT_TRUE(mirror.wait_idle(kWait));
  EXPECT_EQ(stored_ts(server, "VIN1", "VehicleSpeed"), -1);
  // A 2099 value already in the hash (an older release wrote it) gives way to a current one.
  server.command({"HSET", vehicle_key(kDefaultKeyPrefix, "VIN1"), "VehicleSpeed",
                  encode_value(future)});
  ASSERT_EQ(stored_ts(server, "VIN1", "VehicleSpeed"), k2099);
  mirror.enqueue(sig("VIN1", "VehicleSpeed", kNow, Value::float64(55)));
  ASSERT_TRUE(mirror.wait_idle(kWait));
  EXPECT_EQ(stored_ts(server, "VIN1", "VehicleSpeed"), kNow);
  EXPECT_EQ(stored_value(server, "VIN1", "VehicleSpeed"), Value::float64(55));
}

TEST(RedisMirror, ConcurrentWritersNewestWins) {
  RedisServer server;
  core::MetricsRegistry m0, m1;
  RedisMirrorOptions small = fast_options();
  small.max_batch_signals = 50;  // many round trips, so the two writers interleave
  RedisMirror w0(parse_redis_url(server.url()), small, m0);
  RedisMirror w1(parse_redis_url(server.url()), small, m1);
  w0.start();
  w1.start();
  constexpr int kVehicles = 10, kSignals = 10, kRounds = 40;
  // Writer 0 sends even event times rising, writer 1 odd ones falling.
  auto feed = [&](RedisMirror& w, int parity) {
    for (int round = 0; round < kRounds; ++round) {
      const int r = parity == 0 ? round : kRounds - 1 - round;
      const signal::Timestamp ts = 2 * r + parity;
      std::vector<Signal> batch;
      for (int v = 0; v < kVehicles; ++v) {
        for (int s = 0; s < kSignals; ++s) {
          batch.push_back(
              sig("VIN" + std::to_string(v), "S" + std::to_string(s), ts, Value::int64(ts)));
        }
      }
      w.enqueue(batch);
      if (round % 8 == 0) {
        ASSERT_TRUE(w.wait_idle(kWait));  // force interleaved writes
      }
    }
  };
  std::thread t0([&] { feed(w0, 0); });
  std::thread t1([&] { feed(w1, 1); });
  t0.join();
  t1.join();
  ASSERT_TRUE(w0.wait_idle(kWait));
  ASSERT_TRUE(w1.wait_idle(kWait));
  const signal::Timestamp newest = 2 * (kRounds - 1) + 1;
  for (int v = 0; v < kVehicles; ++v) {
    for (int s = 0; s < kSignals; ++s) {
      EXPECT_EQ(stored_ts(server, "VIN" + std::to_string(v), "S" + std::to_string(s)), newest);
    }
  }
  EXPECT_GT(w0.stats().stale + w1.stats().stale, 0u);
  EXPECT_EQ(w0.stats().errors + w1.stats().errors, 0u);
}

TEST(RedisMirror, KeysExpireAfterTheConfiguredTime) {
  RedisServer server;
  core::MetricsRegistry m0, m1;
  RedisMirrorOptions o = fast_options();
  o.ttl = 60s;
  RedisMirror expiring(parse_redis_url(server.url()), o, m0);
  o.ttl = 0ms;
  o.key_prefix = "never:";
  RedisMirror forever(parse_redis_url(server.url()), o, m1);
  expiring.start();
  forever.start();
  expiring.enqueue(sig("VIN1", "A", 1, Value::int64(1)));
  forever.enqueue(sig("VIN1", "A", 1, Value::int64(1)));
  ASSERT_TRUE(expiring.wait_idle(kWait));
  ASSERT_TRUE(forever.wait_idle(kWait));
  const RedisReply pttl = server.command({"PTTL", vehicle_key("teslasync:", "VIN1")});
  ASSERT_EQ(pttl.type, RedisReply::Type::Integer);
  EXPECT_GT(pttl.integer, 0);
  EXPECT_LE(pttl.integer, 60'000);
  EXPECT_EQ(server.command({"PTTL", vehicle_key("never:", "VIN1")}).integer, -1);
}

TEST(RedisMirror, LoadAllRoundTripsEveryKind) {
  RedisServer server;
  core::MetricsRegistry metrics;
  RedisMirror mirror(parse_redis_url(server.url()), fast_options(), metrics);
  mirror.start();
  const std::vector<Value> values = {
      Value::invalid(),
      Value::boolean(true),
      Value::int64(-7),
      Value::float64(2.5),
      Value::string("a string that is longer than sixteen bytes"),
      Value::enumeration("ShiftStateD"),
      Value::location(52.52, 13.405),
      Value::doors(R"({"DriverFront":false,"DriverRear":false,"PassengerFront":false,)"
                   R"("PassengerRear":false,"TrunkFront":true,"TrunkRear":false})"),
      Value::tires(R"({"rear_left":true})"),
      Value::time_of_day("23:59:59")};
  std::vector<Signal> sent;
  for (int v = 0; v < 3; ++v) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      sent.push_back(sig("VIN" + std::to_string(v), "F" + std::to_string(i),
                         1000 + static_cast<signal::Timestamp>(i), values[i],
                         i % 2 ? Source::Poll : Source::Stream));
    }
  }
  mirror.enqueue(sent);
  ASSERT_TRUE(mirror.wait_idle(kWait));
  // Things load_all must skip: a field not in our format, a key of another shape.
  server.command({"HSET", vehicle_key(kDefaultKeyPrefix, "VIN0"), "Garbage", "{not json"});
  server.command({"SET", "teslasync:other", "x"});

  core::MetricsRegistry metrics2;
  RedisMirror reader(parse_redis_url(server.url()), fast_options(), metrics2);
  auto loaded = reader.load_all();
  ASSERT_TRUE(loaded) << loaded.error().message();
  auto by_key = [](const Signal& a, const Signal& b) {
    return std::tie(a.vin, a.name) < std::tie(b.vin, b.name);
  };
  std::sort(sent.begin(), sent.end(), by_key);
  std::sort(loaded->begin(), loaded->end(), by_key);
  EXPECT_EQ(*loaded, sent);

  // Into L1.
  Store store;
  const LoadResult r = store.load(*loaded);
  EXPECT_EQ(r.newer, sent.size());
  EXPECT_EQ(store.get("VIN2", "F6")->value, Value::location(52.52, 13.405));
}

TEST(RedisMirror, LoadAllWhenRedisIsDownIsAnError) {
  RedisServer server;
  server.stop();
  core::MetricsRegistry metrics;
  RedisMirror mirror(parse_redis_url(server.url()), fast_options(), metrics);
  auto loaded = mirror.load_all();
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error(), make_error_code(errc::connect_failed));
}

TEST(RedisMirror, PasswordAndDatabaseFromTheUrl) {
  RedisServer server({.password = "s3cret"});
  core::MetricsRegistry metrics;
  RedisMirror mirror(parse_redis_url(server.url(2)), fast_options(), metrics);
  mirror.start();
  mirror.enqueue(sig("VIN1", "A", 5, Value::int64(1)));
  ASSERT_TRUE(mirror.wait_idle(kWait));
  EXPECT_EQ(stored_ts(server, "VIN1", "A", 2), 5);
  EXPECT_EQ(stored_ts(server, "VIN1", "A", 0), -1);

  RedisConfig wrong = parse_redis_url(server.url());
  wrong.password = "wrong";
  core::MetricsRegistry metrics2;
  RedisMirror refused(wrong, fast_options(), metrics2);
  auto loaded = refused.load_all();
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error(), make_error_code(errc::auth_failed));
}

TEST(RedisMirror, RedisDownAtStartL1KeepsWorkingAndTheMirrorCatchesUp) {
  RedisServer server;
  server.stop();
  core::MetricsRegistry metrics;
  Store store(metrics);
  RedisMirror mirror(parse_redis_url(server.url()), fast_options(), metrics);
  mirror.start();

  // 10 vehicles x 5 signals, each updated 20 times: only the latest per field stays pending.
  for (int round = 1; round <= 20; ++round) {
    std::vector<Signal> batch;
    for (int v = 0; v < 10; ++v) {
      for (int s = 0; s < 5; ++s) {
        batch.push_back(sig("VIN" + std::to_string(v), "S" + std::to_string(s), round * 100,
                            Value::int64(round)));
      }
    }
    const auto applied = store.apply_batch(batch);
    std::vector<Signal> changed;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (applied[i] == Applied::Newer) changed.push_back(batch[i]);
    }
    mirror.enqueue(changed);
  }
  EXPECT_EQ(store.signal_count(), 50u);
  EXPECT_EQ(store.get("VIN3", "S2")->value, Value::int64(20));
  EXPECT_EQ(mirror.pending(), 50u);
  EXPECT_FALSE(mirror.connected());
  EXPECT_EQ(metric(metrics, "teslasync_redis_up{client=\"mirror\"}"), 0);
  EXPECT_EQ(metric(metrics, "teslasync_redis_mirror_pending"), 50);
  EXPECT_FALSE(mirror.wait_idle(300ms));
  EXPECT_GT(mirror.stats().connect_failures, 0u);

  server.start();
  ASSERT_TRUE(wait_for([&] { return mirror.connected(); }, kWait, "the mirror to reconnect"));
  ASSERT_TRUE(mirror.wait_idle(kWait));
  EXPECT_EQ(mirror.pending(), 0u);
  EXPECT_EQ(metric(metrics, "teslasync_redis_mirror_pending"), 0);
  EXPECT_EQ(metric(metrics, "teslasync_redis_up{client=\"mirror\"}"), 1);
  for (int v = 0; v < 10; ++v) {
    for (int s = 0; s < 5; ++s) {
      EXPECT_EQ(stored_ts(server, "VIN" + std::to_string(v), "S" + std::to_string(s)), 2000);
    }
  }
  EXPECT_EQ(mirror.stats().written, 50u);
}

TEST(RedisMirror, RestartedRedisGetsTheWholeStateBack) {
  RedisServer server;
  core::MetricsRegistry metrics;
  Store store(metrics);
  RedisMirrorOptions o = fast_options();
  o.resync_from = &store;
  RedisMirror mirror(parse_redis_url(server.url()), o, metrics);
  ASSERT_TRUE(mirror.load_all());  // empty, but marks this Redis as synced
  mirror.start();
  for (int v = 0; v < 5; ++v) {
    const Signal s = sig("VIN" + std::to_string(v), "Soc", 100 + v, Value::float64(v));
    ASSERT_EQ(store.apply(s), Applied::Newer);
    mirror.enqueue(s);
  }
  ASSERT_TRUE(mirror.wait_idle(kWait));
  EXPECT_EQ(mirror.stats().resyncs, 0u);
  EXPECT_EQ(mirror.stats().written, 5u);

  server.stop();  // no persistence: the data is gone
  ASSERT_TRUE(wait_for([&] { return !mirror.connected(); }, kWait, "the mirror to notice"));
  // Changes during the outage, and one vehicle that does not change at all.
  const Signal during = sig("VIN1", "Soc", 500, Value::float64(42));
  store.apply(during);
  mirror.enqueue(during);
  server.start();
  ASSERT_TRUE(wait_for([&] { return mirror.connected(); }, kWait, "the mirror to reconnect"));
  ASSERT_TRUE(mirror.wait_idle(kWait));
  EXPECT_EQ(mirror.stats().resyncs, 1u);
  EXPECT_EQ(stored_ts(server, "VIN0", "Soc"), 100);  // unchanged, copied back from L1
  EXPECT_EQ(stored_ts(server, "VIN1", "Soc"), 500);
  EXPECT_EQ(stored_ts(server, "VIN4", "Soc"), 104);
}

// read_all() re-reads L2 while running (a replica catching up); unlike load_all() it must not
// mark a restarted Redis as synced, or the mirror would not copy L1 back into it.
TEST(RedisMirror, ReadAllDoesNotStopTheResyncOfARestartedRedis) {
  RedisServer server;
  core::MetricsRegistry metrics;
  Store store(metrics);
  store.apply(sig("VIN1", "Soc", 100, Value::float64(50)));
  RedisMirrorOptions o = fast_options();
  o.resync_from = &store;
  RedisMirror mirror(parse_redis_url(server.url()), o, metrics);
  ASSERT_TRUE(mirror.load_all());  // synced with this run of Redis

  server.stop();  // and a new run, without the data
  server.start();
  // Another writer (a replica) puts a value in; read_all sees it.
  ASSERT_EQ(server
                .command({"HSET", vehicle_key(kDefaultKeyPrefix, "VIN2"), "Soc",
                          encode_value(sig("VIN2", "Soc", 300, Value::float64(30)))})
                .integer,
            1);
  auto read = mirror.read_all();
  ASSERT_TRUE(read);
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ(read->front().vin, "VIN2");
  EXPECT_EQ(read->front().ts, 300);

  mirror.start();
  ASSERT_TRUE(wait_for([&] { return mirror.connected(); }, kWait, "the mirror to connect"));
  ASSERT_TRUE(mirror.wait_idle(kWait));
  EXPECT_EQ(mirror.stats().resyncs, 1u);
  EXPECT_EQ(stored_ts(server, "VIN1", "Soc"), 100);  // copied back from L1
}

TEST(RedisMirror, DownAtStartCopiesL1WhenRedisAppears) {
  RedisServer server;
  server.stop();
  core::MetricsRegistry metrics;
  Store store(metrics);
  // Warm from signal_log (here: by hand) because Redis was down for load_all().
  store.load(std::vector<Signal>{sig("VIN1", "Odometer", 100, Value::float64(1234.5))});
  RedisMirrorOptions o = fast_options();
  o.resync_from = &store;
  RedisMirror mirror(parse_redis_url(server.url()), o, metrics);
  ASSERT_FALSE(mirror.load_all());
  mirror.start();
  server.start();
  ASSERT_TRUE(wait_for([&] { return mirror.connected(); }, kWait, "the mirror to connect"));
  ASSERT_TRUE(mirror.wait_idle(kWait));
  EXPECT_EQ(stored_ts(server, "VIN1", "Odometer"), 100);
}

TEST(RedisMirror, FlushedScriptCacheIsReloaded) {
  RedisServer server;
  core::MetricsRegistry metrics;
  RedisMirror mirror(parse_redis_url(server.url()), fast_options(), metrics);
  mirror.start();
  mirror.enqueue(sig("VIN1", "A", 1, Value::int64(1)));
  ASSERT_TRUE(mirror.wait_idle(kWait));
  ASSERT_EQ(server.command({"SCRIPT", "FLUSH"}).type, RedisReply::Type::Status);
  mirror.enqueue(sig("VIN1", "A", 2, Value::int64(2)));
  ASSERT_TRUE(mirror.wait_idle(kWait));
  EXPECT_EQ(stored_ts(server, "VIN1", "A"), 2);
  EXPECT_EQ(mirror.stats().errors, 0u);
}

TEST(RedisMirror, AKeyOfAnotherTypeIsAnErrorForThatVehicleOnly) {
  RedisServer server;
  core::MetricsRegistry metrics;
  server.command({"SET", vehicle_key(kDefaultKeyPrefix, "BAD"), "not a hash"});
  RedisMirror mirror(parse_redis_url(server.url()), fast_options(), metrics);
  mirror.start();
  mirror.enqueue(std::vector<Signal>{sig("BAD", "A", 1, Value::int64(1)),
                                     sig("BAD", "B", 1, Value::int64(1)),
                                     sig("GOOD", "A", 1, Value::int64(1))});
  ASSERT_TRUE(mirror.wait_idle(kWait));
  EXPECT_EQ(mirror.stats().errors, 2u);
  EXPECT_EQ(stored_ts(server, "GOOD", "A"), 1);
  EXPECT_EQ(metric(metrics, "teslasync_redis_mirror_errors_total"), 2);
}

TEST(RedisMirror, LargeVehiclesAreSplitAcrossCalls) {
  RedisServer server;
  core::MetricsRegistry metrics;
  RedisMirrorOptions o = fast_options();
  o.max_fields_per_call = 7;
  RedisMirror mirror(parse_redis_url(server.url()), o, metrics);
  mirror.start();
  std::vector<Signal> batch;
  for (int s = 0; s < 100; ++s) {
    batch.push_back(sig("VIN1", "S" + std::to_string(s), 10 + s, Value::int64(s)));
  }
  mirror.enqueue(batch);
  ASSERT_TRUE(mirror.wait_idle(kWait));
  EXPECT_EQ(server.command({"HLEN", vehicle_key(kDefaultKeyPrefix, "VIN1")}).integer, 100);
  EXPECT_EQ(stored_ts(server, "VIN1", "S99"), 109);
}

TEST(RedisMirror, StopWritesWhatIsPending) {
  RedisServer server;
  core::MetricsRegistry metrics;
  auto mirror =
      std::make_unique<RedisMirror>(parse_redis_url(server.url()), fast_options(), metrics);
  mirror->start();
  ASSERT_TRUE(wait_for([&] { return mirror->connected(); }, kWait, "the mirror to connect"));
  std::vector<Signal> batch;
  for (int v = 0; v < 200; ++v) {
    batch.push_back(sig("VIN" + std::to_string(v), "A", 1, Value::int64(v)));
  }
  mirror->enqueue(batch);
  mirror->stop(10s);
  EXPECT_EQ(mirror->pending(), 0u);
  EXPECT_EQ(stored_ts(server, "VIN199", "A"), 1);
}

}  // namespace
}  // namespace ts::state::redis

// Outages of the servers around teslasync-api, with real processes (issue 3, "Tests"): Mosquitto
// restarted (without and with persistence, and under telemetry-server's stream), Redis down and
// back, PostgreSQL down and back. What every test checks through the API, Redis and /metrics:
// nothing the broker acknowledged to a publisher is lost, nothing is stored twice, and the API
// reports the outage while it lasts and recovers by itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "api_pipeline.hpp"
#include "signal/signal.hpp"
#include "support/ports.hpp"
#include "support/postgres_server.hpp"
#include "support/redis_server.hpp"
#include "support/wait_for.hpp"

namespace ts::integration {
namespace {

using namespace std::chrono_literals;
using testsupport::http_request;
using testsupport::wait_for;

constexpr std::int64_t kT0 = 1'700'000'000'000'000;  // event time of message 0, µs

std::string topic(const std::string& name) {
  return std::string("telemetry/") + kRegistered + "/v/" + name;
}

/// Event time and value of message `i` of a signal: 1 ms apart, value 1000 + i.
std::int64_t event_time(int i) { return kT0 + std::int64_t{i} * 1000; }
double value_of(int i) { return 1000 + i; }

/// Publishes messages [from, to) of `name` (see event_time/value_of).
void publish_range(Publisher& pub, const std::string& name, int from, int to) {
  for (int i = from; i < to; ++i) {
    pub.publish(topic(name), envelope(std::to_string(1000 + i), event_time(i)));
  }
}

/// Waits until signal_log holds `n` rows of `name`, then checks that they are exactly messages
/// [0, n): every event time once, each with its value.
::testing::AssertionResult stored_exactly(Pipeline& p, const std::string& name, int n,
                                          std::chrono::milliseconds timeout = 60s) {
  auto enough = wait_for(
      [&] { return history_count(p.api_port(), kRegistered, name) >= static_cast<std::size_t>(n); },
      timeout, std::to_string(n) + " rows of " + name + " in signal_log");
  if (!enough) {
    return enough << " (" << history_count(p.api_port(), kRegistered, name) << " stored)";
  }
  auto rows = history(p.api_port(), kRegistered, name);
  std::set<std::int64_t> seen;
  std::vector<std::string> problems;
  for (const auto& row : rows) {
    auto ts = signal::parse_time(row.at("ts").as_string());
    if (!ts) {
      problems.push_back("unparsable ts " + boost::json::serialize(row));
      continue;
    }
    if (!seen.insert(*ts).second) problems.push_back("duplicate " + boost::json::serialize(row));
    const auto i = (*ts - kT0) / 1000;
    if (*ts < kT0 || (*ts - kT0) % 1000 != 0 || i >= n) {
      problems.push_back("unexpected " + boost::json::serialize(row));
    } else if (row.at("value").to_number<double>() != value_of(static_cast<int>(i))) {
      problems.push_back("wrong value " + boost::json::serialize(row));
    }
  }
  if (rows.size() != static_cast<std::size_t>(n) || !problems.empty()) {
    auto failure = ::testing::AssertionFailure()
                   << rows.size() << " rows of " << name << ", expected exactly " << n;
    for (std::size_t k = 0; k < std::min<std::size_t>(problems.size(), 10); ++k) {
      failure << "\n  " << problems[k];
    }
    return failure;
  }
  return ::testing::AssertionSuccess();
}

bool mqtt_connected(Pipeline& p) {
  auto st = p.stage("mqtt");
  return !st.empty() && st.at("metrics").at("connected").as_bool();
}

unsigned readyz(Pipeline& p) {
  return http_request(p.api_port(), "GET", "/readyz", {}, {}, 5s).status;
}

/// L1's value of `name` as (event time µs, value); (0, NaN) when L1 does not hold it.
std::pair<std::int64_t, double> l1(Pipeline& p, const std::string& name) {
  auto state = p.state();
  const auto* s = state.at("signals").as_object().if_contains(name);
  if (!s) return {0, std::nan("")};
  return {signal_ts_us(state, name), s->at("value").to_number<double>()};
}

// ---------------------------------------------------------------------------------------------
// Mosquitto

// Without persistence a broker restart loses the API's session: the API has to notice, connect
// again and SUBSCRIBE on the fresh session by itself. Messages: before the restart (stored and
// acknowledged before the broker goes), during (published the moment the API is subscribed
// again: with a broker that lost the session, anything published before that has no subscriber
// and the broker drops it by MQTT's rules) and after. Every one is stored exactly once.
TEST(ApiOutage, MosquittoRestartWithoutPersistenceResubscribesAndLosesNothing) {
  Pipeline p;
  Publisher pub(p.broker().port());
  constexpr int kPhase = 1000;

  publish_range(pub, "Odometer", 0, kPhase);
  ASSERT_TRUE(pub.all_acked());
  ASSERT_TRUE(stored_exactly(p, "Odometer", kPhase));
  ASSERT_TRUE(wait_for([&] { return p.metric("teslasync_mqtt_unacked") == 0; }, 20s,
                       "every stored message acknowledged to the broker"));
  const double resets_before = p.metric("teslasync_mqtt_session_resets_total");
  const double subscribed_before =
      p.metric("teslasync_mqtt_subscription_attempts_total{result=\"ok\"}");

  const int pub_connects = pub.connects();
  p.broker().stop();
  ASSERT_TRUE(wait_for([&] { return !mqtt_connected(p); }, 30s, "the API sees the broker gone"));
  EXPECT_EQ(p.stage("mqtt").at("health").as_string(), "down");
  EXPECT_EQ(readyz(p), 503u);

  p.broker().start();
  ASSERT_TRUE(pub.wait_connected(pub_connects));
  ASSERT_TRUE(wait_for([&] { return readyz(p) == 200; }, 60s, "the API subscribed again"))
      << p.api().stderr_text();
  // The broker had no session for it: it noticed and subscribed on the new one.
  EXPECT_GE(p.metric("teslasync_mqtt_session_resets_total"), resets_before + 1);
  EXPECT_GE(p.metric("teslasync_mqtt_subscription_attempts_total{result=\"ok\"}"),
            subscribed_before + 1);
  auto mqtt = p.stage("mqtt");
  EXPECT_TRUE(mqtt.at("metrics").at("subscribed").as_bool());
  EXPECT_GE(mqtt.at("metrics").at("reconnects").to_number<double>(), 1);

  publish_range(pub, "Odometer", kPhase, 2 * kPhase);  // during: right after the re-subscription
  ASSERT_TRUE(pub.all_acked());
  ASSERT_TRUE(stored_exactly(p, "Odometer", 2 * kPhase));
  publish_range(pub, "Odometer", 2 * kPhase, 3 * kPhase);  // after
  ASSERT_TRUE(pub.all_acked());
  ASSERT_TRUE(stored_exactly(p, "Odometer", 3 * kPhase));
  auto [ts, value] = l1(p, "Odometer");
  EXPECT_EQ(ts, event_time(3 * kPhase - 1));
  EXPECT_EQ(value, value_of(3 * kPhase - 1));
  EXPECT_EQ(p.stage("mqtt").at("health").as_string(), "ok");
}

// With persistence the broker keeps the API's session across its restarts: what it had
// acknowledged to the publisher, delivered to the API and not yet got a PUBACK for, what it
// still queued, and what was published while the API was away all reach signal_log, once.
TEST(ApiOutage, MosquittoRestartWithPersistenceKeepsTheSessionAndItsQueue) {
  // Batches close by time only, after 2 s: the API holds what it received unacknowledged for
  // that long, so the broker restart below usually catches messages in that state.
  Pipeline p({.extra_env = {{"FLEET_TELEMETRY_BATCH_MS", "2000"},
                            {"FLEET_TELEMETRY_BATCH_MAX_MESSAGES", "1000000"}},
              .broker_persistence = true});
  Publisher pub(p.broker().port());
  constexpr int kPhase = 2000;

  // A burst, and the broker stops the moment it acknowledged the last message: the API may hold
  // some unacknowledged (they come again after the restart) and the broker may still queue some.
  publish_range(pub, "Odometer", 0, kPhase);
  ASSERT_TRUE(pub.all_acked());
  int pub_connects = pub.connects();
  p.broker().stop();
  ASSERT_TRUE(wait_for([&] { return !mqtt_connected(p); }, 30s, "the API sees the broker gone"));
  RecordProperty("unacked_when_the_broker_stopped",
                 std::to_string(p.metric("teslasync_mqtt_unacked")));
  // The API stops while the broker is down: it writes what it holds, but the acknowledgements
  // cannot reach the broker, which delivers those messages again.
  EXPECT_EQ(p.api().terminate(20s), 0) << p.api().stderr_text();

  // Published while the API is away: queued in its persistent session...
  p.broker().start();
  ASSERT_TRUE(pub.wait_connected(pub_connects));
  publish_range(pub, "Odometer", kPhase, 2 * kPhase);
  ASSERT_TRUE(pub.all_acked());
  // ...which survives another broker restart.
  pub_connects = pub.connects();
  p.broker().stop();
  p.broker().start();
  ASSERT_TRUE(pub.wait_connected(pub_connects));

  p.start_api();
  publish_range(pub, "Odometer", 2 * kPhase, 3 * kPhase);  // after
  ASSERT_TRUE(pub.all_acked());
  ASSERT_TRUE(stored_exactly(p, "Odometer", 3 * kPhase)) << p.broker().log_text();
  auto [ts, value] = l1(p, "Odometer");
  EXPECT_EQ(ts, event_time(3 * kPhase - 1));
  EXPECT_EQ(value, value_of(3 * kPhase - 1));
  ASSERT_TRUE(wait_for([&] { return p.metric("teslasync_mqtt_unacked") == 0; }, 20s,
                       "every message acknowledged"));
  RecordProperty("redelivered_rows_ignored",
                 std::to_string(p.metric("teslasync_storage_duplicate_signals_total")));
}

/// The newest event time of any signal of `vin` in L1 (0: none).
std::int64_t newest_event_time(Pipeline& p, const std::string& vin, std::string* name = nullptr) {
  auto state = p.state(vin);
  std::int64_t newest = 0;
  for (const auto& kv : state.at("signals").as_object()) {
    auto ts = signal::parse_time(kv.value().at("ts").as_string()).value_or(0);
    if (ts > newest) {
      newest = ts;
      if (name) *name = std::string(kv.key());
    }
  }
  return newest;
}

// vehicle-sim -> telemetry-server -> Mosquitto -> teslasync-api while the broker restarts:
// telemetry-server and the API both reconnect, and the vehicles' records flow again into L1 and
// signal_log.
TEST(ApiOutage, VehicleStreamFlowsAgainAfterBrokerRestart) {
  Pipeline p;
  auto sim = p.start_vehicles(2, 5, 120);
  ASSERT_TRUE(wait_for([&] { return newest_event_time(p, kRegistered) > 0; }, 30s,
                       "the vehicle's records in L1"))
      << p.server().stderr_text();

  p.broker().stop();
  ASSERT_TRUE(wait_for([&] { return !mqtt_connected(p); }, 30s, "the API sees the broker gone"));
  const auto before_restart = newest_event_time(p, kRegistered);
  p.broker().start();

  std::string name;
  std::int64_t newest = 0;
  ASSERT_TRUE(wait_for(
      [&] {
        newest = newest_event_time(p, kRegistered, &name);
        return newest > before_restart;
      },
      90s, "records newer than the restart in L1"))
      << "telemetry-server:\n"
      << p.server().stderr_text() << "\nteslasync-api:\n"
      << p.api().stderr_text();
  EXPECT_TRUE(sim.running()) << "vehicle-sim ended: " << sim.stderr_text();
  // ...and in signal_log, without any row twice.
  ASSERT_TRUE(wait_for(
      [&] {
        for (const auto& row : history(p.api_port(), kRegistered, name)) {
          if (signal::parse_time(row.at("ts").as_string()) == newest) return true;
        }
        return false;
      },
      30s, "the newest record in signal_log"));
  std::set<std::string> duplicates;
  EXPECT_GT(history_count(p.api_port(), kRegistered, name, &duplicates), 0u);
  EXPECT_TRUE(duplicates.empty()) << *duplicates.begin();
  EXPECT_EQ(p.stage("mqtt").at("health").as_string(), "ok");
  sim.terminate(5s);
}

// ---------------------------------------------------------------------------------------------
// Redis

/// The vehicle's Redis hash as field -> value document; empty when there is none.
std::map<std::string, boost::json::object> redis_hash(const testsupport::RedisServer& redis) {
  std::map<std::string, boost::json::object> out;
  auto reply =
      redis.command({"HGETALL", std::string("teslasync:vehicle:") + kRegistered + ":signals"});
  if (reply.type != testsupport::RedisReply::Type::Array) return out;
  for (std::size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
    out[reply.elements[i].str] = boost::json::parse(reply.elements[i + 1].str).as_object();
  }
  return out;
}

/// Empty when Redis holds exactly L1's state of the vehicle (event time, receive time, value);
/// else what differs.
std::string redis_vs_l1(Pipeline& p, const testsupport::RedisServer& redis) {
  auto state = p.state();
  auto hash = redis_hash(redis);
  std::string diff;
  const auto& signals = state.at("signals").as_object();
  if (hash.size() != signals.size()) {
    diff += "Redis holds " + std::to_string(hash.size()) + " fields, L1 " +
            std::to_string(signals.size()) + "; ";
  }
  for (const auto& kv : signals) {
    const std::string name(kv.key());
    const auto& s = kv.value();
    auto it = hash.find(name);
    if (it == hash.end()) {
      diff += name + " missing; ";
      continue;
    }
    const auto& h = it->second;
    const auto ts = signal::parse_time(s.at("ts").as_string()).value_or(-1);
    const auto received = signal::parse_time(s.at("received_at").as_string()).value_or(-1);
    if (h.at("ts").to_number<std::int64_t>() != ts ||
        h.at("r").to_number<std::int64_t>() != received ||
        boost::json::serialize(h.at("v")) != boost::json::serialize(s.at("value"))) {
      diff +=
          name + ": Redis " + boost::json::serialize(h) + " L1 " + boost::json::serialize(s) + "; ";
    }
  }
  return diff;
}

// Redis down: ingest goes on (signal_log gets every row, L1 follows), the pipeline status and
// /metrics say Redis is down, and once Redis is back, empty, the mirror copies L1 into it.
TEST(ApiOutage, RedisDownAndBackResyncsTheMirror) {
  testsupport::RedisServer redis;
  Pipeline p({.redis_url = redis.url()});
  Publisher pub(p.broker().port());
  constexpr int kPhase = 500;

  publish_range(pub, "Odometer", 0, kPhase);
  publish_range(pub, "BatteryLevel", 0, 10);  // not written during the outage: only a resync
                                              // brings it back into the restarted Redis
  ASSERT_TRUE(pub.all_acked());
  ASSERT_TRUE(stored_exactly(p, "Odometer", kPhase));
  ASSERT_TRUE(stored_exactly(p, "BatteryLevel", 10));
  ASSERT_TRUE(wait_for([&] { return redis_vs_l1(p, redis).empty(); }, 20s, "Redis mirrors L1"))
      << redis_vs_l1(p, redis);
  EXPECT_EQ(p.stage("redis").at("health").as_string(), "ok");
  EXPECT_EQ(p.metric("teslasync_redis_up{client=\"mirror\"}"), 1);
  const double failures_before =
      p.metric("teslasync_redis_connect_failures_total{client=\"mirror\"}");

  redis.stop();
  ASSERT_TRUE(wait_for([&] { return p.stage("redis").at("health").as_string() != "ok"; }, 20s,
                       "the pipeline status shows Redis unhealthy"));
  auto stage = p.stage("redis");
  EXPECT_EQ(stage.at("health").as_string(), "degraded");
  EXPECT_FALSE(stage.at("metrics").at("up").as_bool());
  EXPECT_EQ(p.metric("teslasync_redis_up{client=\"mirror\"}"), 0);
  const double failures_down =
      p.metric("teslasync_redis_connect_failures_total{client=\"mirror\"}");
  EXPECT_GT(failures_down, failures_before);

  // Ingest does not wait for Redis: new values, and a signal Redis never saw.
  publish_range(pub, "Odometer", kPhase, 2 * kPhase);
  publish_range(pub, "Soc", 0, kPhase);
  ASSERT_TRUE(pub.all_acked());
  ASSERT_TRUE(stored_exactly(p, "Odometer", 2 * kPhase));
  ASSERT_TRUE(stored_exactly(p, "Soc", kPhase));
  EXPECT_EQ(l1(p, "Odometer"),
            std::make_pair(event_time(2 * kPhase - 1), value_of(2 * kPhase - 1)));
  EXPECT_EQ(l1(p, "Soc"), std::make_pair(event_time(kPhase - 1), value_of(kPhase - 1)));
  // The mirror keeps trying, counted, and holds the backlog.
  ASSERT_TRUE(wait_for(
      [&] {
        return p.metric("teslasync_redis_connect_failures_total{client=\"mirror\"}") >
               failures_down;
      },
      30s, "the Redis error counter rising"));
  EXPECT_GT(p.stage("redis").at("metrics").at("pending").to_number<double>(), 0);
  EXPECT_EQ(p.stage("redis").at("health").as_string(), "degraded");

  redis.start();  // empty: persistence is off
  ASSERT_TRUE(
      wait_for([&] { return redis_vs_l1(p, redis).empty(); }, 60s, "Redis holds L1's state again"))
      << redis_vs_l1(p, redis) << p.api().stderr_text();
  EXPECT_GE(p.metric("teslasync_redis_mirror_resyncs_total"), 1);
  EXPECT_EQ(p.metric("teslasync_redis_up{client=\"mirror\"}"), 1);
  ASSERT_TRUE(wait_for([&] { return p.stage("redis").at("health").as_string() == "ok"; }, 20s,
                       "the Redis stage healthy again"));
  EXPECT_EQ(p.stage("redis").at("metrics").at("pending").to_number<double>(), 0);

  // And it follows new values again.
  publish_range(pub, "Odometer", 2 * kPhase, 2 * kPhase + 10);
  ASSERT_TRUE(pub.all_acked());
  ASSERT_TRUE(stored_exactly(p, "Odometer", 2 * kPhase + 10));
  ASSERT_TRUE(wait_for([&] { return redis_vs_l1(p, redis).empty(); }, 20s, "Redis follows L1"))
      << redis_vs_l1(p, redis);
  EXPECT_EQ(redis_hash(redis).at("Odometer").at("ts").to_number<std::int64_t>(),
            event_time(2 * kPhase + 9));
}

/// A second teslasync-api sharing `redis_url`, without MQTT ingest and with its own SQLite: it
/// learns what the first one ingests only through Redis (pub/sub events, the L2 hash).
testsupport::Process start_replica(const testsupport::TempDir& dir, std::uint16_t port,
                                   const std::string& redis_url) {
  auto replica = testsupport::Process::start(
      {.argv = {std::string(TS_BIN_DIR) + "/teslasync-api"},
       .env = {{"TESLASYNC_HTTP_ADDR", "127.0.0.1:" + std::to_string(port)},
               {"TESLASYNC_DATA_DIR", dir.file("data").string()},
               {"TESLASYNC_API_TOKEN", kToken},
               {"TESLASYNC_VEHICLES", kRegistered},
               {"FLEET_TELEMETRY_ENABLED", "false"},
               {"TESLASYNC_SSE_HEARTBEAT", "1s"},
               {"REDIS_URL", redis_url}},
       .output_dir = dir.path(),
       .name = "replica"});
  EXPECT_TRUE(
      wait_for([&] { return http_request(port, "GET", "/readyz", {}, {}, 2s).status == 200; }, 30s,
               "the replica ready"))
      << replica.stderr_text();
  return replica;
}

/// (event time, value) of `name` in the L1 of the API on `port`; (0, NaN) when it has none.
std::pair<std::int64_t, double> l1_at(std::uint16_t port, const std::string& name) {
  auto r = http_request(port, "GET", std::string("/api/v1/vehicles/") + kRegistered + "/state", {},
                        auth(), 5s);
  if (r.status != 200) return {0, std::nan("")};
  auto state = json_of(r);
  const auto* s = state.at("signals").as_object().if_contains(name);
  if (!s) return {0, std::nan("")};
  return {signal_ts_us(state, name), s->at("value").to_number<double>()};
}

// Two replicas share live state through Redis. Redis down and back: the replica that does not
// ingest ends up with the same latest state as the one that does, including what changed while
// Redis was away (its events were lost with the connection; the L2 hash has them again once the
// ingesting replica's mirror caught up), and live events flow between them again.
TEST(ApiOutage, RedisDownAndBackReplicasConverge) {
  testsupport::RedisServer redis;
  Pipeline p({.redis_url = redis.url()});
  testsupport::TempDir replica_dir("ts-api-replica");
  const auto replica_port = testsupport::free_port();
  auto replica = start_replica(replica_dir, replica_port, redis.url());
  Publisher pub(p.broker().port());
  constexpr int kPhase = 100;

  publish_range(pub, "Odometer", 0, kPhase);
  publish_range(pub, "Soc", 0, 10);
  ASSERT_TRUE(pub.all_acked());
  ASSERT_TRUE(stored_exactly(p, "Odometer", kPhase));
  ASSERT_TRUE(wait_for(
      [&] {
        return l1_at(replica_port, "Odometer").first == event_time(kPhase - 1) &&
               l1_at(replica_port, "Soc").first == event_time(9);
      },
      20s, "the replica's L1 follows over Redis"));

  redis.stop();
  ASSERT_TRUE(wait_for([&] { return p.stage("redis").at("health").as_string() != "ok"; }, 20s,
                       "Redis seen down"));
  publish_range(pub, "Odometer", kPhase, 2 * kPhase);
  publish_range(pub, "Soc", 10, 20);
  ASSERT_TRUE(pub.all_acked());
  ASSERT_TRUE(stored_exactly(p, "Odometer", 2 * kPhase));
  ASSERT_TRUE(stored_exactly(p, "Soc", 20));

  redis.start();
  ASSERT_TRUE(wait_for([&] { return redis_vs_l1(p, redis).empty(); }, 60s, "the mirror resynced"))
      << redis_vs_l1(p, redis);
  // What changed during the outage reaches the replica's L1.
  ASSERT_TRUE(wait_for(
      [&] {
        return l1_at(replica_port, "Odometer") == l1(p, "Odometer") &&
               l1_at(replica_port, "Soc") == l1(p, "Soc");
      },
      60s, "the replica's L1 equal to the ingesting one's"))
      << "replica Odometer ts " << l1_at(replica_port, "Odometer").first << ", expected "
      << event_time(2 * kPhase - 1) << "\n"
      << replica.stderr_text();

  // Live events flow between the replicas again, once both ends are connected to Redis.
  ASSERT_TRUE(wait_for([&] { return p.metric("teslasync_redis_up{client=\"publisher\"}") == 1; },
                       30s, "the ingesting replica publishes to Redis again"));
  ASSERT_TRUE(wait_for(
      [&] { return metric(replica_port, "teslasync_redis_up{client=\"subscriber\"}") == 1; }, 30s,
      "the replica subscribed to Redis again"));
  testsupport::SseClient sse(replica_port, "/api/v1/events", auth());
  ASSERT_TRUE(sse.wait([](const auto& ev) { return !ev.empty(); }, 10s)) << "no snapshot";
  publish_range(pub, "Odometer", 2 * kPhase, 2 * kPhase + 10);
  ASSERT_TRUE(pub.all_acked());
  ASSERT_TRUE(sse.wait(
      [&](const auto& ev) {
        for (const auto& [ts, value] : sse_changes(ev, kRegistered, "Odometer")) {
          if (signal::parse_time(ts) == event_time(2 * kPhase + 9)) return true;
        }
        return false;
      },
      30s))
      << "the replica did not stream the new values";
  EXPECT_EQ(l1_at(replica_port, "Odometer"), l1(p, "Odometer"));
  ASSERT_TRUE(stored_exactly(p, "Odometer", 2 * kPhase + 10));
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// PostgreSQL as signal_log, with room in the writer's queue for every batch of the outage (with
/// the default, ingest would pause reading and the rest would wait in the broker instead: also
/// correct, but then the API would not hold them all, which is what these tests look at).
ApiOptions outage_options(const testsupport::PostgresServer& pg) {
  return {.database_url = pg.url(), .extra_env = {{"TESLASYNC_WRITER_QUEUE", "10000"}}};
}

/// Publishes the first half, waits until it is stored and acknowledged, stops PostgreSQL,
/// publishes the second half (the broker acknowledges it) and checks that the API holds it
/// without acknowledging it while signal_log reports the outage. Returns the acks sent before.
double publish_across_database_outage(Pipeline& p, Publisher& pub, testsupport::PostgresServer& pg,
                                      int n) {
  publish_range(pub, "Odometer", 0, n / 2);
  EXPECT_TRUE(pub.all_acked());
  EXPECT_TRUE(stored_exactly(p, "Odometer", n / 2));
  EXPECT_TRUE(wait_for([&] { return p.metric("teslasync_mqtt_unacked") == 0; }, 20s,
                       "the first half acknowledged"));
  const double acks_before = p.metric("teslasync_mqtt_acks_sent_total");
  EXPECT_EQ(p.stage("signal_log").at("health").as_string(), "ok");

  pg.stop();
  publish_range(pub, "Odometer", n / 2, n);
  EXPECT_TRUE(pub.all_acked());
  // The API received them (L1 shows the newest at once) but acknowledges none while the
  // database is away.
  EXPECT_TRUE(wait_for([&] { return p.metric("teslasync_mqtt_messages_received_total") >= n; }, 30s,
                       "the API received the second half"));
  EXPECT_TRUE(wait_for([&] { return l1(p, "Odometer").first == event_time(n - 1); }, 10s,
                       "L1 shows the newest value"));
  EXPECT_TRUE(wait_for([&] { return p.stage("signal_log").at("health").as_string() == "down"; },
                       60s, "the pipeline status shows signal_log down"));
  auto stage = p.stage("signal_log");
  EXPECT_GT(stage.at("metrics").at("write_failures").to_number<double>(), 0);
  EXPECT_EQ(stage.at("metrics").at("queue_messages").to_number<double>(), n / 2);
  EXPECT_GT(p.metric("teslasync_ingest_write_failures_total"), 0);
  EXPECT_EQ(p.metric("teslasync_mqtt_acks_sent_total"), acks_before);
  EXPECT_EQ(p.metric("teslasync_mqtt_unacked"), n / 2);
  return acks_before;
}

// PostgreSQL down: the writer holds the batches and their acknowledgements and retries; once the
// server is back every message is stored exactly once and only then acknowledged.
TEST(ApiOutage, PostgresDownAndBackStoresEverythingOnce) {
  testsupport::PostgresServer pg;
  Pipeline p(outage_options(pg));
  Publisher pub(p.broker().port());
  constexpr int kMessages = 2000;

  const double acks_before = publish_across_database_outage(p, pub, pg, kMessages);
  if (HasFailure()) return;

  pg.start();
  ASSERT_TRUE(stored_exactly(p, "Odometer", kMessages)) << p.api().stderr_text();
  ASSERT_TRUE(wait_for([&] { return p.metric("teslasync_mqtt_unacked") == 0; }, 30s,
                       "the second half acknowledged once durable"));
  EXPECT_GE(p.metric("teslasync_mqtt_acks_sent_total"), acks_before + kMessages / 2);
  EXPECT_EQ(p.stage("signal_log").at("metrics").at("queue_messages").to_number<double>(), 0);
  EXPECT_EQ(l1(p, "Odometer"), std::make_pair(event_time(kMessages - 1), value_of(kMessages - 1)));
  ASSERT_TRUE(wait_for([&] { return p.stage("signal_log").at("health").as_string() == "ok"; }, 60s,
                       "the signal_log stage healthy again"));
}

// The proof that nothing was acknowledged while PostgreSQL was away: kill -9 the API then, start
// PostgreSQL and the API again, and the broker still has every message of the outage for it.
TEST(ApiOutage, PostgresDownThenApiKilledLosesNothing) {
  testsupport::PostgresServer pg;
  Pipeline p(outage_options(pg));
  Publisher pub(p.broker().port());
  constexpr int kMessages = 2000;

  publish_across_database_outage(p, pub, pg, kMessages);
  if (HasFailure()) return;

  ASSERT_EQ(::kill(p.api().pid(), SIGKILL), 0);
  ASSERT_TRUE(p.api().wait(10s).has_value());
  pg.start();
  p.start_api();
  ASSERT_TRUE(stored_exactly(p, "Odometer", kMessages)) << p.api().stderr_text();
  EXPECT_EQ(l1(p, "Odometer"), std::make_pair(event_time(kMessages - 1), value_of(kMessages - 1)));
  ASSERT_TRUE(wait_for([&] { return p.metric("teslasync_mqtt_unacked") == 0; }, 30s,
                       "the redelivered messages acknowledged"));
}

}  // namespace
}  // namespace ts::integration

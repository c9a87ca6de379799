// Edge input is untrusted (issue 9): one bad message from a vehicle or the broker must never stop
// ingest, freeze state, or leave L1, Redis and signal_log disagreeing. Real processes on
// 127.0.0.1: Mosquitto, teslasync-api, SQLite / PostgreSQL / Redis started by the test.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "api_pipeline.hpp"
#include "signal/signal.hpp"
#include "support/mosquitto_broker.hpp"
#include "support/ports.hpp"
#include "support/postgres_server.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/temp_dir.hpp"
#include "support/wait_for.hpp"

namespace ts::integration {
namespace {

using namespace std::chrono_literals;
using testsupport::http_request;
using testsupport::wait_for;

std::string topic(const std::string& rest) { return std::string("telemetry/") + kRegistered + "/" + rest; }

/// `bytes` random hex digits: incompressible, like the review's repro (a compressible name can
/// hide a btree limit behind TOAST compression).
std::string random_hex(std::size_t bytes) {
  std::mt19937_64 rng(std::random_device{}());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(bytes, '0');
  for (auto& c : out) c = kHex[rng() % 16];
  return out;
}

/// The value of `name` in L1 as (event time µs, value); (0, NaN) when L1 does not hold it.
std::pair<std::int64_t, double> live_value(Pipeline& p, const std::string& name) {
  auto state = p.state();
  const auto* s = state.at("signals").as_object().if_contains(name);
  if (!s) return {0, std::nan("")};
  return {signal_ts_us(state, name), s->at("value").to_number<double>()};
}

/// The dead letters (newest first) as JSON objects.
std::vector<boost::json::object> dead_letters(Pipeline& p) {
  std::vector<boost::json::object> out;
  auto dead = p.get("/api/v1/dead-letters?limit=1000");
  for (const auto& d : dead.at("items").as_array()) out.push_back(d.as_object());
  return out;
}

bool has_dead_letter(Pipeline& p, const std::string& topic_prefix, const std::string& reason_prefix) {
  for (const auto& d : dead_letters(p)) {
    if (std::string(d.at("topic").as_string()).starts_with(topic_prefix) &&
        std::string(d.at("reason").as_string()).starts_with(reason_prefix)) {
      return true;
    }
  }
  return false;
}

std::int64_t now_us() { return signal::now(); }

// ---------------------------------------------------------------------------------------------
// C1: a 7,000-byte alert name or error name is a dead letter; everything sent afterwards is
// stored (it stopped all PostgreSQL ingest for good, across restarts, before).

void overlong_names_do_not_stop_ingest(Pipeline& p) {
  Publisher pub(p.broker().port());
  const std::string name = random_hex(7000);
  pub.publish(topic("alerts/" + name + "/current"),
              R"({"Audiences":["Customer"],"StartedAt":"2026-12-07T10:00:00Z"})");
  pub.publish(topic("errors/" + name), R"({"Body":"b","CreatedAt":"2026-12-07T10:00:00Z"})");
  const auto t = now_us();
  pub.publish(topic("v/VehicleSpeed"), envelope("42", t));
  pub.publish(topic("v/Odometer"), envelope("43", t));
  ASSERT_TRUE(pub.all_acked());
  ASSERT_TRUE(wait_for([&] { return history_count(p.api_port(), kRegistered, "Odometer") == 1; },
                       30s, "values published after the long names stored"))
      << p.api().stderr_text();
  EXPECT_EQ(history_count(p.api_port(), kRegistered, "VehicleSpeed"), 1u);
  ASSERT_TRUE(wait_for(
      [&] {
        return has_dead_letter(p, topic("alerts/"), "too_long: alert name") &&
               has_dead_letter(p, topic("errors/"), "too_long: error name");
      },
      20s, "both long names kept as dead letters"));
  EXPECT_EQ(http_request(p.api_port(), "GET", "/readyz", {}, {}, 5s).status, 200u);
  EXPECT_NE(p.stage("signal_log").at("health").as_string(), "down");
  EXPECT_GE(p.metric("teslasync_ingest_name_rejections_total"), 2);
}

TEST(ApiEdge, OverlongNamesOnSqliteAreDeadLettersAndIngestGoesOn) {
  Pipeline p;
  overlong_names_do_not_stop_ingest(p);
}

TEST(ApiEdge, OverlongNamesOnPostgresAreDeadLettersAndIngestGoesOn) {
  testsupport::PostgresServer pg;
  Pipeline p({.database_url = pg.url()});
  overlong_names_do_not_stop_ingest(p);
}

// M2: signal names come from the Field enum; anything else is a dead letter, not a new series.
TEST(ApiEdge, SignalNamesOutsideTheFieldEnumAreDeadLetters) {
  Pipeline p;
  Publisher pub(p.broker().port());
  for (const char* name : {"123456", "NotAField", "zz_junk_1"}) pub.publish(topic(std::string("v/") + name), "1");
  pub.publish(topic("v/Soc"), "80");
  ASSERT_TRUE(pub.all_acked());
  ASSERT_TRUE(wait_for([&] { return history_count(p.api_port(), kRegistered, "Soc") == 1; }, 20s,
                       "Soc stored"));
  ASSERT_TRUE(wait_for([&] { return has_dead_letter(p, topic("v/zz_junk_1"), "unknown_field"); }, 20s,
                       "unknown names kept as dead letters"));
  auto signals = p.state().at("signals").as_object();
  EXPECT_EQ(signals.size(), 1u) << boost::json::serialize(signals);
  EXPECT_TRUE(signals.contains("Soc"));
}

// ---------------------------------------------------------------------------------------------
// H1: a value stamped 2099 must not hide the current ones, before and after a restart, with and
// without Redis.

constexpr std::int64_t k2099 = 4'070'908'800'000'000;  // 2099-01-01T00:00:00Z

void future_time_never_freezes_live_state(Pipeline& p) {
  Publisher pub(p.broker().port());
  pub.publish(topic("v/VehicleSpeed"), envelope("10", k2099));
  ASSERT_TRUE(pub.all_acked());
  ASSERT_TRUE(wait_for([&] { return history_count(p.api_port(), kRegistered, "VehicleSpeed") == 1; },
                       20s, "the 2099 row stored with its claimed time"));
  const auto t = now_us();
  pub.publish(topic("v/VehicleSpeed"), envelope("55", t));
  ASSERT_TRUE(pub.all_acked());
  ASSERT_TRUE(wait_for([&] { return history_count(p.api_port(), kRegistered, "VehicleSpeed") == 2; },
                       20s, "both rows stored"));
  ASSERT_TRUE(wait_for([&] { return live_value(p, "VehicleSpeed").second == 55; }, 20s,
                       "live state shows the current value"));
  EXPECT_EQ(live_value(p, "VehicleSpeed").first, t);
  EXPECT_GE(p.metric(R"(teslasync_state_apply_total{result="future"})"), 1);
  // The vehicle's state document says what was refused, for its diagnostics.
  auto clock = p.state().at("clock").as_object();
  EXPECT_EQ(clock.at("future_signals").to_number<int>(), 1) << boost::json::serialize(clock);

  ASSERT_EQ(p.api().terminate(10s), 0) << p.api().stderr_text();
  p.start_api();
  ASSERT_TRUE(wait_for([&] { return live_value(p, "VehicleSpeed").second == 55; }, 20s,
                       "after a restart, live state still shows the current value"));
  EXPECT_EQ(live_value(p, "VehicleSpeed").first, t);
}

TEST(ApiEdge, FutureEventTimeNeverFreezesLiveStateWithoutRedis) {
  Pipeline p;
  future_time_never_freezes_live_state(p);
}

TEST(ApiEdge, FutureEventTimeNeverFreezesLiveStateWithRedis) {
  testsupport::RedisServer redis;
  Pipeline p({.redis_url = redis.url()});
  future_time_never_freezes_live_state(p);
  // Redis never took the 2099 value either.
  auto reply = redis.command(
      {"HGET", std::string("teslasync:vehicle:") + kRegistered + ":signals", "VehicleSpeed"});
  ASSERT_EQ(reply.type, testsupport::RedisReply::Type::String);
  EXPECT_EQ(boost::json::parse(reply.str).at("v").to_number<double>(), 55);  // codec.hpp
}

// ---------------------------------------------------------------------------------------------
// M1: two values with one event time: L1, Redis and signal_log keep the same one (the first),
// also after a restart warmed from Redis and one warmed from signal_log.

TEST(ApiEdge, SameTimeConflictsAgreeAcrossL1RedisAndSignalLogAfterRestarts) {
  testsupport::RedisServer redis;
  testsupport::PostgresServer pg;
  Pipeline p({.database_url = pg.url(), .redis_url = redis.url()});
  Publisher pub(p.broker().port());
  const auto t = now_us();
  pub.publish(topic("v/Odometer"), envelope("100", t));
  ASSERT_TRUE(pub.all_acked());
  ASSERT_TRUE(wait_for([&] { return history_count(p.api_port(), kRegistered, "Odometer") == 1; },
                       20s, "the first value stored"));
  pub.publish(topic("v/Odometer"), envelope("200", t));
  ASSERT_TRUE(pub.all_acked());
  ASSERT_TRUE(wait_for(
      [&] { return p.metric(R"(teslasync_state_apply_total{result="conflict"})") >= 1; }, 20s,
      "the conflict counted"));
  auto redis_value = [&] {
    auto reply = redis.command(
        {"HGET", std::string("teslasync:vehicle:") + kRegistered + ":signals", "Odometer"});
    return reply.type == testsupport::RedisReply::Type::String
               ? boost::json::parse(reply.str).at("v").to_number<double>()  // codec.hpp
               : std::nan("");
  };
  auto stored_value = [&] {
    auto rows = history(p.api_port(), kRegistered, "Odometer");
    return rows.size() == 1 ? rows[0].at("value").to_number<double>() : std::nan("");
  };
  ASSERT_TRUE(wait_for([&] { return redis_value() == 100; }, 10s, "Redis holds the first value"));
  EXPECT_EQ(live_value(p, "Odometer").second, 100);
  EXPECT_EQ(stored_value(), 100);
  EXPECT_EQ(p.state().at("clock").at("same_time_conflicts").to_number<int>(), 1);

  // Restart warmed from Redis.
  ASSERT_EQ(p.api().terminate(10s), 0);
  p.start_api();
  EXPECT_EQ(live_value(p, "Odometer").second, 100);
  // Restart warmed from signal_log (an empty Redis knows nothing: the API falls back to it).
  ASSERT_EQ(p.api().terminate(10s), 0);
  redis.command({"FLUSHALL"});
  p.start_api();
  EXPECT_EQ(live_value(p, "Odometer").second, 100);
  EXPECT_EQ(stored_value(), 100);
}

// ---------------------------------------------------------------------------------------------
// M6: start-up failing half way (the HTTP port taken) while the subscriber already delivers a
// backlog into ingest exits cleanly with a message (a use-after-free before; run under ASan).

TEST(ApiEdge, StartUpWithTheHttpPortTakenExitsCleanly) {
  testsupport::TempDir dir("ts-api-edge");
  testsupport::MosquittoBroker broker;
  {
    Publisher pub(broker.port());
    // Retained messages: the broker delivers them all the moment the API subscribes.
    for (int i = 0; i < 2000; ++i) {
      pub.publish_retained("telemetry/VIN" + std::to_string(i) + "/v/Soc", "1");
    }
    ASSERT_TRUE(pub.all_acked());
  }
  // Hold the port: listening, so the API's bind fails.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto api = testsupport::Process::start(
        {.argv = {std::string(TS_BIN_DIR) + "/teslasync-api"},
         .env = {{"TESLASYNC_HTTP_ADDR", "127.0.0.1:" + std::to_string(port)},
                 {"TESLASYNC_DATA_DIR", dir.file("data").string()},
                 {"TESLASYNC_API_TOKEN", kToken},
                 {"FLEET_TELEMETRY_MQTT_BROKER", "127.0.0.1:" + std::to_string(broker.port())},
                 {"FLEET_TELEMETRY_MQTT_CLIENT_ID", "edge-api-" + std::to_string(attempt)},
                 {"FLEET_TELEMETRY_BATCH_MS", "1"}},
         .output_dir = dir.path(),
         .name = "api-" + std::to_string(attempt)});
    auto status = api.wait(60s);
    ASSERT_TRUE(status.has_value()) << "teslasync-api did not exit";
    const std::string err = api.stderr_text();
    EXPECT_EQ(*status, 1) << err;
    EXPECT_NE(err.find("cannot listen on 127.0.0.1:" + std::to_string(port)), std::string::npos) << err;
    EXPECT_EQ(err.find("AddressSanitizer"), std::string::npos) << err;
    EXPECT_EQ(err.find("runtime error"), std::string::npos) << err;
  }
  ::close(fd);
}

// ---------------------------------------------------------------------------------------------
// M4: the data directory and everything secret in it are owner-only.

TEST(ApiEdge, DataDirectoryAndItsFilesAreOwnerOnly) {
  testsupport::TempDir dir("ts-api-edge");
  testsupport::MosquittoBroker broker;
  const auto port = testsupport::free_port();
  // No TESLASYNC_API_TOKEN: the first start writes the admin token into the data directory.
  auto api = testsupport::Process::start(
      {.argv = {std::string(TS_BIN_DIR) + "/teslasync-api"},
       .env = {{"TESLASYNC_HTTP_ADDR", "127.0.0.1:" + std::to_string(port)},
               {"TESLASYNC_DATA_DIR", dir.file("data").string()},
               {"FLEET_TELEMETRY_MQTT_BROKER", "127.0.0.1:" + std::to_string(broker.port())}},
       .output_dir = dir.path()});
  ASSERT_TRUE(wait_for([&] { return http_request(port, "GET", "/readyz", {}, {}, 2s).status == 200; },
                       30s, "teslasync-api ready"))
      << api.stderr_text();
  const auto data = dir.file("data");
  auto mode = [](const std::filesystem::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return -1;
    return static_cast<int>(st.st_mode & 07777);
  };
  EXPECT_EQ(mode(data), 0700);
  EXPECT_EQ(mode(data / "admin-token"), 0600);
  EXPECT_EQ(mode(data / "teslasync.db"), 0600);
  for (const char* extra : {"teslasync.db-wal", "teslasync.db-shm"}) {
    if (std::filesystem::exists(data / extra)) {
      EXPECT_EQ(mode(data / extra), 0600) << extra;
    }
  }
  EXPECT_EQ(api.terminate(10s), 0) << api.stderr_text();
}

}  // namespace
}  // namespace ts::integration

// End to end with real processes: vehicle-sim -> telemetry-server -> Mosquitto -> teslasync-api,
// and the same values in the SSE stream, in signal_log (through the API; SQLite and PostgreSQL)
// and in Redis. Plus: acknowledged means durable (kill -9 and redelivery without duplicates),
// unknown VINs and undecodable payloads land in dead letters, every endpoint but the three
// public ones needs a token, and the public-key endpoint never serves a private key.
#include <gtest/gtest.h>

#include <csignal>

#include "api_pipeline.hpp"
#include "pki/keypair.hpp"
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

void expect_stream_matches_storage_and_state(Pipeline& p) {
  testsupport::SseClient sse(p.api_port(), "/api/v1/events", auth());
  ASSERT_TRUE(sse.wait([](const auto& ev) { return !ev.empty(); }, 10s)) << "no snapshot";
  EXPECT_EQ(sse.status(), 200u);
  EXPECT_EQ(sse.events().front().event, "snapshot");

  auto report = p.drive(2, 4, 3);
  ASSERT_GT(report.at("acked").to_number<double>(), 0);

  // The stream shows the registered vehicle's signals and nothing of the unregistered one.
  ASSERT_TRUE(sse.wait(
      [](const auto& ev) { return !sse_changes(ev, kRegistered, "VehicleSpeed").empty(); }, 20s));
  // Wait until signal_log holds every VehicleSpeed the stream showed (durable comes later).
  std::map<std::string, std::string> stream_values;
  ASSERT_TRUE(wait_for(
      [&] {
        stream_values = sse_changes(sse.events(), kRegistered, "VehicleSpeed");
        auto rows = history(p.api_port(), kRegistered, "VehicleSpeed");
        std::set<std::string> stored;
        for (const auto& r : rows) stored.insert(std::string(r.at("ts").as_string()));
        for (const auto& [ts, v] : stream_values) {
          if (!stored.contains(ts)) return false;
        }
        return true;
      },
      20s, "every streamed VehicleSpeed in signal_log"));
  // Same values, and no row twice.
  auto rows = history(p.api_port(), kRegistered, "VehicleSpeed");
  std::map<std::string, std::string> stored;
  for (const auto& r : rows) {
    auto ts = std::string(r.at("ts").as_string());
    EXPECT_FALSE(stored.contains(ts)) << "duplicate row at " << ts;
    stored[ts] = boost::json::serialize(r.at("value"));
    EXPECT_EQ(r.at("source").as_string(), "stream");
  }
  for (const auto& [ts, v] : stream_values) EXPECT_EQ(stored[ts], v) << ts;

  // L1 holds the newest of them.
  auto state = json_of(http_request(p.api_port(), "GET",
                                    std::string("/api/v1/vehicles/") + kRegistered + "/state", {}, auth()));
  const auto& speed = state.at("signals").at("VehicleSpeed");
  EXPECT_EQ(std::string(speed.at("ts").as_string()), stored.rbegin()->first);
  EXPECT_EQ(boost::json::serialize(speed.at("value")), stored.rbegin()->second);

  for (const auto& e : sse.events()) {
    if (e.event == "signal_change") {
      EXPECT_EQ(e.data.find(kUnregistered), std::string::npos);
    }
  }
  // The unregistered vehicle's messages are dead letters.
  auto dead = json_of(http_request(p.api_port(), "GET",
                                   std::string("/api/v1/dead-letters?vin=") + kUnregistered, {}, auth()));
  EXPECT_GT(dead.at("total").to_number<double>(), 0);
  EXPECT_EQ(dead.at("items").as_array().at(0).at("reason").as_string(), "unregistered_vin");
}

TEST(ApiEndToEnd, SqliteStreamStateAndHistoryAgree) {
  Pipeline p;
  expect_stream_matches_storage_and_state(p);
}

// telemetry-server's mqtt.record_message: one message per V record, the same rows and state.
TEST(ApiEndToEnd, RecordMessagesGiveTheSameStreamStateAndHistory) {
  Pipeline p({.record_message = true});
  expect_stream_matches_storage_and_state(p);
}

TEST(ApiEndToEnd, PostgresAndRedisAgree) {
  testsupport::PostgresServer pg;
  testsupport::RedisServer redis;
  Pipeline p({.database_url = pg.url(), .redis_url = redis.url()});
  expect_stream_matches_storage_and_state(p);
  // Redis (L2) holds the same latest VehicleSpeed as L1.
  auto state = json_of(http_request(p.api_port(), "GET",
                                    std::string("/api/v1/vehicles/") + kRegistered + "/state", {}, auth()));
  auto l1_ts = signal_ts_us(state);
  ASSERT_TRUE(wait_for(
      [&] {
        auto reply = redis.command({"HGET", std::string("teslasync:vehicle:") + kRegistered + ":signals",
                                    "VehicleSpeed"});
        if (reply.type != testsupport::RedisReply::Type::String) return false;
        auto v = boost::json::parse(reply.str).as_object();
        return v.at("ts").to_number<std::int64_t>() == l1_ts;
      },
      10s, "Redis holds L1's latest VehicleSpeed"));
}

// A message is acknowledged to the broker only once it is durable, and redelivery is idempotent:
// kill -9 the API in the middle of a stream, start it again, and every message is stored once.
TEST(ApiEndToEnd, KilledApiLosesAndDuplicatesNothing) {
  Pipeline p;
  constexpr int kMessages = 3000;
  const std::string topic = std::string("telemetry/") + kRegistered + "/v/Odometer";
  Publisher pub(p.broker().port());
  auto odometer = [](int i) { return envelope(std::to_string(1000 + i), 1'700'000'000'000'000 + i * 1000); };
  for (int i = 0; i < kMessages / 2; ++i) pub.publish(topic, odometer(i));
  ASSERT_TRUE(wait_for([&] { return history_count(p.api_port(), kRegistered, "Odometer") > 0; }, 30s,
                       "some messages durable"));
  ASSERT_EQ(::kill(p.api().pid(), SIGKILL), 0);
  ASSERT_TRUE(p.api().wait(10s).has_value());
  for (int i = kMessages / 2; i < kMessages; ++i) pub.publish(topic, odometer(i));
  ASSERT_TRUE(pub.all_acked());
  p.start_api();
  std::set<std::string> duplicates;
  ASSERT_TRUE(wait_for(
      [&] { return history_count(p.api_port(), kRegistered, "Odometer") >= kMessages; }, 60s,
      "every message stored"));
  EXPECT_EQ(history_count(p.api_port(), kRegistered, "Odometer", &duplicates),
            static_cast<std::size_t>(kMessages));
  EXPECT_TRUE(duplicates.empty());
  // L1 came back warm and holds the newest value.
  auto state = json_of(http_request(p.api_port(), "GET",
                                    std::string("/api/v1/vehicles/") + kRegistered + "/state", {}, auth()));
  EXPECT_EQ(state.at("signals").at("Odometer").at("value").to_number<double>(), 1000 + kMessages - 1);
}

TEST(ApiEndToEnd, UndecodablePayloadsAndOutOfOrderInput) {
  Pipeline p;
  Publisher pub(p.broker().port());
  const std::string base = std::string("telemetry/") + kRegistered;
  pub.publish(base + "/v/Soc", "not json");
  pub.publish(base + "/v/Soc", R"({"value":80,"ts":"2026-01-01T00:00:02Z"})");
  pub.publish(base + "/v/Soc", R"({"value":70,"ts":"2026-01-01T00:00:01Z"})");  // older: history only
  pub.publish(base + "/v/Soc", R"({"value":80,"ts":"2026-01-01T00:00:02Z"})");  // replay
  ASSERT_TRUE(pub.all_acked());
  ASSERT_TRUE(wait_for([&] { return history_count(p.api_port(), kRegistered, "Soc") == 2; }, 20s,
                       "two distinct Soc rows"));
  auto state = json_of(http_request(p.api_port(), "GET",
                                    std::string("/api/v1/vehicles/") + kRegistered + "/state", {}, auth()));
  EXPECT_EQ(state.at("signals").at("Soc").at("value").to_number<double>(), 80);
  ASSERT_TRUE(wait_for(
      [&] {
        auto dead = json_of(http_request(p.api_port(), "GET", "/api/v1/dead-letters", {}, auth()));
        for (const auto& d : dead.at("items").as_array()) {
          if (d.at("payload").is_string() && d.at("payload").as_string() == "not json") {
            return std::string(d.at("reason").as_string()).starts_with("undecodable");
          }
        }
        return false;
      },
      20s, "the undecodable payload is a dead letter"));
}

TEST(ApiEndToEnd, EveryEndpointButThePublicOnesNeedsAToken) {
  Pipeline p;
  const std::string vin = kRegistered;
  for (auto [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/api/v1/vehicles"},
           {"POST", "/api/v1/vehicles"},
           {"GET", "/api/v1/vehicles/" + vin + "/state"},
           {"GET", "/api/v1/vehicles/" + vin + "/signals"},
           {"GET", "/api/v1/vehicles/" + vin + "/stream"},
           {"GET", "/api/v1/vehicles/" + vin + "/alerts"},
           {"GET", "/api/v1/vehicles/" + vin + "/connectivity"},
           {"GET", "/api/v1/vehicles/" + vin + "/errors"},
           {"GET", "/api/v1/events"},
           {"GET", "/api/v1/dead-letters"},
           {"GET", "/api/v1/tesla/fleet-telemetry/errors"},
           {"POST", "/api/v1/tesla/fleet-telemetry/errors/refresh"},
           {"GET", "/api/v1/tesla/fleet-telemetry/error-vins"},
           {"POST", "/api/v1/tesla/fleet-telemetry/error-vins/refresh"},
           {"GET", "/api/v1/system/telemetry-pipeline"},
           {"GET", "/metrics"}}) {
    EXPECT_EQ(http_request(p.api_port(), method, path).status, 401u) << method << " " << path;
    EXPECT_EQ(http_request(p.api_port(), method, path, {}, {{"Authorization", "Bearer wrong"}}).status,
              401u)
        << method << " " << path;
  }
  EXPECT_EQ(http_request(p.api_port(), "GET", "/healthz").status, 200u);
  EXPECT_EQ(http_request(p.api_port(), "GET", "/readyz").status, 200u);
  EXPECT_EQ(http_request(p.api_port(), "GET", "/.well-known/appspecific/com.tesla.3p.public-key.pem").status,
            404u);  // none configured
  auto pipeline = json_of(http_request(p.api_port(), "GET", "/api/v1/system/telemetry-pipeline", {}, auth()));
  EXPECT_EQ(pipeline.at("stages").as_array().size(), 7u);
  auto reg = http_request(p.api_port(), "POST", "/api/v1/vehicles", R"({"vin":"5YJ3E1EA7KF000199","name":"x"})",
                          auth());
  EXPECT_EQ(reg.status, 201u) << reg.body;
  EXPECT_EQ(http_request(p.api_port(), "POST", "/api/v1/vehicles", R"({"vin":"no spaces"})", auth()).status,
            422u);
}

TEST(ApiEndToEnd, PublicKeyIsServedAndAPrivateKeyIsRefused) {
  testsupport::TempDir keys("ts-api-keys");
  pki::write_key_pair(keys.file("private.pem"), keys.file("public.pem"), false);
  {
    Pipeline p({.public_key_file = keys.file("public.pem").string()});
    auto r = http_request(p.api_port(), "GET", "/.well-known/appspecific/com.tesla.3p.public-key.pem");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.header("Content-Type"), "application/x-pem-file");
    EXPECT_NE(r.body.find("-----BEGIN PUBLIC KEY-----"), std::string::npos);
    EXPECT_EQ(r.body.find("PRIVATE"), std::string::npos);
  }
  auto api = testsupport::Process::start(
      {.argv = {std::string(TS_BIN_DIR) + "/teslasync-api"},
       .env = {{"TESLASYNC_DATA_DIR", keys.file("data").string()},
               {"TESLASYNC_HTTP_ADDR", "127.0.0.1:" + std::to_string(testsupport::free_port())},
               {"FLEET_TELEMETRY_ENABLED", "false"},
               {"TESLA_PUBLIC_KEY_FILE", keys.file("private.pem").string()}},
       .output_dir = keys.path()});
  auto code = api.wait(20s);
  ASSERT_TRUE(code) << "started with a private key";
  EXPECT_NE(*code, 0);
  EXPECT_NE(api.stderr_text().find("PRIVATE key"), std::string::npos) << api.stderr_text();
}

}  // namespace
}  // namespace ts::integration

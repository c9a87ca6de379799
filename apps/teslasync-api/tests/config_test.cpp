#include "config.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

namespace ts::api {
namespace {

using namespace std::chrono_literals;

Config load(std::map<std::string, std::string> env) {
  return load_config([&env](std::string_view name) -> std::optional<std::string> {
    auto it = env.find(std::string(name));
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
}

TEST(Config, EmbeddedDefaultsNeedNoVariable) {
  auto c = load({});
  EXPECT_EQ(c.http_host, "127.0.0.1");
  EXPECT_EQ(c.http_port, 8080);
  EXPECT_EQ(c.data_dir, "./data");
  EXPECT_TRUE(c.database_url.empty());
  EXPECT_TRUE(c.redis_url.empty());
  EXPECT_TRUE(c.telemetry_enabled);
  EXPECT_EQ(c.mqtt_host, "127.0.0.1");
  EXPECT_EQ(c.mqtt_port, 1883);
  EXPECT_EQ(c.topic_base, "telemetry");
  EXPECT_EQ(c.stale_timeout, 15min);
  EXPECT_EQ(c.fallback_poll_interval, 5min);
  EXPECT_EQ(c.asleep_backoff, 5min);
  EXPECT_EQ(c.batch_window, 100ms);
  EXPECT_EQ(c.batch_max_messages, 256u);
}

TEST(Config, ParsesTheContractVariables) {
  auto c = load({{"TESLASYNC_HTTP_ADDR", "0.0.0.0:9000"},
                 {"FLEET_TELEMETRY_MQTT_BROKER", "mqtts://broker.example:8884"},
                 {"FLEET_TELEMETRY_STALE_TIMEOUT", "1h30m"},
                 {"FLEET_TELEMETRY_FALLBACK_POLL_INTERVAL", "0"},
                 {"FLEET_TELEMETRY_ASLEEP_BACKOFF", "10s"},
                 {"FLEET_TELEMETRY_BATCH_MS", "250"},
                 {"TESLASYNC_VEHICLES", " VIN1, VIN2 ,,"},
                 {"FLEET_TELEMETRY_ENABLED", "false"}});
  EXPECT_EQ(c.http_host, "0.0.0.0");
  EXPECT_EQ(c.http_port, 9000);
  EXPECT_TRUE(c.mqtt_tls);
  EXPECT_EQ(c.mqtt_host, "broker.example");
  EXPECT_EQ(c.mqtt_port, 8884);
  EXPECT_EQ(c.stale_timeout, 90min);
  EXPECT_EQ(c.fallback_poll_interval, 0ms);
  EXPECT_EQ(c.asleep_backoff, 10s);
  EXPECT_EQ(c.batch_window, 250ms);
  EXPECT_EQ(c.vehicles, (std::vector<std::string>{"VIN1", "VIN2"}));
  EXPECT_FALSE(c.telemetry_enabled);
}

TEST(Config, InvalidValuesNameTheVariable) {
  auto error_of = [](std::map<std::string, std::string> env) {
    try {
      load(env);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of({{"FLEET_TELEMETRY_BATCH_MAX_MESSAGES", "lots"}}),
            "FLEET_TELEMETRY_BATCH_MAX_MESSAGES=\"lots\": must be an integer in 1..1000000");
  EXPECT_NE(error_of({{"FLEET_TELEMETRY_STALE_TIMEOUT", "15 minutes"}}).find("FLEET_TELEMETRY_STALE_TIMEOUT"),
            std::string::npos);
  EXPECT_EQ(error_of({{"FLEET_TELEMETRY_ASLEEP_BACKOFF", "0"}}),
            "FLEET_TELEMETRY_ASLEEP_BACKOFF=\"0\": must be 1s..30m");
  EXPECT_EQ(error_of({{"FLEET_TELEMETRY_ASLEEP_BACKOFF", "1h"}}),
            "FLEET_TELEMETRY_ASLEEP_BACKOFF=\"1h\": must be 1s..30m");
  EXPECT_NE(error_of({{"TESLASYNC_HTTP_ADDR", "host:99999"}}).find("TESLASYNC_HTTP_ADDR"),
            std::string::npos);
  EXPECT_NE(error_of({{"TESLASYNC_API_TOKEN", "short"}}).find("at least 16"), std::string::npos);
  EXPECT_NE(error_of({{"TESLA_FLEET_API_BASE_URL", "http://127.0.0.1:8443"}}).find("TESLA_CLIENT_ID"),
            std::string::npos);
  EXPECT_NE(error_of({{"FLEET_TELEMETRY_TOPIC_BASE", "a/#"}}).find("FLEET_TELEMETRY_TOPIC_BASE"),
            std::string::npos);
}

// L6: TESLASYNC_VEHICLES follows the one VIN rule (signal/vin.hpp) and is checked at start-up.
TEST(Config, VehiclesFollowTheVinRuleAndNameTheVariable) {
  auto error_of = [](std::string value) {
    try {
      load({{"TESLASYNC_VEHICLES", value}});
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of("VIN1, 5YJ3E1EA7KF000199, vin00000000000001"), "no error");
  EXPECT_EQ(error_of("VIN1,WITH-DASH"),
            "TESLASYNC_VEHICLES=\"VIN1,WITH-DASH\": \"WITH-DASH\" is not a VIN (1-32 letters and digits)");
  EXPECT_NE(error_of("VIN1,has space").find("TESLASYNC_VEHICLES"), std::string::npos);
  EXPECT_NE(error_of(std::string(33, 'A')).find("is not a VIN"), std::string::npos);
  EXPECT_EQ(error_of(std::string(32, 'A')), "no error");
}

TEST(Config, Durations) {
  EXPECT_EQ(parse_duration("250ms", 1s), 250ms);
  EXPECT_EQ(parse_duration("2h", 1s), 2h);
  EXPECT_EQ(parse_duration("90", 1s), 90s);
  EXPECT_FALSE(parse_duration("", 1s));
  EXPECT_FALSE(parse_duration("5d", 1s));
  EXPECT_FALSE(parse_duration("-5s", 1s));
}

// docs/teslasync-api.md carries the generated table between two markers; it must match the code.
TEST(Config, DocsListEveryVariable) {
  std::ifstream in(std::string(TS_SOURCE_DIR) + "/docs/teslasync-api.md");
  ASSERT_TRUE(in) << "docs/teslasync-api.md missing";
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  const std::string begin = "<!-- BEGIN GENERATED ENVIRONMENT TABLE -->\n";
  const std::string end = "<!-- END GENERATED ENVIRONMENT TABLE -->";
  auto b = doc.find(begin), e = doc.find(end);
  ASSERT_NE(b, std::string::npos);
  ASSERT_NE(e, std::string::npos);
  EXPECT_EQ(doc.substr(b + begin.size(), e - b - begin.size()), environment_markdown())
      << "regenerate with: build/bin/teslasync-api --print-env-markdown";
}

}  // namespace
}  // namespace ts::api

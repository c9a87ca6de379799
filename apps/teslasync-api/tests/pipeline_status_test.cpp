#include "pipeline_status.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace ts::api {
namespace {

using namespace std::chrono_literals;

boost::json::object stage(const boost::json::value& doc, std::string_view name) {
  for (const auto& st : doc.at("stages").as_array()) {
    if (st.at("stage").as_string() == name) return st.as_object();
  }
  ADD_FAILURE() << "no stage " << name;
  return {};
}

PipelineSnapshot healthy() {
  PipelineSnapshot s;
  s.now_us = 1'700'000'000'000'000;
  s.stale_timeout = 15min;
  s.registered_vehicles = 2;
  s.mqtt_connected = s.mqtt_subscribed = true;
  s.mqtt_broker = "127.0.0.1:1883";
  s.last_message_age_seconds = 0.5;
  s.database = "sqlite";
  s.queue_capacity = 64;
  s.append_rate = 100;
  s.polling_configured = true;
  return s;
}

TEST(PipelineStatus, HealthyPipelineIsOkAndDisabledStagesSayWhy) {
  auto doc = boost::json::parse(evaluate(healthy()));
  EXPECT_EQ(doc.at("health").as_string(), "ok");
  EXPECT_EQ(doc.at("stages").as_array().size(), 7u);
  auto redis = stage(doc, "redis");
  EXPECT_EQ(redis.at("health").as_string(), "disabled");
  EXPECT_NE(redis.at("reason").as_string().find("REDIS_URL"), boost::json::string::npos);
  EXPECT_EQ(stage(doc, "mqtt").at("metrics").at("broker").as_string(), "127.0.0.1:1883");
}

TEST(PipelineStatus, EachFailureShowsInItsStage) {
  auto s = healthy();
  s.mqtt_connected = false;
  auto doc = boost::json::parse(evaluate(s));
  EXPECT_EQ(doc.at("health").as_string(), "down");
  EXPECT_EQ(stage(doc, "mqtt").at("health").as_string(), "down");

  s = healthy();
  s.last_message_age_seconds = 3600;
  EXPECT_EQ(stage(boost::json::parse(evaluate(s)), "mqtt").at("health").as_string(), "degraded");

  s = healthy();
  s.paused = true;
  EXPECT_EQ(stage(boost::json::parse(evaluate(s)), "signal_log").at("health").as_string(), "degraded");

  s = healthy();
  s.write_failures_recent = 3;
  s.append_rate = 0;
  EXPECT_EQ(stage(boost::json::parse(evaluate(s)), "signal_log").at("health").as_string(), "down");

  s = healthy();
  s.redis_configured = true;
  s.redis_up = false;
  EXPECT_EQ(stage(boost::json::parse(evaluate(s)), "redis").at("health").as_string(), "degraded");

  s = healthy();
  s.dead_letters_recent = 1;
  EXPECT_EQ(stage(boost::json::parse(evaluate(s)), "decode").at("health").as_string(), "degraded");
}

TEST(RateMeter, RateOverTheWindow) {
  RateMeter m(10s);
  EXPECT_EQ(m.rate(), 0);
  m.sample(0, 0);
  m.sample(50, 5'000'000);
  EXPECT_DOUBLE_EQ(m.rate(), 10);
  m.sample(250, 15'000'000);  // the first sample falls out of the window
  EXPECT_DOUBLE_EQ(m.rate(), 20);
  EXPECT_DOUBLE_EQ(m.increase(), 200);
}

}  // namespace
}  // namespace ts::api

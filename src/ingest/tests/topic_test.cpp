#include "ingest/topic.hpp"

#include <gtest/gtest.h>

namespace ts::ingest {
namespace {

TEST(ParseTopic, EveryPublishedKind) {
  auto t = parse_topic("telemetry", "telemetry/5YJ3E1EA7JF000000/v/VehicleSpeed");
  EXPECT_EQ(t.kind, TopicKind::Signal);
  EXPECT_EQ(t.vin, "5YJ3E1EA7JF000000");
  EXPECT_EQ(t.name, "VehicleSpeed");
  EXPECT_EQ(parse_topic("telemetry", "telemetry/V/v/999").name, "999");
  t = parse_topic("test/topic", "test/topic/V/alerts/ChargePortFault/current");
  EXPECT_EQ(t.kind, TopicKind::AlertCurrent);
  EXPECT_EQ(t.name, "ChargePortFault");
  EXPECT_EQ(parse_topic("telemetry", "telemetry/V/alerts/A1/history").kind, TopicKind::AlertHistory);
  t = parse_topic("telemetry", "telemetry/V/errors/can/bus");
  EXPECT_EQ(t.kind, TopicKind::Error);
  EXPECT_EQ(t.name, "can/bus");
  EXPECT_EQ(parse_topic("telemetry", "telemetry/V/connectivity").kind, TopicKind::Connectivity);
  t = parse_topic("telemetry", "telemetry/5YJ3E1EA7JF000000/v");
  EXPECT_EQ(t.kind, TopicKind::Record);
  EXPECT_EQ(t.vin, "5YJ3E1EA7JF000000");
}

TEST(ParseTopic, AnythingElseIsUnknown) {
  for (auto topic : {"telemetry", "telemetry/", "telemetry/V", "telemetry//v/X", "telemetry/V/v/",
                     "telemetry/V/v/a/b", "telemetry/V/alerts/A", "telemetry/V/alerts//current",
                     "telemetry/V/errors/", "telemetry/V/other/X", "telemetryx/V/v/X",
                     "other/V/v/X", "telemetry/V/connectivity/x"}) {
    EXPECT_EQ(parse_topic("telemetry", topic).kind, TopicKind::Unknown) << topic;
  }
}

TEST(SubscriptionFilters, CoverEveryKind) {
  auto f = subscription_filters("telemetry");
  EXPECT_EQ(f, (std::vector<std::string>{"telemetry/+/v/+", "telemetry/+/v", "telemetry/+/alerts/#",
                                         "telemetry/+/errors/#", "telemetry/+/connectivity"}));
}

}  // namespace
}  // namespace ts::ingest

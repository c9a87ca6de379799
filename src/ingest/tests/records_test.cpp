#include "ingest/records.hpp"

#include <gtest/gtest.h>

namespace ts::ingest {

using signal::format_time;
namespace {

// Payloads as recorded in shared/vectors/reference/*.mqtt.txt.
TEST(ParseAlerts, CurrentAndHistoryAsPublished) {
  auto cur = parse_alerts("VIN1", "ChargePortFault",
                          R"({"Audiences":["Customer","ServiceFix"],"StartedAt":"2023-11-14T22:13:20Z"})",
                          false, 7);
  ASSERT_TRUE(cur);
  ASSERT_EQ(cur->size(), 1u);
  EXPECT_EQ((*cur)[0].started_at, 1'700'000'000'000'000);
  EXPECT_FALSE((*cur)[0].ended_at);
  EXPECT_EQ((*cur)[0].audiences_json, R"(["Customer","ServiceFix"])");
  EXPECT_EQ((*cur)[0].received_at, 7);

  auto hist = parse_alerts("VIN1", "A1",
                           R"([{"Audiences":["Customer"],"EndedAt":"2023-11-14T21:43:20Z","StartedAt":"2023-11-14T21:13:20Z"},{"Audiences":null}])",
                           true, 7);
  ASSERT_TRUE(hist);
  ASSERT_EQ(hist->size(), 2u);
  EXPECT_TRUE((*hist)[0].ended_at);
  EXPECT_EQ((*hist)[1].started_at, 7);  // absent: the receive time
  EXPECT_EQ((*hist)[1].audiences_json, "[]");
}

TEST(ParseAlerts, RejectsOtherShapes) {
  EXPECT_FALSE(parse_alerts("V", "A", "[1]", true, 0));
  EXPECT_FALSE(parse_alerts("V", "A", "{}", true, 0));
  EXPECT_FALSE(parse_alerts("V", "A", R"({"StartedAt":"never"})", false, 0));
  EXPECT_FALSE(parse_alerts("V", "A", "nope", false, 0));
}

TEST(ParseConnectivity, AsPublished) {
  auto c = parse_connectivity(
      "VIN1",
      R"({"ConnectionId":"00000000-0000-4000-8000-000000000949","CreatedAt":"2026-11-24T16:00:19Z","Status":"CONNECTED"})",
      5);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, "CONNECTED");
  EXPECT_EQ(format_time(c->ts), "2026-11-24T16:00:19.000000Z");
  EXPECT_FALSE(parse_connectivity("V", R"({"Status":"CONNECTED"})", 0));
}

TEST(ParseVehicleError, AsPublished) {
  auto e = parse_vehicle_error("VIN1", "E1",
                               R"({"Body":"b","CreatedAt":"2023-11-14T22:13:20Z","Tags":{"a":"2","z":"1"}})", 3);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->body, "b");
  EXPECT_EQ(e->tags_json, R"({"a":"2","z":"1"})");
  EXPECT_EQ(e->created_at, 1'700'000'000'000'000);
  auto bare = parse_vehicle_error("VIN1", "can/bus", R"({"Body":"x","Tags":null})", 3);
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->tags_json, "{}");
  EXPECT_EQ(bare->created_at, 3);  // absent: the receive time
  EXPECT_FALSE(parse_vehicle_error("V", "E", R"({"Body":5})", 0));
}

}  // namespace
}  // namespace ts::ingest

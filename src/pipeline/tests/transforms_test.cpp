#include "pipeline/transforms.hpp"

#include <gtest/gtest.h>

namespace ts::pipeline {
namespace {

TEST(Transforms, LocationStringsThatParse) {
  struct Case {
    const char* text;
    double lat, lon;
  } cases[] = {
      {"(37.412374 N, 122.145867 W)", 37.412374, -122.145867},
      {"(37.412374 S, 122.145867 E)", -37.412374, 122.145867},
      {"(37.4  N,  122.1 W)", 37.4, -122.1},
      {"(37 N, 122 W)", 37, -122},
      {"(1e2 N, -5 E)", 100, -5},
      {"( 37.4 N, 122.1 W)", 37.4, -122.1},
      {"(37.4 N, 122.1 W) trailing", 37.4, -122.1},
  };
  for (const auto& c : cases) {
    auto loc = parse_location(c.text);
    ASSERT_TRUE(loc) << c.text;
    EXPECT_DOUBLE_EQ(loc->latitude, c.lat) << c.text;
    EXPECT_DOUBLE_EQ(loc->longitude, c.lon) << c.text;
  }
}

TEST(Transforms, LocationStringsThatStayStrings) {
  for (const char* text :
       {"(37.412374 X, 122.145867 W)", "(37.4N,122.1W)", "(37.4 N,122.1 W)", "(37.4 N , 122.1 W)",
        "(37.4 N, 122.1 W )", "(37.4 NE, 122.1 W)", "(37.4 N, 122.1 W", "(37.4 n, 122.1 w)",
        "Abhishek is NOT a location", "", "(", "(1e999 N, 1 W)"}) {
    EXPECT_FALSE(parse_location(text)) << text;
  }
}

TEST(Transforms, ScientificNotationRewritten) {
  struct Case {
    const char *in, *out;
  } cases[] = {
      {"1.1920928955078125e-05", "0.00001"}, {"1.23e-9", "0.00000"}, {"1.5E3", "1500.00000"},
      {"-2.5e-3", "-0.00250"},  {".5e1", "5.00000"},    {"5.e2", "500.00000"},
      {"+1.0e1", "10.00000"},   {"-1.0e-9", "-0.00000"}, {"2.5e-5", "0.00002"},
      {"1.5e-5", "0.00001"},    {"1.0e-50", "0.00000"},  {"1.5E+2", "150.00000"},
  };
  for (const auto& c : cases) {
    auto out = normalize_scientific(c.in);
    ASSERT_TRUE(out) << c.in;
    EXPECT_EQ(*out, c.out) << c.in;
  }
}

TEST(Transforms, ScientificNotationLeftAlone) {
  for (const char* text : {"1e-5", "0.00000012", "0.03", "3", "3.5e38", "1.0e50", "abc1.0e1",
                           "1.0e", ".e1", "1.0e+", "3.4028236e38", "1e5"}) {
    EXPECT_FALSE(normalize_scientific(text)) << text;
  }
}

TEST(Transforms, VehicleDataGetsCertificateVinAndFirstLocationOnly) {
  namespace vd = wire::vehicle_data;
  vd::Payload p;
  p.set_vin("SPOOF");
  auto* d1 = p.add_data();
  d1->set_key(vd::Location);
  d1->mutable_value()->set_string_value("(37.412374 N, 122.145867 W)");
  auto* d2 = p.add_data();
  d2->set_key(vd::Location);
  d2->mutable_value()->set_string_value("(1 N, 2 W)");
  auto* d3 = p.add_data();
  d3->set_key(vd::DestinationLocation);
  d3->mutable_value()->set_string_value("(1 N, 2 W)");
  auto* d4 = p.add_data();
  d4->set_key(vd::BrakePedalPos);
  d4->mutable_value()->set_string_value("1.23e-9");
  transform_vehicle_data(p, "42");
  EXPECT_EQ(p.vin(), "42");
  EXPECT_TRUE(p.data(0).value().has_location_value());
  EXPECT_DOUBLE_EQ(p.data(0).value().location_value().longitude(), -122.145867);
  EXPECT_EQ(p.data(1).value().string_value(), "(1 N, 2 W)");
  EXPECT_EQ(p.data(2).value().string_value(), "(1 N, 2 W)");
  EXPECT_EQ(p.data(3).value().string_value(), "0.00000");
}

TEST(Transforms, AlertMillisecondTimestampsFixed) {
  namespace va = wire::vehicle_alerts;
  va::VehicleAlerts alerts;
  auto* a = alerts.add_alerts();
  a->mutable_started_at()->set_seconds(1692044886337);
  a->mutable_ended_at()->set_seconds(1600000000);
  a->mutable_ended_at()->set_nanos(337);
  transform_alerts(alerts, "VIN1");
  EXPECT_EQ(alerts.vin(), "VIN1");
  EXPECT_EQ(a->started_at().seconds(), 1692044886);
  EXPECT_EQ(a->started_at().nanos(), 337000000);
  EXPECT_EQ(a->ended_at().seconds(), 1600000000);
  EXPECT_EQ(a->ended_at().nanos(), 337);
}

}  // namespace
}  // namespace ts::pipeline

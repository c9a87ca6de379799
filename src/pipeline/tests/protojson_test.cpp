#include "pipeline/protojson.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "wire/payload.hpp"

namespace ts::pipeline {
namespace {

namespace vd = wire::vehicle_data;
namespace va = wire::vehicle_alerts;
namespace ve = wire::vehicle_error;
namespace vc = wire::vehicle_connectivity;

std::string pj(const google::protobuf::Message& m) {
  std::string s;
  EXPECT_TRUE(append_protojson(s, m));
  return s;
}

TEST(Protojson, UnitTestShape) {
  vd::Payload p;
  auto* d = p.add_data();
  d->set_key(vd::VehicleName);
  d->mutable_value()->set_string_value("cybertruck");
  p.set_vin("42");
  EXPECT_EQ(pj(p),
            R"({"data":[{"key":"VehicleName","value":{"stringValue":"cybertruck"}}],"createdAt":null,"vin":"42","isResend":false})");
}

TEST(Protojson, VerifiedVehicleExample) {
  vd::Payload p;
  auto add = [&](int key) {
    auto* d = p.add_data();
    d->set_key(static_cast<vd::Field>(key));
    return d;
  };
  add(vd::VehicleSpeed)->mutable_value()->set_string_value("12.3");
  auto* loc = add(vd::Location)->mutable_value()->mutable_location_value();
  loc->set_latitude(37.412374);
  loc->set_longitude(-122.145867);
  add(vd::Gear)->mutable_value()->set_shift_state_value(vd::ShiftStateP);
  add(vd::Odometer)->mutable_value()->set_double_value(1234.5);
  add(vd::MilesSinceReset)->mutable_value()->set_long_value(77);
  add(vd::BatteryLevel)->mutable_value()->set_invalid(true);
  add(999)->mutable_value();
  add(vd::DoorState);
  p.mutable_created_at()->set_seconds(1700000000);
  p.mutable_created_at()->set_nanos(123000000);
  p.set_vin("5YJ3E1EA7JF000000");
  p.set_is_resend(true);
  EXPECT_EQ(pj(p),
            R"({"data":[{"key":"VehicleSpeed","value":{"stringValue":"12.3"}},{"key":"Location","value":{"locationValue":{"latitude":37.412374,"longitude":-122.145867}}},{"key":"Gear","value":{"shiftStateValue":"ShiftStateP"}},{"key":"Odometer","value":{"doubleValue":1234.5}},{"key":"MilesSinceReset","value":{"longValue":"77"}},{"key":"BatteryLevel","value":{"invalid":true}},{"key":999,"value":{}},{"key":"DoorState","value":null}],"createdAt":"2023-11-14T22:13:20.123Z","vin":"5YJ3E1EA7JF000000","isResend":true})");
}

TEST(Protojson, AlertsErrorsConnectivity) {
  va::VehicleAlerts a;
  auto* a1 = a.add_alerts();
  a1->set_name("A1");
  a1->add_audiences(va::Customer);
  a1->add_audiences(va::ServiceFix);
  a1->mutable_started_at()->set_seconds(1700000000);
  a1->mutable_started_at()->set_nanos(500000);
  a.add_alerts()->set_name("A2");
  a.mutable_created_at()->set_seconds(1700000000);
  a.set_vin("VIN1");
  EXPECT_EQ(pj(a),
            R"({"alerts":[{"name":"A1","audiences":["Customer","ServiceFix"],"startedAt":"2023-11-14T22:13:20.000500Z","endedAt":null},{"name":"A2","audiences":[],"startedAt":null,"endedAt":null}],"createdAt":"2023-11-14T22:13:20Z","vin":"VIN1"})");

  ve::VehicleErrors e;
  auto* e1 = e.add_errors();
  e1->mutable_created_at()->set_seconds(1700000000);
  e1->mutable_created_at()->set_nanos(1);
  e1->set_name("E1");
  (*e1->mutable_tags())["z"] = "1";
  (*e1->mutable_tags())["a"] = "2";
  e1->set_body("b");
  e.add_errors()->set_name("E2");
  e.set_vin("VIN1");
  EXPECT_EQ(pj(e),
            R"({"errors":[{"createdAt":"2023-11-14T22:13:20.000000001Z","name":"E1","tags":{"a":"2","z":"1"},"body":"b"},{"createdAt":null,"name":"E2","tags":{},"body":""}],"createdAt":null,"vin":"VIN1"})");

  vc::VehicleConnectivity c;
  c.set_vin("VIN1");
  c.set_connection_id("8f0c0a6e-2f0e-4b8a-9d53-0d7c9f1c2f11");
  c.set_status(vc::CONNECTED);
  c.mutable_created_at()->set_seconds(1700000000);
  c.mutable_created_at()->set_nanos(120000000);
  c.set_network_interface("wifi");
  EXPECT_EQ(pj(c),
            R"({"vin":"VIN1","connectionId":"8f0c0a6e-2f0e-4b8a-9d53-0d7c9f1c2f11","status":"CONNECTED","createdAt":"2023-11-14T22:13:20.120Z","networkInterface":"wifi"})");
}

TEST(Protojson, SpecialNumbersAndUnknownEnum) {
  vd::Value v;
  v.set_float_value(std::nanf(""));
  EXPECT_EQ(pj(v), R"({"floatValue":"NaN"})");
  v.set_float_value(1e-7f);
  EXPECT_EQ(pj(v), R"({"floatValue":1e-7})");
  v.set_shift_state_value(static_cast<vd::ShiftState>(99));
  EXPECT_EQ(pj(v), R"({"shiftStateValue":99})");
  v.mutable_time_value()->set_hour(7);
  EXPECT_EQ(pj(v), R"({"timeValue":{"hour":7,"minute":0,"second":0}})");
}

TEST(Protojson, TimestampOutOfRangeCannotBeEncoded) {
  vd::Payload p;
  p.mutable_created_at()->set_seconds(253402300800);
  std::string s;
  EXPECT_FALSE(append_protojson(s, p));
  p.mutable_created_at()->set_seconds(0);
  p.mutable_created_at()->set_nanos(-1);
  EXPECT_FALSE(append_protojson(s, p));
}

}  // namespace
}  // namespace ts::pipeline

#include "signal/signal.hpp"

#include <gtest/gtest.h>

namespace ts::signal {
namespace {

Value decode(std::string_view field, std::string_view json) {
  auto v = decode_json_value(field, json);
  EXPECT_TRUE(v) << json;
  return v ? *v : Value{};
}

// One case per JSON shape the reference vectors show on <base>/<VIN>/v/<Field>.
TEST(DecodeJsonValue, EveryPublishedShape) {
  EXPECT_EQ(decode("VehicleName", R"("My Tesla")"), Value::string("My Tesla"));
  EXPECT_EQ(decode("BatteryLevel", "75.5"), Value::float64(75.5));
  EXPECT_EQ(decode("ChargeAmps", "-42"), Value::int64(-42));
  EXPECT_EQ(decode("Locked", "true"), Value::boolean(true));
  EXPECT_EQ(decode("Gear", R"("ShiftStateD")"), Value::enumeration("ShiftStateD"));
  EXPECT_EQ(decode("BatteryLevel", "null"), Value::invalid());
  EXPECT_EQ(decode("VehicleSpeed", "{}"), Value::invalid());
  EXPECT_EQ(decode("ScheduledDepartureTime", R"("07:05:09")"), Value::time_of_day("07:05:09"));
  EXPECT_EQ(decode("SoftwareUpdateScheduledStartTime", R"("-1:100:00")").kind, Kind::Time);
  EXPECT_EQ(decode("BatteryLevel", R"("-0.00500")"), Value::string("-0.00500"));

  auto loc = decode("Location", R"({"latitude":-33.8688,"longitude":151.2093})");
  EXPECT_EQ(loc.kind, Kind::Location);
  EXPECT_DOUBLE_EQ(loc.number, -33.8688);
  EXPECT_DOUBLE_EQ(loc.number2, 151.2093);
  EXPECT_EQ(to_json(loc), R"({"latitude":-33.8688,"longitude":151.2093})");

  auto doors = decode("DoorState", R"({"DriverFront":true,"DriverRear":false,"PassengerFront":false,"PassengerRear":false,"TrunkFront":false,"TrunkRear":true})");
  EXPECT_EQ(doors.kind, Kind::Doors);
  EXPECT_EQ(decode("TpmsHardWarnings", R"({"front_left":true,"semi_rear_axle_right_2":true})").kind,
            Kind::Tires);
  EXPECT_EQ(decode("TpmsSoftWarnings", "{}"), Value::tires("{}"));
}

TEST(DecodeJsonValue, RejectsWhatNoValueTypeLooksLike) {
  EXPECT_EQ(decode_json_value("X", "not json").error(), make_error_code(Errc::not_json));
  EXPECT_EQ(decode_json_value("X", "[1,2]").error(), make_error_code(Errc::unsupported_value));
  EXPECT_EQ(decode_json_value("X", R"({"a":1})").error(), make_error_code(Errc::unsupported_value));
  EXPECT_EQ(decode_json_value("X", "").error(), make_error_code(Errc::not_json));
}

TEST(DecodeMqttPayload, BareValueHasNoEventTime) {
  auto d = decode_mqtt_payload("Soc", "80.5");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->value, Value::float64(80.5));
  EXPECT_FALSE(d->event_time);
}

TEST(DecodeMqttPayload, EnvelopeCarriesEventTime) {
  auto d = decode_mqtt_payload("Gear", R"({"value":"ShiftStateP","ts":"2026-11-24T16:00:18.123456789Z"})");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->value, Value::enumeration("ShiftStateP"));
  ASSERT_TRUE(d->event_time);
  EXPECT_EQ(format_time(*d->event_time), "2026-11-24T16:00:18.123456Z");
}

TEST(DecodeMqttPayload, EnvelopeWithBadTimeIsRejected) {
  for (auto p : {R"({"value":1})", R"({"value":1,"ts":5})", R"({"value":1,"ts":"yesterday"})",
                 R"({"value":1,"ts":"2026-11-24T16:00:18Z","x":1})"}) {
    auto d = decode_mqtt_payload("Soc", p);
    ASSERT_FALSE(d) << p;
    EXPECT_EQ(d.error(), make_error_code(Errc::bad_event_time)) << p;
  }
}

TEST(DecodeRecordPayload, EveryFieldWithTheRecordsTime) {
  auto r = decode_record_payload(
      R"({"ts":"2026-11-24T16:00:18.123456Z","data":{"Gear":"ShiftStateD","Soc":80.5,)"
      R"("Location":{"latitude":37.5,"longitude":-122.25},"TimeToFullCharge":null}})");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(format_time(r->event_time), "2026-11-24T16:00:18.123456Z");
  ASSERT_EQ(r->fields.size(), 4u);
  EXPECT_EQ(r->fields[0].name, "Gear");
  EXPECT_EQ(r->fields[0].value, Value::enumeration("ShiftStateD"));
  EXPECT_EQ(r->fields[1].value, Value::float64(80.5));
  EXPECT_EQ(r->fields[2].value, Value::location(37.5, -122.25));
  EXPECT_EQ(r->fields[3].value, Value::invalid());
}

TEST(DecodeRecordPayload, AllOrNothing) {
  for (auto [payload, want] : std::vector<std::pair<const char*, Errc>>{
           {"{", Errc::not_json},
           {"[1]", Errc::bad_record},
           {R"({"data":{"Soc":1}})", Errc::bad_event_time},
           {R"({"ts":"soon","data":{"Soc":1}})", Errc::bad_event_time},
           {R"({"ts":"2026-11-24T16:00:18Z"})", Errc::bad_record},
           {R"({"ts":"2026-11-24T16:00:18Z","data":{}})", Errc::bad_record},
           {R"({"ts":"2026-11-24T16:00:18Z","data":[1]})", Errc::bad_record},
           {R"({"ts":"2026-11-24T16:00:18Z","data":{"Soc":1},"x":1})", Errc::bad_record},
           {R"({"ts":"2026-11-24T16:00:18Z","data":{"Soc":1,"Bad":[1]}})", Errc::unsupported_value}}) {
    auto r = decode_record_payload(payload);
    ASSERT_FALSE(r) << payload;
    EXPECT_EQ(r.error(), make_error_code(want)) << payload;
  }
}

TEST(Time, FormatsAndParsesRfc3339) {
  EXPECT_EQ(format_time(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_time(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(parse_time("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_time("2026-11-24T17:00:18.5+01:00"), parse_time("2026-11-24T16:00:18.500Z"));
  auto t = parse_time("2023-11-14T22:13:20.000001Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, 1'700'000'000'000'001);
  EXPECT_EQ(parse_time(format_time(*t)), t);
  EXPECT_EQ(format_time(1'795'536'018'123'456), "2026-11-24T16:00:18.123456Z");
  EXPECT_EQ(format_time(253'402'300'799'999'999), "9999-12-31T23:59:59.999999Z");
  EXPECT_EQ(format_time(253'402'300'800'000'000), "10000-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_time(951'782'400'000'000), "2000-02-29T00:00:00.000000Z");  // a leap day
  for (auto bad : {"", "2023-11-14", "2023-11-14T22:13:20", "2023-13-14T22:13:20Z",
                   "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20Zjunk", "2023-11-14T22:13:20+0100"}) {
    EXPECT_FALSE(parse_time(bad)) << bad;
  }
}

TEST(Kind, NamesRoundTrip) {
  for (int i = 0; i <= kMaxKind; ++i) {
    auto k = *kind_from_int(i);
    EXPECT_EQ(parse_kind_name(kind_name(k)), k);
  }
  EXPECT_FALSE(kind_from_int(kMaxKind + 1));
  EXPECT_EQ(parse_source_name(source_name(Source::Poll)), Source::Poll);
}

}  // namespace
}  // namespace ts::signal

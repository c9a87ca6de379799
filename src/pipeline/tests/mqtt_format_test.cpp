#include "pipeline/mqtt_format.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace ts::pipeline {
namespace {

namespace vd = wire::vehicle_data;
namespace va = wire::vehicle_alerts;
namespace ve = wire::vehicle_error;
namespace vc = wire::vehicle_connectivity;

std::vector<std::string> lines(const MqttBatch& b) {
  std::vector<std::string> out;
  for (const auto& m : b.messages) out.push_back(std::string(m.topic) + "\t" + std::string(m.payload));
  std::sort(out.begin(), out.end());
  return out;
}

Record v_record(vd::Payload p, std::string vin = "TEST123") {
  Record r;
  r.type = wire::RecordType::V;
  r.vin = std::move(vin);
  r.message = std::move(p);
  return r;
}

TEST(MqttFormat, WorkedExampleFromTheReferenceUnitTest) {
  vd::Payload p;
  auto add = [&](vd::Field key) {
    auto* d = p.add_data();
    d->set_key(key);
    return d->mutable_value();
  };
  add(vd::VehicleName)->set_string_value("My Tesla");
  add(vd::TimeToFullCharge)->set_invalid(true);
  auto* loc = add(vd::Location)->mutable_location_value();
  loc->set_latitude(37.7749);
  loc->set_longitude(-122.4194);
  add(vd::BatteryLevel)->set_float_value(75.5f);
  auto batch = format_mqtt(v_record(p), "test/topic");
  EXPECT_EQ(batch.error, MqttFormatError::None);
  EXPECT_EQ(lines(batch), (std::vector<std::string>{
                              "test/topic/TEST123/v/BatteryLevel\t75.5",
                              "test/topic/TEST123/v/Location\t{\"latitude\":37.7749,\"longitude\":-122.4194}",
                              "test/topic/TEST123/v/TimeToFullCharge\tnull",
                              "test/topic/TEST123/v/VehicleName\t\"My Tesla\"",
                          }));
}

TEST(MqttFormat, LaterDatumWithSameKeyWinsAndUnknownKeyUsesNumber) {
  vd::Payload p;
  auto* a = p.add_data();
  a->set_key(vd::VehicleSpeed);
  a->mutable_value()->set_string_value("10");
  auto* b = p.add_data();
  b->set_key(vd::VehicleSpeed);
  b->mutable_value()->set_string_value("20");
  auto* c = p.add_data();
  c->set_key(static_cast<vd::Field>(999));
  c->mutable_value()->set_string_value("x");
  auto batch = format_mqtt(v_record(p, "V1"), "t");
  EXPECT_EQ(lines(batch), (std::vector<std::string>{"t/V1/v/999\t\"x\"", "t/V1/v/VehicleSpeed\t\"20\""}));
}

TEST(MqttFormat, NonFiniteValueFailsTheWholeRecord) {
  vd::Payload p;
  auto* a = p.add_data();
  a->set_key(vd::VehicleName);
  a->mutable_value()->set_string_value("ok");
  auto* b = p.add_data();
  b->set_key(vd::Odometer);
  b->mutable_value()->set_double_value(std::nan(""));
  auto batch = format_mqtt(v_record(p), "t");
  EXPECT_EQ(batch.error, MqttFormatError::NonFiniteNumber);
  EXPECT_TRUE(batch.messages.empty());
}

TEST(MqttFormat, DatumWithoutValueIsSkippedAndCounted) {
  vd::Payload p;
  p.add_data()->set_key(vd::Odometer);
  auto* b = p.add_data();
  b->set_key(vd::VehicleName);
  b->mutable_value()->set_string_value("x");
  auto batch = format_mqtt(v_record(p, "V"), "t");
  EXPECT_EQ(batch.error, MqttFormatError::None);
  EXPECT_EQ(batch.datums_without_value, 1);
  EXPECT_EQ(lines(batch), (std::vector<std::string>{"t/V/v/VehicleName\t\"x\""}));
}

TEST(MqttFormat, EnumPathsRenderUnknownNumbersDifferently) {
  vd::Value switch_path, reflect_path, named;
  switch_path.set_shift_state_value(static_cast<vd::ShiftState>(99));
  reflect_path.set_hvac_power_value(static_cast<vd::HvacPowerState>(99));
  named.set_shift_state_value(vd::ShiftStateD);
  std::string a, b, c;
  append_mqtt_value(a, switch_path);
  append_mqtt_value(b, reflect_path);
  append_mqtt_value(c, named);
  EXPECT_EQ(a, "\"99\"");
  EXPECT_EQ(b, "99");
  EXPECT_EQ(c, "\"ShiftStateD\"");
}

TEST(MqttFormat, DoorsTimeAndTires) {
  vd::Value doors, time, tires, empty;
  doors.mutable_door_value()->set_driverfront(true);
  doors.mutable_door_value()->set_trunkrear(true);
  time.mutable_time_value()->set_hour(-1);
  time.mutable_time_value()->set_minute(100);
  tires.mutable_tire_location_value()->set_front_left(true);
  tires.mutable_tire_location_value()->set_semi_rear_axle_right_2(true);
  std::string d, t, ti, e;
  append_mqtt_value(d, doors);
  append_mqtt_value(t, time);
  append_mqtt_value(ti, tires);
  append_mqtt_value(e, empty);
  EXPECT_EQ(d, R"({"DriverFront":true,"DriverRear":false,"PassengerFront":false,"PassengerRear":false,"TrunkFront":false,"TrunkRear":true})");
  EXPECT_EQ(t, "\"-1:100:00\"");
  EXPECT_EQ(ti, R"({"front_left":true,"semi_rear_axle_right_2":true})");
  EXPECT_EQ(e, "{}");
}

TEST(MqttFormat, AlertsCurrentAndHistory) {
  va::VehicleAlerts alerts;
  auto* a1 = alerts.add_alerts();
  a1->set_name("TestAlert1");
  a1->add_audiences(va::Customer);
  a1->add_audiences(va::Service);
  a1->mutable_started_at()->set_seconds(1700000000);
  auto* a2 = alerts.add_alerts();
  a2->set_name("TestAlert2");
  a2->add_audiences(va::ServiceFix);
  a2->mutable_started_at()->set_seconds(1700000000);
  a2->mutable_ended_at()->set_seconds(1700000060);
  auto* a3 = alerts.add_alerts();
  a3->set_name("NoStart");
  Record r;
  r.type = wire::RecordType::Alerts;
  r.vin = "V";
  r.message = alerts;
  auto batch = format_mqtt(r, "t");
  EXPECT_EQ(lines(batch),
            (std::vector<std::string>{
                "t/V/alerts/NoStart/history\t[{\"Audiences\":null}]",
                "t/V/alerts/TestAlert1/current\t{\"Audiences\":[\"Customer\",\"Service\"],\"StartedAt\":\"2023-11-14T22:13:20Z\"}",
                "t/V/alerts/TestAlert1/history\t[{\"Audiences\":[\"Customer\",\"Service\"],\"StartedAt\":\"2023-11-14T22:13:20Z\"}]",
                "t/V/alerts/TestAlert2/current\t{\"Audiences\":[\"ServiceFix\"],\"EndedAt\":\"2023-11-14T22:14:20Z\",\"StartedAt\":\"2023-11-14T22:13:20Z\"}",
                "t/V/alerts/TestAlert2/history\t[{\"Audiences\":[\"ServiceFix\"],\"EndedAt\":\"2023-11-14T22:14:20Z\",\"StartedAt\":\"2023-11-14T22:13:20Z\"}]",
            }));
}

TEST(MqttFormat, ErrorsAndConnectivity) {
  ve::VehicleErrors errors;
  auto* e = errors.add_errors();
  e->set_name("E1");
  e->set_body("b");
  (*e->mutable_tags())["z"] = "1";
  (*e->mutable_tags())["a"] = "2";
  errors.add_errors()->set_name("E2");
  Record r;
  r.type = wire::RecordType::Errors;
  r.vin = "V";
  r.message = errors;
  EXPECT_EQ(lines(format_mqtt(r, "t")),
            (std::vector<std::string>{"t/V/errors/E1\t{\"Body\":\"b\",\"Tags\":{\"a\":\"2\",\"z\":\"1\"}}",
                                      "t/V/errors/E2\t{\"Body\":\"\",\"Tags\":null}"}));
  vc::VehicleConnectivity c;
  c.set_connection_id("abc");
  c.set_status(static_cast<vc::ConnectivityEvent>(7));
  Record rc;
  rc.type = wire::RecordType::Connectivity;
  rc.vin = "V";
  rc.message = c;
  EXPECT_EQ(lines(format_mqtt(rc, "t")),
            (std::vector<std::string>{
                "t/V/connectivity\t{\"ConnectionId\":\"abc\",\"CreatedAt\":\"1970-01-01T00:00:00Z\",\"Status\":\"7\"}"}));
}

// The messages are views into the batch's one text buffer: copies and moves must re-point them.
TEST(MqttFormat, BatchCopiesAndMovesKeepTheirViews) {
  for (const std::string base : {"t", "a/much/longer/topic/base/than/sixteen/bytes"}) {
    vd::Payload p;
    auto* d = p.add_data();
    d->set_key(vd::Odometer);
    d->mutable_value()->set_int_value(1);
    const auto want = std::vector<std::string>{base + "/V/v/Odometer\t1"};
    auto batch = format_mqtt(v_record(p, "V"), base);
    ASSERT_EQ(lines(batch), want);
    MqttBatch copy(batch);
    MqttBatch moved(std::move(batch));
    batch = MqttBatch{};  // the moved-from batch is reused: nothing may point into it
    EXPECT_EQ(lines(copy), want);
    EXPECT_EQ(lines(moved), want);
    MqttBatch assigned;
    assigned = copy;
    copy = MqttBatch{};
    EXPECT_EQ(lines(assigned), want);
    MqttBatch move_assigned;
    move_assigned = std::move(assigned);
    assigned = MqttBatch{};
    EXPECT_EQ(lines(move_assigned), want);
    EXPECT_EQ(move_assigned.text_size(), want[0].size() - 1);  // without the tab
  }
}

MqttFormatOptions envelope(std::string_view base) {
  return {.topic_base = base, .event_time_envelope = true};
}

// mqtt.event_time_envelope: {"value":<the reference's payload>,"ts":"<created_at>"}, no spaces.
TEST(MqttEventTimeEnvelope, WrapsEveryFieldValueWithTheRecordsCreatedAt) {
  vd::Payload p;
  auto add = [&](vd::Field key) {
    auto* d = p.add_data();
    d->set_key(key);
    return d->mutable_value();
  };
  add(vd::VehicleName)->set_string_value("My Tesla");
  add(vd::TimeToFullCharge)->set_invalid(true);
  auto* loc = add(vd::Location)->mutable_location_value();
  loc->set_latitude(37.7749);
  loc->set_longitude(-122.4194);
  add(vd::Gear)->set_shift_state_value(vd::ShiftStateD);
  p.mutable_created_at()->set_seconds(1795536018);  // 2026-11-24T16:00:18Z
  p.mutable_created_at()->set_nanos(123456789);
  auto batch = format_mqtt(v_record(p), envelope("t"));
  EXPECT_EQ(batch.error, MqttFormatError::None);
  EXPECT_EQ(lines(batch),
            (std::vector<std::string>{
                R"(t/TEST123/v/Gear)" "\t" R"({"value":"ShiftStateD","ts":"2026-11-24T16:00:18.123456789Z"})",
                R"(t/TEST123/v/Location)" "\t" R"({"value":{"latitude":37.7749,"longitude":-122.4194},"ts":"2026-11-24T16:00:18.123456789Z"})",
                R"(t/TEST123/v/TimeToFullCharge)" "\t" R"({"value":null,"ts":"2026-11-24T16:00:18.123456789Z"})",
                R"(t/TEST123/v/VehicleName)" "\t" R"({"value":"My Tesla","ts":"2026-11-24T16:00:18.123456789Z"})",
            }));
}

// The fraction has 0, 3, 6 or 9 digits, as protojson writes timestamps.
TEST(MqttEventTimeEnvelope, FractionDigitsComeInGroupsOfThree) {
  for (const auto& [nanos, text] : std::vector<std::pair<int, std::string>>{
           {0, "2023-11-14T22:13:20Z"},
           {120'000'000, "2023-11-14T22:13:20.120Z"},
           {500'000, "2023-11-14T22:13:20.000500Z"},
           {1, "2023-11-14T22:13:20.000000001Z"}}) {
    vd::Payload p;
    auto* d = p.add_data();
    d->set_key(vd::Odometer);
    d->mutable_value()->set_double_value(12.5);
    p.mutable_created_at()->set_seconds(1700000000);
    p.mutable_created_at()->set_nanos(nanos);
    EXPECT_EQ(lines(format_mqtt(v_record(p, "V"), envelope("t"))),
              (std::vector<std::string>{"t/V/v/Odometer\t{\"value\":12.5,\"ts\":\"" + text + "\"}"}));
  }
}

// A record without created_at carries the time the server received its frame instead, so that
// every v/ message has the same shape while the option is on.
TEST(MqttEventTimeEnvelope, MissingCreatedAtUsesTheReceiveTime) {
  vd::Payload p;
  auto* d = p.add_data();
  d->set_key(vd::BatteryLevel);
  d->mutable_value()->set_int_value(80);
  Record r = v_record(p, "V");
  r.received_at_ms = 1700000000250;
  EXPECT_EQ(lines(format_mqtt(r, envelope("t"))),
            (std::vector<std::string>{
                R"(t/V/v/BatteryLevel)" "\t" R"({"value":80,"ts":"2023-11-14T22:13:20.250Z"})"}));
  // created_at present but zero is the epoch, not "missing".
  p.mutable_created_at();
  EXPECT_EQ(lines(format_mqtt(v_record(p, "V"), envelope("t"))),
            (std::vector<std::string>{
                R"(t/V/v/BatteryLevel)" "\t" R"({"value":80,"ts":"1970-01-01T00:00:00Z"})"}));
}

TEST(MqttEventTimeEnvelope, OffIsTheReferenceFormat) {
  vd::Payload p;
  auto* d = p.add_data();
  d->set_key(vd::BatteryLevel);
  d->mutable_value()->set_int_value(80);
  p.mutable_created_at()->set_seconds(1700000000);
  EXPECT_EQ(lines(format_mqtt(v_record(p, "V"), MqttFormatOptions{.topic_base = "t"})),
            (std::vector<std::string>{"t/V/v/BatteryLevel\t80"}));
}

TEST(MqttEventTimeEnvelope, NonFiniteValueStillFailsTheWholeRecord) {
  vd::Payload p;
  auto* d = p.add_data();
  d->set_key(vd::Odometer);
  d->mutable_value()->set_double_value(std::nan(""));
  auto batch = format_mqtt(v_record(p), envelope("t"));
  EXPECT_EQ(batch.error, MqttFormatError::NonFiniteNumber);
  EXPECT_TRUE(batch.messages.empty());
}

// Only V field messages get the envelope.
TEST(MqttEventTimeEnvelope, AlertsErrorsAndConnectivityAreUnchanged) {
  va::VehicleAlerts alerts;
  auto* a = alerts.add_alerts();
  a->set_name("A");
  a->mutable_started_at()->set_seconds(1700000000);
  alerts.mutable_created_at()->set_seconds(1700000000);
  ve::VehicleErrors errors;
  errors.add_errors()->set_name("E");
  vc::VehicleConnectivity c;
  c.set_connection_id("abc");
  c.set_status(vc::CONNECTED);
  Record ra, re, rc;
  ra.vin = re.vin = rc.vin = "V";
  ra.message = alerts;
  re.message = errors;
  rc.message = c;
  for (const Record* r : {&ra, &re, &rc})
    EXPECT_EQ(lines(format_mqtt(*r, envelope("t"))), lines(format_mqtt(*r, "t")));
}

// mqtt.record_message: one message on <base>/<VIN>/v, {"ts":…,"data":{…}}, fields in key order,
// each value exactly as its v/<Field> message carries it.
TEST(MqttRecordMessage, OneMessagePerRecordWithTheSameValues) {
  vd::Payload p;
  auto add = [&](vd::Field key) {
    auto* d = p.add_data();
    d->set_key(key);
    return d->mutable_value();
  };
  add(vd::VehicleName)->set_string_value("My \"Tesla\"");
  add(vd::TimeToFullCharge)->set_invalid(true);
  auto* loc = add(vd::Location)->mutable_location_value();
  loc->set_latitude(37.7749);
  loc->set_longitude(-122.4194);
  add(vd::Gear)->set_shift_state_value(vd::ShiftStateD);
  add(vd::Gear)->set_shift_state_value(vd::ShiftStateR);  // a later datum of a key wins
  p.add_data()->set_key(vd::Odometer);                    // no value: skipped and counted
  p.mutable_created_at()->set_seconds(1795536018);
  p.mutable_created_at()->set_nanos(123456789);
  const MqttFormatOptions record{.topic_base = "t", .record_message = true};
  auto batch = format_mqtt(v_record(p), record);
  EXPECT_EQ(batch.error, MqttFormatError::None);
  EXPECT_EQ(batch.datums_without_value, 1);
  EXPECT_EQ(lines(batch),
            (std::vector<std::string>{
                R"(t/TEST123/v)" "\t"
                R"({"ts":"2026-11-24T16:00:18.123456789Z","data":{"Gear":"ShiftStateR",)"
                R"("Location":{"latitude":37.7749,"longitude":-122.4194},"TimeToFullCharge":null,)"
                R"("VehicleName":"My \"Tesla\""}})"}));
  // The same values as the per-field messages.
  for (const auto& line : lines(format_mqtt(v_record(p), "t"))) {
    const auto tab = line.find('\t');
    const auto field = line.substr(line.rfind('/', tab) + 1, tab - line.rfind('/', tab) - 1);
    EXPECT_NE(lines(batch)[0].find("\"" + field + "\":" + line.substr(tab + 1)), std::string::npos)
        << line;
  }
}

TEST(MqttRecordMessage, NothingToPublishAndNonFiniteValues) {
  vd::Payload p;
  p.add_data()->set_key(vd::Odometer);  // only a datum without a value
  auto batch = format_mqtt(v_record(p), {.topic_base = "t", .record_message = true});
  EXPECT_EQ(batch.error, MqttFormatError::None);
  EXPECT_TRUE(batch.messages.empty());
  EXPECT_EQ(batch.text_size(), 0u);
  EXPECT_EQ(batch.datums_without_value, 1);
  p.add_data()->set_key(vd::Soc);
  p.mutable_data(1)->mutable_value()->set_double_value(std::nan(""));
  batch = format_mqtt(v_record(p), {.topic_base = "t", .record_message = true});
  EXPECT_EQ(batch.error, MqttFormatError::NonFiniteNumber);
  EXPECT_TRUE(batch.messages.empty());
}

TEST(MqttRecordMessage, AlertsErrorsAndConnectivityAreUnchanged) {
  va::VehicleAlerts alerts;
  alerts.add_alerts()->set_name("A");
  vc::VehicleConnectivity c;
  c.set_connection_id("abc");
  Record ra, rc;
  ra.vin = rc.vin = "V";
  ra.message = alerts;
  rc.message = c;
  for (const Record* r : {&ra, &rc}) {
    EXPECT_EQ(lines(format_mqtt(*r, {.topic_base = "t", .record_message = true})),
              lines(format_mqtt(*r, "t")));
  }
}

TEST(MqttFormat, OpaqueRecordTypesAreNotPublished) {
  Record r;
  r.tx_type = "D4";
  EXPECT_EQ(format_mqtt(r, "t").error, MqttFormatError::UnsupportedType);
}

}  // namespace
}  // namespace ts::pipeline

namespace ts::pipeline {
namespace {
TEST(MqttFormat, ManyDatumsKeepOnlyTheLastValueOfEachKey) {
  vd::Payload p;
  for (int i = 0; i < 50'000; ++i) {
    auto* d = p.add_data();
    d->set_key(static_cast<vd::Field>(1000 + i % 997));
    d->mutable_value()->set_int_value(i);
  }
  auto batch = format_mqtt(v_record(p, "V"), "t");
  ASSERT_EQ(batch.messages.size(), 997u);
  for (const auto& m : batch.messages) {
    const int key = std::stoi(std::string(m.topic.substr(m.topic.rfind('/') + 1)));
    const int value = std::stoi(std::string(m.payload));
    EXPECT_EQ(value % 997, key - 1000);
    EXPECT_GE(value, 50'000 - 997);  // the last datum of that key
  }
}

TEST(MqttFormat, ManyAlertNamesGroupInPayloadOrder) {
  va::VehicleAlerts alerts;
  for (int i = 0; i < 3000; ++i) {
    auto* a = alerts.add_alerts();
    a->set_name("A" + std::to_string(i % 100));
    a->mutable_started_at()->set_seconds(1700000000 + (i % 7));
  }
  Record r;
  r.type = wire::RecordType::Alerts;
  r.vin = "V";
  r.message = alerts;
  auto batch = format_mqtt(r, "t");
  EXPECT_EQ(batch.messages.size(), 200u);  // current + history for each of 100 names
  for (size_t i = 0; i < 100; ++i) EXPECT_NE(batch.messages[i].topic.find("/current"), std::string::npos);
}
}  // namespace
}  // namespace ts::pipeline

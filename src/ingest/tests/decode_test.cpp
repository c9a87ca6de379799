#include "ingest/decode.hpp"

#include <gtest/gtest.h>

namespace ts::ingest {
namespace {

const IsRegistered kOnlyVin1 = [](std::string_view vin) { return vin == "VIN1"; };

TEST(DecodeMessage, BareSignalTakesReceiveTime) {
  storage::Batch b;
  EXPECT_EQ(decode_message("telemetry", "telemetry/VIN1/v/Soc", "80.5", 42, kOnlyVin1, b),
            Disposition::Signal);
  ASSERT_EQ(b.signals.size(), 1u);
  EXPECT_EQ(b.signals[0].name, "Soc");
  EXPECT_EQ(b.signals[0].ts, 42);
  EXPECT_EQ(b.signals[0].value, signal::Value::float64(80.5));
}

TEST(DecodeMessage, EnvelopeSignalKeepsEventTime) {
  storage::Batch b;
  decode_message("telemetry", "telemetry/VIN1/v/Gear",
                 R"({"value":"ShiftStateD","ts":"1970-01-01T00:00:01Z"})", 42, kOnlyVin1, b);
  ASSERT_EQ(b.signals.size(), 1u);
  EXPECT_EQ(b.signals[0].ts, 1'000'000);
  EXPECT_EQ(b.signals[0].received_at, 42);
}

TEST(DecodeMessage, RecordMessageIsOneSignalPerField) {
  storage::Batch b;
  EXPECT_EQ(decode_message("telemetry", "telemetry/VIN1/v",
                           R"({"ts":"1970-01-01T00:00:02Z","data":{"Soc":80,"Gear":"ShiftStateD"}})",
                           42, kOnlyVin1, b),
            Disposition::Signal);
  ASSERT_EQ(b.signals.size(), 2u);
  EXPECT_EQ(b.signals[0].vin, "VIN1");
  EXPECT_EQ(b.signals[0].name, "Soc");
  EXPECT_EQ(b.signals[1].name, "Gear");
  for (const auto& s : b.signals) {
    EXPECT_EQ(s.ts, 2'000'000);
    EXPECT_EQ(s.received_at, 42);
    EXPECT_EQ(s.source, signal::Source::Stream);
  }
  // One bad field makes the whole message a dead letter: nothing of it is half-stored.
  storage::Batch bad;
  EXPECT_EQ(decode_message("telemetry", "telemetry/VIN1/v",
                           R"({"ts":"1970-01-01T00:00:02Z","data":{"Soc":80,"X":[1]}})", 42,
                           kOnlyVin1, bad),
            Disposition::DeadLetter);
  EXPECT_TRUE(bad.signals.empty());
  ASSERT_EQ(bad.dead_letters.size(), 1u);
  EXPECT_EQ(bad.dead_letters[0].reason, "undecodable: JSON value matches no telemetry value type");
}

TEST(DecodeMessage, UnusableMessagesBecomeDeadLetters) {
  storage::Batch b;
  EXPECT_EQ(decode_message("telemetry", "telemetry/VIN2/v/Soc", "1", 1, kOnlyVin1, b),
            Disposition::DeadLetter);
  EXPECT_EQ(decode_message("telemetry", "telemetry/VIN1/v/Soc", "{bad", 1, kOnlyVin1, b),
            Disposition::DeadLetter);
  EXPECT_EQ(decode_message("telemetry", "telemetry/VIN1/nope", "1", 1, kOnlyVin1, b),
            Disposition::DeadLetter);
  EXPECT_EQ(decode_message("telemetry", "telemetry/VIN1/connectivity", "[]", 1, kOnlyVin1, b),
            Disposition::DeadLetter);
  ASSERT_EQ(b.dead_letters.size(), 4u);
  EXPECT_EQ(b.dead_letters[0].reason, kReasonUnregisteredVin);
  EXPECT_EQ(b.dead_letters[0].vin, "VIN2");
  EXPECT_EQ(b.dead_letters[1].reason, "undecodable: payload is not JSON");
  EXPECT_EQ(b.dead_letters[1].payload, "{bad");
  EXPECT_EQ(b.dead_letters[2].reason, kReasonUnknownTopic);
  EXPECT_TRUE(b.signals.empty());
}

TEST(DecodeMessage, OtherRecordTypes) {
  storage::Batch b;
  EXPECT_EQ(decode_message("t", "t/VIN1/alerts/A1/history",
                           R"([{"Audiences":["Customer"],"StartedAt":"2023-11-14T21:13:20Z"}])", 1,
                           kOnlyVin1, b),
            Disposition::Alerts);
  EXPECT_EQ(decode_message("t", "t/VIN1/errors/E1", R"({"Body":"b","Tags":null})", 1, kOnlyVin1, b),
            Disposition::VehicleError);
  EXPECT_EQ(decode_message("t", "t/VIN1/connectivity",
                           R"({"ConnectionId":"c","CreatedAt":"2026-11-24T16:00:19Z","Status":"CONNECTED"})",
                           1, kOnlyVin1, b),
            Disposition::Connectivity);
  EXPECT_EQ(b.size(), 3u);
}

// The names the edge controls are bounded (limits.hpp): signal names come from the Field enum,
// alert and error names and connection ids are length-limited. Anything else is a dead letter.
TEST(DecodeMessage, NamesOutsideTheRulesBecomeDeadLetters) {
  storage::Batch b;
  for (const char* topic : {"t/VIN1/v/NotAField", "t/VIN1/v/123456", "t/VIN1/v/zz_junk_1"}) {
    EXPECT_EQ(decode_message("t", topic, "1", 1, kOnlyVin1, b), Disposition::DeadLetter) << topic;
  }
  const std::string long_name(7000, 'a');
  EXPECT_EQ(decode_message("t", "t/VIN1/alerts/" + long_name + "/current",
                           R"({"StartedAt":"2026-12-07T10:00:00Z"})", 1, kOnlyVin1, b),
            Disposition::DeadLetter);
  EXPECT_EQ(decode_message("t", "t/VIN1/errors/" + long_name, R"({"Body":"b"})", 1, kOnlyVin1, b),
            Disposition::DeadLetter);
  EXPECT_EQ(decode_message("t", "t/VIN1/connectivity",
                           R"({"ConnectionId":")" + long_name + R"(","Status":"CONNECTED"})", 1,
                           kOnlyVin1, b),
            Disposition::DeadLetter);
  EXPECT_TRUE(b.signals.empty());
  EXPECT_TRUE(b.alerts.empty());
  EXPECT_TRUE(b.vehicle_errors.empty());
  EXPECT_TRUE(b.connectivity.empty());
  ASSERT_EQ(b.dead_letters.size(), 6u);
  EXPECT_EQ(b.dead_letters[0].reason, "unknown_field: NotAField");
  EXPECT_EQ(b.dead_letters[1].reason, "unknown_field: 123456");
  EXPECT_EQ(b.dead_letters[3].reason, "too_long: alert name of 7000 bytes (at most 256)");
  EXPECT_EQ(b.dead_letters[4].reason, "too_long: error name of 7000 bytes (at most 256)");
  EXPECT_EQ(b.dead_letters[5].reason, "too_long: connection id of 7000 bytes (at most 128)");
  // A name at the limit is fine.
  storage::Batch ok;
  EXPECT_EQ(decode_message("t", "t/VIN1/errors/" + std::string(256, 'e'), R"({"Body":"b"})", 1,
                           kOnlyVin1, ok),
            Disposition::VehicleError);
}

// A record message stores its known fields and keeps the message as a dead letter for the rest.
TEST(DecodeMessage, RecordMessageWithUnknownFieldsKeepsTheKnownOnes) {
  storage::Batch b;
  EXPECT_EQ(decode_message("t", "t/VIN1/v",
                           R"({"ts":"1970-01-01T00:00:02Z","data":{"Soc":80,"999":1,"Junk":2}})", 42,
                           kOnlyVin1, b),
            Disposition::Signal);
  ASSERT_EQ(b.signals.size(), 1u);
  EXPECT_EQ(b.signals[0].name, "Soc");
  ASSERT_EQ(b.dead_letters.size(), 1u);
  EXPECT_EQ(b.dead_letters[0].reason, "unknown_field: 999");
}

// Without StartedAt / CreatedAt, the receive time keeps occurrences apart (key collisions before).
TEST(DecodeMessage, AbsentEventTimesTakeTheReceiveTime) {
  storage::Batch b;
  decode_message("t", "t/VIN1/alerts/A1/current", R"({"Audiences":["Customer"]})", 5, kOnlyVin1, b);
  decode_message("t", "t/VIN1/errors/E1", R"({"Body":"b"})", 6, kOnlyVin1, b);
  ASSERT_EQ(b.alerts.size(), 1u);
  EXPECT_EQ(b.alerts[0].started_at, 5);
  ASSERT_EQ(b.vehicle_errors.size(), 1u);
  EXPECT_EQ(b.vehicle_errors[0].created_at, 6);
}

}  // namespace
}  // namespace ts::ingest

#include "wire/payload.hpp"

#include <gtest/gtest.h>

namespace ts::wire {
namespace {

TEST(Payload, RecordTypeFromTopic) {
  EXPECT_EQ(record_type_of("V"), RecordType::V);
  EXPECT_EQ(record_type_of("alerts"), RecordType::Alerts);
  EXPECT_EQ(record_type_of("errors"), RecordType::Errors);
  EXPECT_EQ(record_type_of("connectivity"), RecordType::Connectivity);
  EXPECT_EQ(record_type_of("v"), RecordType::Other);
  EXPECT_EQ(record_type_of("D4"), RecordType::Other);
}

TEST(Payload, EmptyPayloadIsAValidEmptyMessage) {
  vehicle_data::Payload p;
  EXPECT_TRUE(parse_record("", p));
  EXPECT_EQ(p.data_size(), 0);
}

TEST(Payload, InvalidUtf8StringIsADecodeError) {
  // Payload.vin (field 3, wire type 2) = "\xff"
  vehicle_data::Payload p;
  EXPECT_FALSE(parse_record(std::string("\x1a\x01\xff", 3), p));
}

TEST(Payload, TruncatedIsADecodeError) {
  vehicle_data::Payload p;
  EXPECT_FALSE(parse_record(std::string("\x0a\x09\x08\x40", 4), p));
}

TEST(Payload, UnknownFieldsSurviveReencoding) {
  // VehicleName="abc" plus an unknown field 15 (varint 1); spec §7.1 example adds the vin.
  std::string in("\x0a\x09\x08\x40\x12\x05\x0a\x03" "abc" "\x78\x01", 13);
  vehicle_data::Payload p;
  ASSERT_TRUE(parse_record(in, p));
  p.set_vin("device-1");
  std::string out = p.SerializeAsString();
  EXPECT_NE(out.find(std::string("\x78\x01", 2)), std::string::npos);
}

}  // namespace
}  // namespace ts::wire

#include "state/redis/codec.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "state/redis/errc.hpp"

namespace ts::state::redis {
namespace {

using signal::Signal;
using signal::Source;
using signal::Value;

Signal make(Value v, Source source = Source::Stream) {
  return Signal{.vin = "5YJ3E1EA7KF000001",
                .name = "Field",
                .ts = 1'764'000'018'123'456,
                .received_at = 1'764'000'018'200'000,
                .source = source,
                .value = std::move(v)};
}

TEST(RedisCodec, ValueLayoutStartsWithTheTimesTheScriptReads) {
  EXPECT_EQ(encode_value(make(Value::float64(61.5))),
            R"({"ts":1764000018123456,"r":1764000018200000,"k":3,"s":"stream","v":61.5})");
  EXPECT_EQ(encode_value(make(Value::location(1.5, -2.25), Source::Poll)),
            R"({"ts":1764000018123456,"r":1764000018200000,"k":6,"s":"poll",)"
            R"("v":{"latitude":1.5,"longitude":-2.25}})");
  Signal negative = make(Value::invalid());
  negative.ts = -5;
  EXPECT_EQ(encode_value(negative),
            R"({"ts":-5,"r":1764000018200000,"k":0,"s":"stream","v":null})");
}

TEST(RedisCodec, EveryKindRoundTrips) {
  const std::vector<Value> values = {
      Value::invalid(),
      Value::boolean(true),
      Value::boolean(false),
      Value::int64(std::numeric_limits<std::int64_t>::min()),
      Value::int64(std::numeric_limits<std::int64_t>::max()),
      Value::float64(0.1),
      Value::float64(-1e300),
      Value::string("with \"quotes\", \\ and \n newline, ünïcødé"),
      Value::enumeration("ShiftStateD"),
      Value::location(37.4219999, -122.0840575),
      Value::doors(R"({"DriverFront":true,"DriverRear":false,"PassengerFront":false,)"
                   R"("PassengerRear":false,"TrunkFront":false,"TrunkRear":false})"),
      Value::tires(R"({"front_left":true,"rear_right":true})"),
      Value::tires("{}"),
      Value::time_of_day("13:05:09"),
  };
  for (Source source : {Source::Stream, Source::Poll}) {
    for (const Value& v : values) {
      const Signal s = make(v, source);
      auto back = decode_value(s.vin, s.name, encode_value(s));
      ASSERT_TRUE(back) << encode_value(s);
      EXPECT_EQ(*back, s) << encode_value(s);
    }
  }
}

TEST(RedisCodec, NonFiniteFloatReadsBackAsNaN) {
  const Signal s = make(Value::float64(std::numeric_limits<double>::infinity()));
  auto back = decode_value(s.vin, s.name, encode_value(s));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->value.kind, signal::Kind::Float);
  EXPECT_TRUE(std::isnan(back->value.number));
}

TEST(RedisCodec, MalformedValuesAreErrors) {
  for (const char* bad : {
           "",
           "not json",
           "[]",
           "{}",
           R"({"ts":1,"r":2,"k":3,"s":"stream"})",          // no v
           R"({"ts":"1","r":2,"k":3,"s":"stream","v":1})",  // ts not a number
           R"({"ts":1.5,"r":2,"k":3,"s":"stream","v":1})",  // ts not an integer
           R"({"ts":1,"r":2,"k":10,"s":"stream","v":1})",   // unknown kind
           R"({"ts":1,"r":2,"k":-1,"s":"stream","v":1})",   // negative kind
           R"({"ts":1,"r":2,"k":3,"s":"mqtt","v":1})",      // unknown source
           R"({"ts":1,"r":2,"k":1,"s":"stream","v":1})",    // bool that is a number
           R"({"ts":1,"r":2,"k":2,"s":"stream","v":1.5})",  // int that is a float
           R"({"ts":1,"r":2,"k":4,"s":"stream","v":5})",    // string that is a number
           R"({"ts":1,"r":2,"k":6,"s":"stream","v":{"latitude":1}})",
           R"({"ts":1,"r":2,"k":7,"s":"stream","v":"doors"})",
       }) {
    auto r = decode_value("VIN", "F", bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error(), make_error_code(errc::bad_value)) << bad;
  }
}

TEST(RedisCodec, KeyShape) {
  EXPECT_EQ(vehicle_key("teslasync:", "5YJ3E1EA7KF000001"),
            "teslasync:vehicle:5YJ3E1EA7KF000001:signals");
  EXPECT_EQ(vin_of_key("teslasync:", "teslasync:vehicle:5YJ3E1EA7KF000001:signals"),
            "5YJ3E1EA7KF000001");
  EXPECT_EQ(vin_of_key("p:", "p:vehicle:with:colon:signals"), "with:colon");
  EXPECT_FALSE(vin_of_key("teslasync:", "teslasync:vehicle::signals"));
  EXPECT_FALSE(vin_of_key("teslasync:", "other:vehicle:X:signals"));
  EXPECT_FALSE(vin_of_key("teslasync:", "teslasync:vehicle:X:other"));
}

}  // namespace
}  // namespace ts::state::redis

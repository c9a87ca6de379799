// Pure parts of storage: URL redaction, cursors, the value/column mapping, day math.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "storage/database.hpp"
#include "storage/detail.hpp"

namespace ts::storage {
namespace {

using signal::Value;

TEST(RedactUrl, HidesPasswordsInEveryForm) {
  EXPECT_EQ(redact_url("postgresql://user:s3cret@db.example:5432/teslasync"),
            "postgresql://user:***@db.example:5432/teslasync");
  EXPECT_EQ(redact_url("postgres://user:p@ss@word@host/db?sslmode=require"),
            "postgres://user:***@host/db?sslmode=require");
  EXPECT_EQ(redact_url("postgresql://host/db?user=u&password=hunter2&sslmode=require"),
            "postgresql://host/db?user=u&password=***&sslmode=require");
  EXPECT_EQ(redact_url("host=h password='a b' user=u"), "host=h password=*** user=u");
  EXPECT_EQ(redact_url("postgresql://user@host/db"), "postgresql://user@host/db");
  EXPECT_EQ(redact_url("postgresql://host:5432/db"), "postgresql://host:5432/db");
  EXPECT_EQ(redact_url("sqlite:/var/lib/teslasync.db"), "sqlite:/var/lib/teslasync.db");
}

TEST(SignalCursor, RoundTripsThroughText) {
  const SignalCursor c{.ts = -1234567, .name = "Name.With.Dots"};
  EXPECT_EQ(c.to_string(), "-1234567.Name.With.Dots");
  EXPECT_EQ(SignalCursor::parse(c.to_string()), c);
  EXPECT_FALSE(SignalCursor::parse(""));
  EXPECT_FALSE(SignalCursor::parse(".Soc"));
  EXPECT_FALSE(SignalCursor::parse("12x.Soc"));
  EXPECT_FALSE(SignalCursor::parse("12"));
  EXPECT_EQ(SignalCursor::parse("12."), (SignalCursor{12, ""}));
}

TEST(ValueColumns, EveryKindMapsToItsColumnsAndBack) {
  const std::vector<Value> values = {
      Value::invalid(),        Value::boolean(false),        Value::boolean(true),
      Value::int64(-5),        Value::float64(2.5),          Value::string("s"),
      Value::enumeration("E"), Value::location(1.5, -2.25),  Value::doors("{}"),
      Value::tires("{}"),      Value::time_of_day("1:02:03")};
  for (const Value& v : values) {
    const detail::ValueColumns c = detail::columns_of(v);
    EXPECT_EQ(detail::value_of(static_cast<int>(v.kind), c), v) << signal::kind_name(v.kind);
  }
  EXPECT_FALSE(detail::columns_of(Value::location(1, 2)).text) << "derived from the numbers";
  EXPECT_TRUE(std::isnan(detail::value_of(3, {}).number)) << "SQLite keeps NaN as NULL";
  EXPECT_EQ(detail::value_of(77, {}), Value::invalid());
}

TEST(Days, LabelsAndParsesUtcDays) {
  EXPECT_EQ(detail::day_of(0), 0);
  EXPECT_EQ(detail::day_of(-1), -1);
  EXPECT_EQ(detail::day_of(detail::kMicrosPerDay), 1);
  EXPECT_EQ(detail::day_label(0), "19700101");
  EXPECT_EQ(detail::day_label(20'417), "20251125");
  EXPECT_EQ(detail::parse_day_label("20251125"), 20'417);
  EXPECT_EQ(detail::parse_day_label("19700101"), 0);
  EXPECT_FALSE(detail::parse_day_label("20250230"));
  EXPECT_FALSE(detail::parse_day_label("2025113"));
  EXPECT_FALSE(detail::parse_day_label("default1"));
}

TEST(MergeAlerts, KeepsOnePerKeyAndTakesALaterEnd) {
  const std::vector<Alert> in = {
      {.vin = "V", .name = "A", .started_at = 1},
      {.vin = "V", .name = "B", .started_at = 1},
      {.vin = "V", .name = "A", .started_at = 1, .ended_at = 9},
      {.vin = "V", .name = "A", .started_at = 1, .ended_at = 12},
  };
  const std::vector<Alert> out = detail::merge_alerts(in);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].name, "A");
  EXPECT_EQ(out[0].ended_at, 9);
  EXPECT_EQ(out[1].name, "B");
}

TEST(ErrorFingerprint, SeparatesBodyFromTags) {
  EXPECT_EQ(detail::error_fingerprint("ab", "c"), detail::error_fingerprint("ab", "c"));
  EXPECT_NE(detail::error_fingerprint("ab", "c"), detail::error_fingerprint("a", "bc"));
  EXPECT_NE(detail::error_fingerprint("", ""), detail::error_fingerprint("", "{}"));
}

TEST(CleanText, AcceptsUtf8AndRepairsNulAndInvalidSequences) {
  EXPECT_TRUE(detail::is_clean_text(""));
  EXPECT_TRUE(detail::is_clean_text("plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x97"));
  EXPECT_FALSE(detail::is_clean_text(std::string("a\0b", 3)));
  EXPECT_FALSE(detail::is_clean_text("\xc3"));              // truncated
  EXPECT_FALSE(detail::is_clean_text("\xc0\xaf"));          // overlong
  EXPECT_FALSE(detail::is_clean_text("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(detail::is_clean_text("\xf4\x90\x80\x80"));  // beyond U+10FFFF
  EXPECT_EQ(detail::repair_text(std::string("a\0b", 3)),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(detail::repair_text("\xff\xc3\xa9\xc3"), "\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd");
  EXPECT_TRUE(detail::is_clean_text(detail::repair_text("\x80\x80 x \xf0\x9f")));
}

TEST(Limits, AreClampedToOneAndTenThousand) {
  EXPECT_EQ(detail::clamp_limit(0), 1u);
  EXPECT_EQ(detail::clamp_limit(250), 250u);
  EXPECT_EQ(detail::clamp_limit(1'000'000), kMaxLimit);
}

TEST(Batch, CountsAndClears) {
  Batch b;
  EXPECT_TRUE(b.empty());
  b.signals.resize(3);
  b.dead_letters.resize(1);
  EXPECT_EQ(b.size(), 4u);
  EXPECT_FALSE(BatchView(b).empty());
  b.clear();
  EXPECT_TRUE(b.empty());
}

TEST(VehicleSource, NamesRoundTrip) {
  for (VehicleSource s : {VehicleSource::Manual, VehicleSource::FleetApi}) {
    EXPECT_EQ(parse_vehicle_source(vehicle_source_name(s)), s);
  }
  EXPECT_FALSE(parse_vehicle_source("other"));
}

}  // namespace
}  // namespace ts::storage

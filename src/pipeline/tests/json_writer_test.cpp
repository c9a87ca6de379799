#include "pipeline/json_writer.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace ts::pipeline::json {
namespace {

std::string f32(float v) {
  std::string s;
  EXPECT_TRUE(append_float(s, v, 32));
  return s;
}
std::string f64(double v) {
  std::string s;
  EXPECT_TRUE(append_float(s, v, 64));
  return s;
}

TEST(JsonWriter, Float32IsShortestForItsWidthLikeGo) {
  EXPECT_EQ(f32(75.5f), "75.5");
  EXPECT_EQ(f32(0.1f), "0.1");
  EXPECT_EQ(f32(3.14159f), "3.14159");
  EXPECT_EQ(f32(123456789.0f), "123456790");
  EXPECT_EQ(f32(1e-7f), "1e-7");
  EXPECT_EQ(f32(1e21f), "1e+21");
  EXPECT_EQ(f32(0.0f), "0");
  EXPECT_EQ(f32(-0.0f), "-0");
  EXPECT_EQ(f32(1e-6f), "0.000001");
}

TEST(JsonWriter, Float64IsShortestLikeGo) {
  EXPECT_EQ(f64(0.1), "0.1");
  EXPECT_EQ(f64(100), "100");
  EXPECT_EQ(f64(1e-7), "1e-7");
  EXPECT_EQ(f64(1.5e300), "1.5e+300");
  EXPECT_EQ(f64(37.7749), "37.7749");
  EXPECT_EQ(f64(-122.4194), "-122.4194");
  EXPECT_EQ(f64(1e20), "100000000000000000000");
  EXPECT_EQ(f64(123456.789e-3), "123.456789");
  EXPECT_EQ(f64(5e-324), "5e-324");
}

// The fast path for short float64 decimals must print exactly what the std::to_chars path prints.
TEST(JsonWriter, Float64FastPathMatchesTheGeneralPath) {
  std::mt19937_64 rng(20261124);
  auto check = [](double v) {
    std::string fast, general;
    ASSERT_TRUE(append_float(fast, v, 64));
    ASSERT_TRUE(append_float_general_for_test(general, v, 64));
    ASSERT_EQ(fast, general) << std::hexfloat << v;
  };
  // Short decimals n / 10^k of every length and scale, their neighbours, and both signs.
  for (int i = 0; i < 100'000; ++i) {
    const int digits = 1 + static_cast<int>(rng() % 17);
    const auto n = static_cast<double>(rng() % static_cast<std::uint64_t>(std::pow(10.0, digits)));
    const double v = n / std::pow(10.0, static_cast<int>(rng() % 23));
    for (double w : {v, std::nextafter(v, 0.0), std::nextafter(v, 1e300)}) {
      check(w);
      check(-w);
    }
  }
  // Arbitrary bit patterns from 1e-7 to 1e17 (17-digit values: the general path).
  for (int i = 0; i < 100'000; ++i) {
    const double v = std::ldexp(1.0 + static_cast<double>(rng() >> 12) * 0x1p-52,
                                -24 + static_cast<int>(rng() % 81));
    check(v);
  }
  for (double v : {0.1 + 0.2, 0x1p51, std::nextafter(0x1p51, 0.0), 0x1p51 + 1, 1e-6,
                   std::nextafter(1e-6, 0.0), std::nextafter(1e-6, 1.0), 9007199254740993.0,
                   123456789012345.6, 0.30000000000000004, 5e-324, 1.7976931348623157e308})
    check(v);
}

TEST(JsonWriter, NonFiniteNumbersCannotBeEncoded) {
  std::string s = "x";
  EXPECT_FALSE(append_float(s, std::numeric_limits<double>::quiet_NaN(), 64));
  EXPECT_FALSE(append_float(s, std::numeric_limits<double>::infinity(), 32));
  EXPECT_EQ(s, "x");
}

TEST(JsonWriter, GoEscapingIsHtmlSafe) {
  std::string s;
  append_string(s, "a<b>&\"q\"\\ \x01\t\n\xe2\x80\xa8\xc3\xa9", Escaping::Go);
  EXPECT_EQ(s, R"("a\u003cb\u003e\u0026\"q\"\\ \u0001\t\n\u2028)" "\xc3\xa9\"");
}

TEST(JsonWriter, ProtojsonEscapesOnlyQuotesBackslashAndControls) {
  std::string s;
  append_string(s, "<&>\xe2\x80\xa8\"\x1f", Escaping::Protojson);
  EXPECT_EQ(s, "\"<&>\xe2\x80\xa8\\\"\\u001f\"");
}

TEST(JsonWriter, Rfc3339) {
  std::string s;
  append_rfc3339(s, 1700000000, 123000000, false);
  EXPECT_EQ(s, "\"2023-11-14T22:13:20Z\"");
  s.clear();
  append_rfc3339(s, 1700000000, 123000000, true);
  EXPECT_EQ(s, "\"2023-11-14T22:13:20.123Z\"");
  s.clear();
  append_rfc3339(s, 1700000000, 500000, true);
  EXPECT_EQ(s, "\"2023-11-14T22:13:20.000500Z\"");
  s.clear();
  append_rfc3339(s, 1700000000, 1, true);
  EXPECT_EQ(s, "\"2023-11-14T22:13:20.000000001Z\"");
  s.clear();
  append_rfc3339(s, 0, 0, false);
  EXPECT_EQ(s, "\"1970-01-01T00:00:00Z\"");
  s.clear();
  append_rfc3339(s, -1, 0, false);
  EXPECT_EQ(s, "\"1969-12-31T23:59:59Z\"");
}

}  // namespace
}  // namespace ts::pipeline::json

namespace ts::pipeline::json {
namespace {
// Found by review of the fuzz targets: extreme timestamps from a vehicle must not overflow
// (UBSan in the asan preset would abort here).
TEST(JsonWriter, Rfc3339OfExtremeTimestampsDoesNotOverflow) {
  std::string a, b;
  append_rfc3339(a, std::numeric_limits<std::int64_t>::max(), 1'000'000'000, false);
  append_rfc3339(b, std::numeric_limits<std::int64_t>::min(), -1, true);
  EXPECT_EQ(a.front(), '"');
  EXPECT_EQ(b.back(), '"');
  EXPECT_NE(a.find('T'), std::string::npos);
}
}  // namespace
}  // namespace ts::pipeline::json

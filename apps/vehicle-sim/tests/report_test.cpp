#include "sim/report.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cmath>
#include <limits>
#include <regex>
#include <string>
#include <vector>

#include "sim/fleet.hpp"
#include "sim/vehicle.hpp"

namespace ts::vehicle_sim {
namespace {

RunReport sample_report() {
  RunReport r;
  r.sent = 3000;
  r.acked = 2998;
  r.errors = 3;
  r.ack_p50_ms = 0.8123;
  r.ack_p99_ms = 4.25;
  r.vehicles = 10;
  r.connected = 9;
  r.connect_failures = 1;
  r.disconnects = 1;
  r.error_replies = 1;
  r.bad_replies = 0;
  r.unacked = 1;
  r.records_per_s = 99.93;
  r.ack_max_ms = 12.0;
  r.duration_s = 30.0004;
  return r;
}

TEST(RunReport, JsonLineStartsWithTheContractKeysInOrder) {
  std::string line = to_json_line(sample_report());
  // DESIGN.md: {"sent":…, "acked":…, "errors":…, "ack_p50_ms":…, "ack_p99_ms":…} then extras.
  std::regex head(
      R"(^\{"sent":\d+,"acked":\d+,"errors":\d+,"ack_p50_ms":\d+\.\d{3},"ack_p99_ms":\d+\.\d{3}[,}])");
  EXPECT_TRUE(std::regex_search(line, head)) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.back(), '}');
}

TEST(RunReport, JsonLineParsesWithEveryValue) {
  std::string line = to_json_line(sample_report());
  boost::json::value v = boost::json::parse(line);
  const auto& o = v.as_object();
  EXPECT_EQ(o.at("sent").to_number<std::uint64_t>(), 3000u);
  EXPECT_EQ(o.at("acked").to_number<std::uint64_t>(), 2998u);
  EXPECT_EQ(o.at("errors").to_number<std::uint64_t>(), 3u);
  EXPECT_DOUBLE_EQ(o.at("ack_p50_ms").to_number<double>(), 0.812);  // 3 decimals
  EXPECT_DOUBLE_EQ(o.at("ack_p99_ms").to_number<double>(), 4.25);
  EXPECT_EQ(o.at("vehicles").to_number<std::uint64_t>(), 10u);
  EXPECT_EQ(o.at("connected").to_number<std::uint64_t>(), 9u);
  EXPECT_EQ(o.at("connect_failures").to_number<std::uint64_t>(), 1u);
  EXPECT_EQ(o.at("disconnects").to_number<std::uint64_t>(), 1u);
  EXPECT_EQ(o.at("error_replies").to_number<std::uint64_t>(), 1u);
  EXPECT_EQ(o.at("bad_replies").to_number<std::uint64_t>(), 0u);
  EXPECT_EQ(o.at("unacked").to_number<std::uint64_t>(), 1u);
  EXPECT_DOUBLE_EQ(o.at("records_per_s").to_number<double>(), 99.9);
  EXPECT_DOUBLE_EQ(o.at("ack_max_ms").to_number<double>(), 12.0);
  EXPECT_DOUBLE_EQ(o.at("duration_s").to_number<double>(), 30.0);
  EXPECT_EQ(o.size(), 15u);
}

TEST(RunReport, NonFiniteNumbersStillGiveValidJson) {
  RunReport r;
  r.ack_p50_ms = std::numeric_limits<double>::quiet_NaN();
  r.records_per_s = std::numeric_limits<double>::infinity();
  std::string line = to_json_line(r);
  EXPECT_NO_THROW(boost::json::parse(line)) << line;
  EXPECT_NE(line.find(R"("ack_p50_ms":0.000)"), std::string::npos) << line;
}

TEST(MergeShardStats, SumsCountersAndHistogramsAndCountsEveryKindOfError) {
  const Clock::time_point start{};
  ShardStats a, b;
  a.sent.inc(100);
  a.acked.inc(98);
  a.error_replies.inc(1);
  a.connected.inc(2);
  a.unacked.inc(1);
  b.sent.inc(50);
  b.acked.inc(50);
  b.bad_replies.inc(2);
  b.connected.inc(1);
  b.connect_failures.inc(3);
  b.disconnects.inc(4);
  for (int i = 1; i <= 100; ++i) a.ack_latency.record(std::chrono::milliseconds(i));
  b.ack_latency.record(std::chrono::milliseconds(500));
  a.stopped_at = start + std::chrono::seconds(10);
  b.stopped_at = start + std::chrono::seconds(20);
  a.first_connect_error = ConnectError{start + std::chrono::seconds(3), 7, "VIN7", "later"};
  b.first_connect_error = ConnectError{start + std::chrono::seconds(1), 4, "VIN4", "earlier"};
  b.not_started = 5;

  std::vector<const ShardStats*> shards{&a, &b};
  FleetResult res = merge_shard_stats(shards, 12, start);
  const RunReport& r = res.report;
  EXPECT_EQ(r.vehicles, 12u);
  EXPECT_EQ(r.sent, 150u);
  EXPECT_EQ(r.acked, 148u);
  EXPECT_EQ(r.connected, 3u);
  EXPECT_EQ(r.unacked, 1u);
  EXPECT_EQ(r.errors, 1u + 2u + 3u + 4u);
  EXPECT_NEAR(r.ack_p50_ms, 51.0, 0.51);  // rank 51 of 101 samples
  EXPECT_NEAR(r.ack_p99_ms, 100.0, 1.0);
  EXPECT_DOUBLE_EQ(r.ack_max_ms, 500.0);
  EXPECT_DOUBLE_EQ(r.duration_s, 20.0);
  EXPECT_DOUBLE_EQ(r.records_per_s, 148.0 / 20.0);
  ASSERT_TRUE(res.first_connect_error.has_value());
  EXPECT_EQ(res.first_connect_error->message, "earlier");
  EXPECT_EQ(res.not_started, 5u);
}

TEST(MergeShardStats, NothingRecordedGivesZeros) {
  ShardStats a;
  std::vector<const ShardStats*> shards{&a};
  FleetResult res = merge_shard_stats(shards, 1, Clock::time_point{});
  EXPECT_EQ(res.report.errors, 0u);
  EXPECT_EQ(res.report.ack_p99_ms, 0.0);
  EXPECT_EQ(res.report.records_per_s, 0.0);
  EXPECT_FALSE(res.first_connect_error.has_value());
}

TEST(Uuid, VersionFourCanonicalForm) {
  std::string u = format_uuid_v4(0x0123456789abcdefULL, 0xfedcba9876543210ULL);
  EXPECT_EQ(u, "01234567-89ab-4def-bedc-ba9876543210");
  std::regex canonical("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  EXPECT_TRUE(std::regex_match(format_uuid_v4(0, 0), canonical)) << format_uuid_v4(0, 0);
  EXPECT_TRUE(std::regex_match(format_uuid_v4(~0ULL, ~0ULL), canonical));
}

}  // namespace
}  // namespace ts::vehicle_sim

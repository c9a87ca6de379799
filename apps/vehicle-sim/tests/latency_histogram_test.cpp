#include "sim/latency_histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "sim/rng.hpp"

namespace ts::vehicle_sim {
namespace {

// Nearest-rank percentile of a sorted sample: the reference the histogram is held to.
std::uint64_t exact_percentile(const std::vector<std::uint64_t>& sorted, double q) {
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void expect_within_one_percent(const std::vector<std::uint64_t>& samples) {
  LatencyHistogram h;
  for (auto v : samples) h.record_ns(v);
  auto sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  ASSERT_EQ(h.count(), samples.size());
  for (double q : {0.01, 0.10, 0.50, 0.75, 0.90, 0.99, 0.999, 1.0}) {
    double exact = static_cast<double>(exact_percentile(sorted, q));
    double got = static_cast<double>(h.percentile_ns(q));
    EXPECT_NEAR(got, exact, exact * 0.01) << "q=" << q;
  }
  EXPECT_EQ(h.min_ns(), sorted.front());
  EXPECT_EQ(h.max_ns(), sorted.back());
}

TEST(LatencyHistogram, EveryValueFallsInsideItsBucketOfAtMostOnePercentWidth) {
  Rng rng(1);
  std::vector<std::uint64_t> values = {0,
                                       1,
                                       127,
                                       128,
                                       129,
                                       255,
                                       256,
                                       1000,
                                       1'000'000,
                                       UINT64_MAX,
                                       UINT64_MAX - 1,
                                       std::uint64_t{1} << 63};
  for (int i = 0; i < 100'000; ++i) values.push_back(rng.next_u64() >> (rng.next_u64() % 64));
  for (auto v : values) {
    std::size_t i = LatencyHistogram::index_of(v);
    ASSERT_LT(i, LatencyHistogram::kBucketCount) << v;
    ASSERT_LE(LatencyHistogram::bucket_low(i), v) << v;
    ASSERT_GE(LatencyHistogram::bucket_high(i), v) << v;
    double width =
        static_cast<double>(LatencyHistogram::bucket_high(i) - LatencyHistogram::bucket_low(i) + 1);
    if (v >= LatencyHistogram::kSubBuckets) {
      ASSERT_LE(width / static_cast<double>(LatencyHistogram::bucket_low(i)), 1.0 / 128) << v;
    } else {
      ASSERT_EQ(width, 1.0);
    }
  }
}

TEST(LatencyHistogram, BucketsAreContiguousAndOrdered) {
  for (std::size_t i = 1; i < LatencyHistogram::kBucketCount; ++i) {
    ASSERT_EQ(LatencyHistogram::bucket_low(i), LatencyHistogram::bucket_high(i - 1) + 1) << i;
  }
  EXPECT_EQ(LatencyHistogram::bucket_high(LatencyHistogram::kBucketCount - 1), UINT64_MAX);
}

TEST(LatencyHistogram, UniformLatenciesMatchExactPercentilesWithinOnePercent) {
  Rng rng(2);
  std::vector<std::uint64_t> samples;
  for (int i = 0; i < 200'000; ++i) {
    samples.push_back(static_cast<std::uint64_t>(rng.uniform(1e6, 100e6)));  // 1-100 ms
  }
  expect_within_one_percent(samples);
}

TEST(LatencyHistogram, LongTailedLatenciesMatchExactPercentilesWithinOnePercent) {
  Rng rng(3);
  std::vector<std::uint64_t> samples;
  for (int i = 0; i < 200'000; ++i) {
    // Exponential around 0.5 ms plus a log-normal-ish tail up to seconds.
    double v = -std::log(1.0 - rng.next_unit()) * 500'000.0 + 50'000.0;
    if (rng.chance(0.02)) v *= std::exp(rng.uniform(0, 8));
    samples.push_back(static_cast<std::uint64_t>(v));
  }
  expect_within_one_percent(samples);
}

TEST(LatencyHistogram, TinyValuesAreExact) {
  std::vector<std::uint64_t> samples;
  for (std::uint64_t v = 0; v < 128; ++v) samples.push_back(v);
  LatencyHistogram h;
  for (auto v : samples) h.record_ns(v);
  EXPECT_EQ(h.percentile_ns(0.5), 63u);
  EXPECT_EQ(h.percentile_ns(1.0), 127u);
  EXPECT_EQ(h.percentile_ns(0.0), 0u);
}

TEST(LatencyHistogram, ConstantLatencyIsReportedExactly) {
  LatencyHistogram h;
  for (int i = 0; i < 1000; ++i) h.record(std::chrono::microseconds(2500));
  EXPECT_EQ(h.percentile_ns(0.5), 2'500'000u);  // the midpoint is clamped to min/max
  EXPECT_DOUBLE_EQ(h.percentile_ms(0.99), 2.5);
  EXPECT_DOUBLE_EQ(h.max_ms(), 2.5);
}

TEST(LatencyHistogram, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.percentile_ns(0.5), 0u);
  EXPECT_EQ(h.min_ns(), 0u);
  EXPECT_EQ(h.max_ns(), 0u);
}

TEST(LatencyHistogram, NegativeDurationCountsAsZero) {
  LatencyHistogram h;
  h.record(std::chrono::nanoseconds(-5));
  EXPECT_EQ(h.count(), 1u);
  EXPECT_EQ(h.max_ns(), 0u);
}

TEST(LatencyHistogram, MergeEqualsRecordingEverythingInOne) {
  Rng rng(4);
  LatencyHistogram a, b, all;
  for (int i = 0; i < 50'000; ++i) {
    auto v = static_cast<std::uint64_t>(rng.uniform(1e5, 5e7));
    (i % 3 == 0 ? a : b).record_ns(v);
    all.record_ns(v);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min_ns(), all.min_ns());
  EXPECT_EQ(a.max_ns(), all.max_ns());
  for (double q : {0.5, 0.9, 0.99, 0.999}) EXPECT_EQ(a.percentile_ns(q), all.percentile_ns(q));
}

TEST(LatencyHistogram, MergingAnEmptyHistogramChangesNothing) {
  LatencyHistogram a, empty;
  a.record_ns(1000);
  a.record_ns(3000);
  a.merge(empty);
  EXPECT_EQ(a.count(), 2u);
  EXPECT_EQ(a.min_ns(), 1000u);
  EXPECT_EQ(a.max_ns(), 3000u);
}

}  // namespace
}  // namespace ts::vehicle_sim

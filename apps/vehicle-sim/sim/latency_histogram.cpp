#include "sim/latency_histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace ts::vehicle_sim {

LatencyHistogram::LatencyHistogram()
    : counts_(std::make_unique<std::array<std::uint64_t, kBucketCount>>()) {
  counts_->fill(0);
}

std::size_t LatencyHistogram::index_of(std::uint64_t ns) {
  if (ns < kSubBuckets) return static_cast<std::size_t>(ns);
  // e = position of the leading one (≥ 7); the next 7 bits pick the linear sub-bucket.
  unsigned e = 63u - static_cast<unsigned>(std::countl_zero(ns));
  unsigned shift = e - kSubBucketBits;
  std::size_t sub = static_cast<std::size_t>((ns >> shift) & (kSubBuckets - 1));
  return kSubBuckets + std::size_t{shift} * kSubBuckets + sub;
}

std::uint64_t LatencyHistogram::bucket_low(std::size_t index) {
  if (index < kSubBuckets) return index;
  std::size_t shift = (index - kSubBuckets) / kSubBuckets;
  std::uint64_t sub = (index - kSubBuckets) % kSubBuckets;
  return (kSubBuckets + sub) << shift;
}

std::uint64_t LatencyHistogram::bucket_high(std::size_t index) {
  if (index < kSubBuckets) return index;
  std::size_t shift = (index - kSubBuckets) / kSubBuckets;
  return bucket_low(index) + ((std::uint64_t{1} << shift) - 1);
}

void LatencyHistogram::record_ns(std::uint64_t ns) {
  ++(*counts_)[index_of(ns)];
  ++count_;
  min_ = std::min(min_, ns);
  max_ = std::max(max_, ns);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < kBucketCount; ++i) (*counts_)[i] += (*other.counts_)[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

std::uint64_t LatencyHistogram::percentile_ns(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBucketCount; ++i) {
    seen += (*counts_)[i];
    if (seen >= rank) {
      std::uint64_t low = bucket_low(i);
      std::uint64_t mid = low + (bucket_high(i) - low) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

}  // namespace ts::vehicle_sim

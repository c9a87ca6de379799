#pragma once
/// Ack latencies in fixed memory: a log-linear histogram in the spirit of HdrHistogram. Values
/// are nanoseconds; below 128 ns each value has its own bucket, above that every power of two is
/// split into 128 equal buckets, so a bucket is at most 1/128 (0.8 %) of its values wide and the
/// reported midpoint is within 0.4 % of any sample in it. 7,424 buckets (58 KiB) cover the whole
/// uint64 range, whatever the number of samples.
///
/// One instance per shard, written by that shard's thread only; shards are merged after their
/// threads have joined. Not thread-safe. Never fails.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace ts::vehicle_sim {

class LatencyHistogram {
 public:
  static constexpr unsigned kSubBucketBits = 7;
  static constexpr std::size_t kSubBuckets = std::size_t{1} << kSubBucketBits;  // 128
  static constexpr std::size_t kBucketCount = kSubBuckets + (64 - kSubBucketBits) * kSubBuckets;

  LatencyHistogram();

  void record(std::chrono::nanoseconds d) {
    record_ns(d.count() < 0 ? 0 : static_cast<std::uint64_t>(d.count()));
  }
  void record_ns(std::uint64_t ns);

  /// Adds every sample of `other`.
  void merge(const LatencyHistogram& other);

  std::uint64_t count() const { return count_; }
  std::uint64_t min_ns() const { return count_ == 0 ? 0 : min_; }
  std::uint64_t max_ns() const { return max_; }

  /// The nearest-rank `q` quantile (q in [0, 1]): a value within 0.4 % of the sample of rank
  /// ceil(q * count) in sorted order. 0 when empty.
  std::uint64_t percentile_ns(double q) const;
  double percentile_ms(double q) const { return static_cast<double>(percentile_ns(q)) / 1e6; }
  double max_ms() const { return static_cast<double>(max_) / 1e6; }

  /// Bucket arithmetic, public for tests.
  static std::size_t index_of(std::uint64_t ns);
  static std::uint64_t bucket_low(std::size_t index);
  static std::uint64_t bucket_high(std::size_t index);  ///< inclusive

 private:
  std::unique_ptr<std::array<std::uint64_t, kBucketCount>> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
};

}  // namespace ts::vehicle_sim

#pragma once
/// Metrics of the vehicle link: the reference's names of spec §9 (kept exactly, for dashboard
/// compatibility) plus ours (`teslasync_link_*`). One LinkMetrics per process, shared by every
/// shard (relaxed atomics); label lookups on the hot path go through a per-shard cache.
#include <atomic>
#include <string>
#include <unordered_map>

#include "core/metrics.hpp"

namespace ts::vehicle_link {

struct LinkMetrics {
  explicit LinkMetrics(core::MetricsRegistry& m);

  core::Family<core::Counter>& record_total;
  core::Family<core::Counter>& record_size_bytes_total;
  core::Family<core::Counter>& dispatch_total;
  core::Counter& record_too_big_total;
  core::Counter& unexpected_record_err_total;
  core::Family<core::Counter>& unknown_message_type_error_total;
  core::Counter& unauthorized_sender_id_total;  ///< registered, never incremented (spec §9)
  core::Family<core::Counter>& rate_limit_exceeded_total;
  core::Counter& socket_err_total;
  core::Family<core::Gauge>& signal_count;
  core::Family<core::Gauge>& vin_signal_count;
  core::Family<core::Counter>& reliable_ack;
  core::Family<core::Counter>& reliable_ack_miss;
  // ours
  core::Counter& connections_accepted;
  core::Counter& tls_handshake_failed;
  core::Counter& tls_native_records;
  core::Family<core::Counter>& identity_rejected;
  core::Family<core::Counter>& bad_record;
  core::Counter& text_frame_closed;
  core::Counter& bad_upgrade;
  core::Counter& status_requests;
  std::atomic<std::int64_t> connections{0};
};

/// Hot-path counters of one record type, looked up once per shard.
struct RecordTypeCounters {
  core::Counter* records;
  core::Counter* bytes;
  core::Counter* dispatched;
};

/// Per-shard cache; used only on its shard's thread.
class ShardMetricsCache {
 public:
  explicit ShardMetricsCache(LinkMetrics& m) : m_(m) {}
  RecordTypeCounters& for_type(const std::string& record_type);

 private:
  LinkMetrics& m_;
  std::unordered_map<std::string, RecordTypeCounters> by_type_;
};

}  // namespace ts::vehicle_link

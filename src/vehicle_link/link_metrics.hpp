#pragma once
/// Metrics of the vehicle link: the reference's names of spec §9 (kept exactly, for dashboard
/// compatibility) plus ours (`teslasync_link_*`). One LinkMetrics per process, shared by every
/// shard (relaxed atomics); label lookups on the hot path go through a per-shard cache.
///
/// The envelope topic is chosen by the vehicle, so it never becomes a label value as it is:
/// `record_type` / `txtype` labels take only the known record types (spec §7.1: V, alerts,
/// errors, connectivity), "" (the unknown-message-type path, spec §4 step 7) and the record
/// types the operator configured in `records`; every other topic is counted as `other`.
#include <atomic>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/metrics.hpp"

namespace ts::vehicle_link {

/// The `record_type` label value of any other topic.
inline constexpr std::string_view kOtherRecordType = "other";
/// Cap of the families labelled by VIN (rate_limit_exceeded_total): a fleet times a few types.
inline constexpr std::size_t kMaxVinLabelledChildren = 100'000;

struct LinkMetrics {
  /// `configured_record_types`: the keys of `records` (label values besides the known types).
  LinkMetrics(core::MetricsRegistry& m, const std::vector<std::string>& configured_record_types);

  /// The label value for envelope topic `tx_type`: itself when known or configured, else
  /// `other`. Any thread.
  const std::string& record_type_label(std::string_view tx_type) const;

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
  core::Counter& connections_per_identity_refused;
  core::Counter& oversize_frames_discarded;
  std::atomic<std::int64_t> connections{0};

 private:
  std::vector<std::string> record_type_labels_;  // known + configured, then "other" last
};

/// Hot-path counters of one record type, looked up once per shard.
struct RecordTypeCounters {
  core::Counter* records;
  core::Counter* bytes;
  core::Counter* dispatched;
};

/// Per-shard cache; used only on its shard's thread. Keyed by label value, so it holds at most
/// one entry per known or configured record type plus `other`.
class ShardMetricsCache {
 public:
  explicit ShardMetricsCache(LinkMetrics& m) : m_(m) {}
  /// The counters of envelope topic `tx_type` (bucketed by LinkMetrics::record_type_label).
  RecordTypeCounters& for_type(std::string_view tx_type);

 private:
  LinkMetrics& m_;
  std::unordered_map<std::string, RecordTypeCounters> by_type_;
};

}  // namespace ts::vehicle_link

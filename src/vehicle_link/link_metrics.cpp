#include "vehicle_link/link_metrics.hpp"

#include <algorithm>

namespace ts::vehicle_link {

namespace {

// spec §7.1 and §4 step 7 (the unknown-message-type path counts under "").
std::vector<std::string> label_values(const std::vector<std::string>& configured) {
  std::vector<std::string> v = {"V", "alerts", "errors", "connectivity", ""};
  for (const auto& t : configured)
    if (std::find(v.begin(), v.end(), t) == v.end()) v.push_back(t);
  v.emplace_back(kOtherRecordType);
  return v;
}

}  // namespace

LinkMetrics::LinkMetrics(core::MetricsRegistry& m,
                         const std::vector<std::string>& configured_record_types)
    : record_total(m.counter("record_total", "Records accepted for processing.", {"record_type"})),
      record_size_bytes_total(m.counter("record_size_bytes_total",
                                        "Bytes of accepted records (after transforms).",
                                        {"record_type"})),
      dispatch_total(m.counter("dispatch_total", "Records handed to dispatchers.", {"record_type"})),
      record_too_big_total(
          m.counter("record_too_big_total", "Messages larger than 1000000 bytes.").get()),
      unexpected_record_err_total(
          m.counter("unexpected_record_err_total", "ERROR replies sent.").get()),
      unknown_message_type_error_total(m.counter(
          "unknown_message_type_error_total",
          "Envelopes that are not a FlatbuffersStream, by union type (decimal).", {"msg_type"})),
      unauthorized_sender_id_total(
          m.counter("unauthorized_sender_id_total", "Registered for compatibility; unused.").get()),
      rate_limit_exceeded_total(m.counter("rate_limit_exceeded_total", "Rate limiter refusals.",
                                          {"device_id", "txtype"}, kMaxVinLabelledChildren)),
      socket_err_total(m.counter("socket_err_total", "WebSocket write failures.").get()),
      signal_count(m.gauge("signal_count", "Signals in rate-limited messages.", {"record_type"})),
      vin_signal_count(m.gauge("vin_signal_count", "signal_count for tracked VINs.",
                               {"record_type", "vin"})),
      reliable_ack(m.counter("reliable_ack", "Reliable ACKs sent.", {"record_type", "dispatcher"})),
      reliable_ack_miss(m.counter("reliable_ack_miss", "Reliable ACKs for a socket already gone.",
                                  {"record_type", "dispatcher"})),
      connections_accepted(m.counter("teslasync_link_connections_total",
                                     "Vehicle connections that passed TLS and identity.")
                               .get()),
      tls_handshake_failed(m.counter("teslasync_link_tls_handshake_failed_total",
                                     "TLS handshakes that failed (no or untrusted client "
                                     "certificate, scanners, timeouts).")
                               .get()),
      tls_native_records(m.counter("teslasync_link_tls_native_records_total",
                                   "TLS 1.3 connections handed from OpenSSL to the native record "
                                   "layer after the handshake (tls.native_record_layer).")
                             .get()),
      identity_rejected(m.counter("teslasync_link_identity_rejected_total",
                                  "Verified certificates rejected by the identity rules (spec "
                                  "§2.3).",
                                  {"reason"})),
      bad_record(m.counter("teslasync_link_bad_record_total", "ERROR replies by cause.",
                           {"reason"})),
      text_frame_closed(m.counter("teslasync_link_text_frame_closed_total",
                                  "Sessions ended by a TEXT WebSocket message.")
                            .get()),
      bad_upgrade(m.counter("teslasync_link_bad_upgrade_total",
                            "HTTP requests that were neither /status nor a WebSocket upgrade.")
                      .get()),
      status_requests(
          m.counter("teslasync_link_status_requests_total", "GET /status on the mTLS port.").get()),
      connections_per_identity_refused(
          m.counter("teslasync_link_connections_per_identity_refused_total",
                    "Connections closed because their certificate identity already had "
                    "max_connections_per_identity open.")
              .get()),
      oversize_frames_discarded(m.counter("teslasync_link_oversize_frames_discarded_total",
                                          "Messages over 1000000 bytes read without being "
                                          "buffered and answered with ERROR.")
                                    .get()),
      record_type_labels_(label_values(configured_record_types)) {
  m.callback_gauge("num_connections", "Open vehicle connections.",
                   [this] { return static_cast<double>(connections.load()); });
}

const std::string& LinkMetrics::record_type_label(std::string_view tx_type) const {
  // A handful of entries: a linear scan is as fast as a hash and needs no allocation.
  for (const auto& v : record_type_labels_)
    if (v == tx_type) return v;
  return record_type_labels_.back();  // "other"
}

RecordTypeCounters& ShardMetricsCache::for_type(std::string_view tx_type) {
  const std::string& t = m_.record_type_label(tx_type);
  auto it = by_type_.find(t);
  if (it != by_type_.end()) return it->second;
  RecordTypeCounters c{&m_.record_total.with({t}), &m_.record_size_bytes_total.with({t}),
                       &m_.dispatch_total.with({t})};
  return by_type_.emplace(t, c).first->second;
}

}  // namespace ts::vehicle_link

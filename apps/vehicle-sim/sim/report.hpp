#pragma once
/// The result of a `vehicle-sim run` and its one-line JSON form (the DESIGN.md contract: the
/// line starts with sent, acked, errors, ack_p50_ms, ack_p99_ms, in that order; more keys
/// follow). Plain value; any thread.
#include <cstdint>
#include <string>

namespace ts::vehicle_sim {

struct RunReport {
  std::uint64_t sent = 0;   ///< V records written to a socket
  std::uint64_t acked = 0;  ///< ACK replies matched to a record sent on that connection
  /// error_replies + bad_replies + connect_failures + disconnects: 0 means a clean run.
  std::uint64_t errors = 0;
  double ack_p50_ms = 0;
  double ack_p99_ms = 0;

  std::uint64_t vehicles = 0;          ///< vehicles asked for
  std::uint64_t connected = 0;         ///< vehicles whose WebSocket upgrade succeeded
  std::uint64_t connect_failures = 0;  ///< vehicles that never got connected
  std::uint64_t disconnects = 0;       ///< connections lost before the sim closed them
  std::uint64_t error_replies = 0;     ///< ERROR frames (message_type 4)
  std::uint64_t bad_replies = 0;       ///< unreadable replies, or ACKs for unknown txids
  std::uint64_t unacked = 0;           ///< records with no reply when their connection ended
  double records_per_s = 0;            ///< acked / duration_s
  double ack_max_ms = 0;
  double duration_s = 0;  ///< from the first connection attempt until the vehicles stopped sending
};

/// `{"sent":…,"acked":…,"errors":…,"ack_p50_ms":…,"ack_p99_ms":…,…}` without a trailing newline.
/// Latencies in ms with 3 decimals.
std::string to_json_line(const RunReport& report);

}  // namespace ts::vehicle_sim

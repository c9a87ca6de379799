#pragma once
/// The per-message steps of spec §4 as named functions: size, envelope, sender check, typed
/// decode and transforms, JSON form, outcome. Pure: no I/O, no clocks (time is an argument), any
/// thread. The server's session and `tsctl decode` call the same `process`, so the "same code
/// path" contract of DESIGN.md holds by construction.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/record.hpp"
#include "wire/envelope.hpp"

namespace ts::pipeline {

/// What the pipeline knows about the connection a frame arrived on (spec §2.3, §2.5).
struct SocketContext {
  std::string vin;              ///< DeviceID from the verified certificate
  std::string sender_id;        ///< "<client_type>.<device_id>"
  std::string client_version;   ///< `Version` request header
  std::string socket_id;        ///< socket UUID (X-TXID when valid)
  std::string network_interface;  ///< `X-Network-Interface` header
};

/// The slice of the server configuration the pipeline reads.
struct PipelineOptions {
  std::vector<std::string> configured_record_types;  ///< keys of `records`
  bool transmit_decoded_records = false;

  bool is_configured(std::string_view record_type) const;
};

enum class OutcomeKind { TooBig, Bad, UnknownType, Ok };

/// Why a frame was answered with ERROR (for logs and metrics; the wire text is always the same).
enum class BadReason { None, Unreadable, UnexpectedSender, PayloadDecode, JsonEncode };
std::string_view to_string(BadReason reason);

struct Outcome {
  OutcomeKind kind = OutcomeKind::Bad;
  BadReason reason = BadReason::None;
  std::string txid;                 ///< echoed in the replies
  std::uint8_t message_type = 0;    ///< envelope union tag (unknown_message_type_error_total)
  Record record;                    ///< for Ok and UnknownType (tx_type "" then)
  std::string json_payload;         ///< protojson when transmit_decoded_records (spec §4 step 6)
  std::size_t payload_size = 0;     ///< record_size_bytes_total: bytes of the transformed payload
};

/// spec §4 steps 2-6 for one binary WebSocket message. `now_ms` is the receive time (Unix ms).
Outcome process(std::span<const std::uint8_t> frame, const SocketContext& socket,
                const PipelineOptions& options, std::int64_t now_ms);

/// spec §4 step 7: the replies to send right away, in order. With `ack_deferred` (a reliable-ack
/// source is configured for the record type) a successful record gets no immediate ACK (§5).
std::vector<wire::Bytes> immediate_replies(const Outcome& outcome, bool ack_deferred);

/// spec §7.5: the CONNECTED (1) / DISCONNECTED (2) record the server emits for a connection.
Record make_connectivity_record(const SocketContext& socket, int status, std::int64_t now_ns);

}  // namespace ts::pipeline

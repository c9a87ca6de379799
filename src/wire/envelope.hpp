#pragma once
/// FlatBuffers envelope of the vehicle link (spec §3). Pure functions, no I/O, any thread.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ts::wire {

using Bytes = std::vector<std::uint8_t>;

/// spec §4 step 2: larger messages get an ERROR reply.
inline constexpr std::size_t kMaxFrameBytes = 1'000'000;

/// spec §3.3: the text of every ERROR reply.
inline constexpr std::string_view kErrorText = "incorrect message format";

/// Union tags of `Message` (spec §3.1).
inline constexpr std::uint8_t kMessageTypeStream = 4;
inline constexpr std::uint8_t kMessageTypeStreamAck = 5;

/// The FlatbuffersStream table of an inbound envelope. Views into the frame's bytes.
struct StreamView {
  std::uint32_t created_at = 0;
  std::string_view sender_id;
  std::string_view payload;
  std::string_view device_type;
  std::string_view device_id;
  std::uint64_t delivered_at_epoch_ms = 0;
};

/// A verified envelope. Views into the frame's bytes: valid while the frame is.
struct EnvelopeView {
  std::string_view txid;
  std::string_view topic;
  std::string_view message_id;
  std::uint8_t message_type = 0;
  bool has_message = false;          ///< the union value offset is present
  std::optional<StreamView> stream;  ///< set when message_type == 4 and the table verified
};

/// Verifies `frame` as a root FlatbuffersEnvelope (no file identifier) and reads it.
/// Returns nullopt when the bytes are not a readable envelope (garbage, truncated, offsets out of
/// range): the reference's "reading out of bounds" case, answered with ERROR (spec §4 step 3).
/// An empty frame is not readable either; the pipeline treats it before calling this.
std::optional<EnvelopeView> decode_envelope(std::span<const std::uint8_t> frame);

/// ACK reply, byte-identical to the reference (spec §3.4 "ACK recipe").
Bytes build_ack(std::string_view txid, std::string_view topic);

/// ERROR reply with payload `incorrect message format`, byte-identical (spec §3.4).
Bytes build_error(std::string_view txid);

/// Any FlatbuffersStream envelope, built with the reference's call sequence (spec §3.4 "ERROR
/// recipe"). Vehicles (vehicle-sim, tests) use it to build their frames; zero scalars are omitted.
struct StreamFrame {
  std::string_view txid;
  std::string_view topic;
  std::string_view message_id;
  std::string_view sender_id;
  std::string_view payload;
  std::string_view device_type;
  std::string_view device_id;
  std::uint32_t created_at = 0;
  std::uint64_t delivered_at_epoch_ms = 0;
};
Bytes build_stream_frame(const StreamFrame& frame);

/// An envelope whose union is FlatbuffersStreamAck (an empty table), as a vehicle-side test of
/// the unknown-type path.
Bytes build_stream_ack_frame(std::string_view txid, std::string_view topic);

/// Reads a reply frame sent by a server (vehicle side: vehicle-sim, tsctl check tools, tests).
struct Reply {
  std::uint8_t message_type = 0;  ///< 5 = ACK, 4 = ERROR
  std::string txid;
  std::string topic;
  std::string error_text;  ///< stream payload of an ERROR reply
};
std::optional<Reply> decode_reply(std::span<const std::uint8_t> frame);

}  // namespace ts::wire

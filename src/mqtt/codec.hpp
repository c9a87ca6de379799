#pragma once
/// MQTT 3.1.1 packet encoding and decoding (OASIS MQTT Version 3.1.1, 2014) for the client side:
/// CONNECT, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, PINGREQ and DISCONNECT out;
/// CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK and PINGRESP in.
///
/// Pure functions, no I/O, no state: encoders append to a caller-owned buffer (reused across
/// packets, so encoding allocates only when the buffer grows); decoders return views into the
/// caller's input. Thread-safe.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "mqtt/errc.hpp"

namespace ts::mqtt {

/// Control packet types (spec 2.2.1).
enum class PacketType : std::uint8_t {
  Connect = 1,
  Connack = 2,
  Publish = 3,
  Puback = 4,
  Pubrec = 5,
  Pubrel = 6,
  Pubcomp = 7,
  Subscribe = 8,
  Suback = 9,
  Unsubscribe = 10,
  Unsuback = 11,
  Pingreq = 12,
  Pingresp = 13,
  Disconnect = 14,
};

/// Largest Remaining Length the 4-byte varint can carry (spec 2.2.3).
inline constexpr std::size_t kMaxRemainingLength = 268'435'455;
/// Topic names and other UTF-8 strings are length-prefixed with 16 bits (spec 1.5.3).
inline constexpr std::size_t kMaxStringLength = 65'535;
/// The most bytes a PUBLISH needs before its payload: fixed header (5), topic (2 + 65,535) and
/// packet identifier (2). A reader that can buffer this much can always get to the payload.
inline constexpr std::size_t kMaxPublishHeadBytes = 5 + 2 + kMaxStringLength + 2;

/// SUBACK return code for a refused filter (spec 3.9.3); 0..2 are the granted QoS.
inline constexpr std::uint8_t kSubackFailure = 0x80;

/// Appends the Remaining Length varint (spec 2.2.3). `n` must be <= kMaxRemainingLength.
void append_remaining_length(std::string& out, std::size_t n);

/// True if `topic` may be published to: 1..65535 bytes of well-formed UTF-8 (no overlong forms,
/// no surrogates), no U+0000, no wildcard `+` or `#` (spec 4.7.1, 4.7.3, 1.5.3).
bool valid_topic_name(std::string_view topic) noexcept;

/// True if `filter` may be subscribed to: the UTF-8 rules of a topic name, and wildcards only
/// where spec 4.7.1 allows them: `#` alone or after `/`, as the last character; `+` filling a
/// whole level ("a/+/b", "+", "+/#"; not "a+" or "a/+b").
bool valid_topic_filter(std::string_view filter) noexcept;

/// CONNECT fields the client uses (spec 3.1). No will message.
struct ConnectFields {
  std::string_view client_id;  ///< may be empty with clean_session (the broker assigns one)
  bool clean_session = true;
  std::uint16_t keep_alive_seconds = 30;
  bool has_username = false;
  std::string_view username;
  bool has_password = false;  ///< spec 3.1.2.9: only together with a username
  std::string_view password;
};

/// Appends a CONNECT packet (protocol name "MQTT", level 4).
void encode_connect(std::string& out, const ConnectFields& fields);

/// Size of the PUBLISH packet encode_publish would append, or 0 if it cannot be encoded
/// (topic longer than 65,535 bytes or Remaining Length too large).
std::size_t publish_size(std::string_view topic, std::size_t payload_size, int qos) noexcept;

/// Appends a PUBLISH packet. `qos` 0..2; `packet_id` (1..65535) is written only for QoS 1/2.
/// Preconditions (asserted): publish_size(...) != 0, valid qos, packet_id != 0 when qos > 0.
void encode_publish(std::string& out, std::string_view topic, std::string_view payload, int qos,
                    bool retain, std::uint16_t packet_id, bool dup = false);

/// Appends PUBACK (QoS 1 receipt), PUBREC (QoS 2, first answer), PUBREL (QoS 2, second step;
/// fixed-header flags 0b0010) or PUBCOMP (QoS 2, last answer) for `packet_id` (spec 3.4-3.7).
void encode_puback(std::string& out, std::uint16_t packet_id);
void encode_pubrec(std::string& out, std::uint16_t packet_id);
void encode_pubrel(std::string& out, std::uint16_t packet_id);
void encode_pubcomp(std::string& out, std::uint16_t packet_id);
void encode_pingreq(std::string& out);
void encode_disconnect(std::string& out);

/// One topic filter of a SUBSCRIBE with its requested QoS (0..2).
struct Subscription {
  std::string_view filter;
  std::uint8_t qos = 1;
};

/// Size of the SUBSCRIBE packet encode_subscribe would append, or 0 if it cannot be encoded
/// (no filters, a filter longer than 65,535 bytes, or Remaining Length too large).
std::size_t subscribe_size(std::span<const Subscription> subscriptions) noexcept;

/// Appends a SUBSCRIBE packet (spec 3.8; fixed-header flags 0b0010). Preconditions (asserted):
/// subscribe_size(...) != 0, packet_id != 0, every qos <= 2. Filters are not validated here:
/// check them with valid_topic_filter() first.
void encode_subscribe(std::string& out, std::uint16_t packet_id,
                      std::span<const Subscription> subscriptions);

/// One decoded packet from the broker. Fields not carried by the type are zero or empty. The
/// string views point into the decoder's input and live as long as it does.
struct Packet {
  PacketType type{};
  std::uint8_t flags = 0;         ///< low nibble of the fixed header
  std::uint16_t packet_id = 0;    ///< PUBLISH (QoS 1/2), PUBACK..PUBCOMP, SUBACK, UNSUBACK
  bool session_present = false;   ///< CONNACK
  std::uint8_t connack_code = 0;  ///< CONNACK return code
  std::size_t remaining_length = 0;
  // PUBLISH (spec 3.3)
  std::uint8_t qos = 0;
  bool dup = false;
  bool retain = false;
  std::string_view topic;
  std::string_view payload;
  /// SUBACK: one return code per filter of the SUBSCRIBE, in order (0, 1, 2 or kSubackFailure).
  std::string_view return_codes;

  std::uint8_t return_code(std::size_t i) const {
    return static_cast<std::uint8_t>(return_codes[i]);
  }
};

/// Which packets a decoder accepts: what a broker may send to this kind of client.
enum class ClientKind {
  /// A client that never subscribes (the publisher in dispatch/mqtt): CONNACK, PUBACK, PUBREC,
  /// PUBREL, PUBCOMP, PINGRESP. A PUBLISH or SUBACK is Malformed.
  PublishOnly,
  /// A client that subscribes: additionally PUBLISH, SUBACK and UNSUBACK.
  Subscriber,
};

enum class DecodeStatus {
  Ok,         ///< `packet` is valid; `consumed` bytes belong to it
  NeedMore,   ///< `input` holds an incomplete packet; read more and try again
  Malformed,  ///< not a valid packet a broker may send to this kind of client
  /// Subscriber only: a well-formed PUBLISH head whose Remaining Length exceeds the caller's
  /// limit. `packet` has type, flags, qos, dup, retain, topic and packet_id (no payload);
  /// `consumed` covers the fixed header, topic and packet id, and the next `skip` bytes of the
  /// stream are its payload, for the caller to discard.
  TooLarge,
};

struct DecodeResult {
  DecodeStatus status = DecodeStatus::NeedMore;
  Packet packet;
  std::size_t consumed = 0;
  std::size_t skip = 0;  ///< TooLarge only
};

/// Decodes the first packet in `input` if it is one a broker may send to `kind`, with the exact
/// remaining lengths, reserved flags and field rules the spec requires (PUBLISH: QoS 0..2, DUP 0
/// at QoS 0, a valid topic name, a non-zero packet id at QoS 1/2; SUBACK: at least one return
/// code, each 0, 1, 2 or 0x80). A packet whose Remaining Length exceeds `max_remaining_length` is
/// Malformed, except a PUBLISH to a Subscriber, which is TooLarge once its head has arrived.
/// Anything else (client-to-server types, reserved types, a Remaining Length over 4 bytes) is
/// Malformed. With the defaults this is exactly the publisher's decoder: Ok, NeedMore or
/// Malformed, never TooLarge. Never reads outside `input`.
DecodeResult decode_packet(std::string_view input, ClientKind kind = ClientKind::PublishOnly,
                           std::size_t max_remaining_length = kMaxRemainingLength) noexcept;

}  // namespace ts::mqtt

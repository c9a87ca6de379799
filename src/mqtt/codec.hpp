#pragma once
/// MQTT 3.1.1 packet encoding and decoding (OASIS MQTT Version 3.1.1, 2014), for a client that
/// only publishes: CONNECT, PUBLISH, PUBREL, PINGREQ and DISCONNECT out; CONNACK, PUBACK,
/// PUBREC, PUBCOMP and PINGRESP in.
///
/// Pure functions, no I/O, no state: encoders append to a caller-owned buffer (reused across
/// packets, so encoding allocates only when the buffer grows). Thread-safe.
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

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

/// Errors of the MQTT client, registered as an error category ("mqtt"). The CONNACK refusals
/// keep the return-code numbers of spec 3.2.2.3.
enum class errc {
  unacceptable_protocol_version = 1,
  identifier_rejected = 2,
  server_unavailable = 3,
  bad_username_or_password = 4,
  not_authorized = 5,
  unknown_connack_code = 6,  ///< a CONNACK return code above 5
  malformed_packet = 20,     ///< the broker sent bytes that are not a valid MQTT packet
  protocol_violation,        ///< a valid packet the broker must not send at this point
  ping_timeout,              ///< no PINGRESP within the keep-alive interval
  not_connected,             ///< publish while no broker session is up
  too_many_unconfirmed,      ///< publish beyond the unconfirmed-message bound
  invalid_topic,             ///< topic name empty, too long, not UTF-8, or with + # or U+0000
  packet_too_large,          ///< a PUBLISH whose Remaining Length would exceed 268,435,455
  connection_lost,           ///< the session ended before the message was confirmed
  shutting_down,
};

const boost::system::error_category& category() noexcept;
inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), category()};
}

/// The CONNACK return code (spec 3.2.2.3) as an error; success for 0.
boost::system::error_code connack_error(std::uint8_t return_code) noexcept;

/// Appends the Remaining Length varint (spec 2.2.3). `n` must be <= kMaxRemainingLength.
void append_remaining_length(std::string& out, std::size_t n);

/// True if `topic` may be published to: 1..65535 bytes of well-formed UTF-8 (no overlong forms,
/// no surrogates), no U+0000, no wildcard `+` or `#` (spec 4.7.1, 4.7.3, 1.5.3).
bool valid_topic_name(std::string_view topic) noexcept;

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

/// Appends PUBREL for `packet_id` (QoS 2, second step; fixed-header flags 0b0010).
void encode_pubrel(std::string& out, std::uint16_t packet_id);
void encode_pingreq(std::string& out);
void encode_disconnect(std::string& out);

/// One decoded packet from the broker. Fields not carried by the type are zero.
struct Packet {
  PacketType type{};
  std::uint8_t flags = 0;         ///< low nibble of the fixed header
  std::uint16_t packet_id = 0;    ///< PUBACK, PUBREC, PUBREL, PUBCOMP
  bool session_present = false;   ///< CONNACK
  std::uint8_t connack_code = 0;  ///< CONNACK return code
  std::size_t remaining_length = 0;
};

enum class DecodeStatus {
  Ok,         ///< `packet` is valid; `consumed` bytes belong to it
  NeedMore,   ///< `input` holds an incomplete packet; read more and try again
  Malformed,  ///< not a valid packet a broker may send to a publishing client
};

struct DecodeResult {
  DecodeStatus status = DecodeStatus::NeedMore;
  Packet packet;
  std::size_t consumed = 0;
};

/// Decodes the first packet in `input` if it is one a broker sends to a client that does not
/// subscribe: CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, PINGRESP, with the exact remaining
/// lengths and reserved flags the spec requires. Anything else (including PUBLISH, SUBACK,
/// client-to-server types, a Remaining Length over 4 bytes) is Malformed.
DecodeResult decode_packet(std::string_view input) noexcept;

}  // namespace ts::mqtt

namespace boost::system {
template <>
struct is_error_code_enum<ts::mqtt::errc> : std::true_type {};
}  // namespace boost::system

// MQTT 3.1.1 packets, written from the OASIS specification (section numbers cited inline).
#include "mqtt/codec.hpp"

#include <cassert>
#include <string>

namespace ts::mqtt {
namespace {

// Boost's error_category has a protected non-virtual destructor by design (categories are never
// deleted through a base pointer); -Wnon-virtual-dtor does not know that.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class Category final : public boost::system::error_category {
 public:
  constexpr Category() noexcept : error_category(0x74736d7174743031ULL) {}
  const char* name() const noexcept override { return "mqtt"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::unacceptable_protocol_version:
        return "broker refused the connection: unacceptable protocol version";
      case errc::identifier_rejected:
        return "broker refused the connection: identifier rejected";
      case errc::server_unavailable:
        return "broker refused the connection: server unavailable";
      case errc::bad_username_or_password:
        return "broker refused the connection: bad username or password";
      case errc::not_authorized:
        return "broker refused the connection: not authorized";
      case errc::unknown_connack_code:
        return "broker refused the connection: unknown CONNACK return code";
      case errc::malformed_packet:
        return "malformed packet from the broker";
      case errc::protocol_violation:
        return "unexpected packet from the broker";
      case errc::ping_timeout:
        return "no PINGRESP within the keep-alive interval";
      case errc::not_connected:
        return "not connected to the broker";
      case errc::too_many_unconfirmed:
        return "too many messages unconfirmed by the broker";
      case errc::invalid_topic:
        return "invalid topic name";
      case errc::packet_too_large:
        return "message too large for MQTT";
      case errc::connection_lost:
        return "broker connection lost";
      case errc::shutting_down:
        return "MQTT client shutting down";
    }
    return "unknown mqtt error " + std::to_string(ev);
  }
};
#pragma GCC diagnostic pop

void append_u16(std::string& out, std::size_t v) {
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

// spec 1.5.3: a UTF-8 string is a 16-bit big-endian length followed by the bytes.
void append_string(std::string& out, std::string_view s) {
  assert(s.size() <= kMaxStringLength);
  append_u16(out, s.size());
  out.append(s);
}

std::size_t varint_size(std::size_t n) noexcept {
  return n < 128 ? 1 : n < 16'384 ? 2 : n < 2'097'152 ? 3 : 4;
}

void encode_ack_like(std::string& out, std::uint8_t first_byte, std::uint16_t packet_id) {
  out.push_back(static_cast<char>(first_byte));
  out.push_back(2);
  append_u16(out, packet_id);
}

}  // namespace

const boost::system::error_category& category() noexcept {
  static const Category instance;
  return instance;
}

boost::system::error_code connack_error(std::uint8_t return_code) noexcept {
  // spec 3.2.2.3, table 3.1: 0 accepted, 1..5 refusals, 6..255 reserved.
  if (return_code == 0) return {};
  if (return_code <= 5) return make_error_code(static_cast<errc>(return_code));
  return make_error_code(errc::unknown_connack_code);
}

void append_remaining_length(std::string& out, std::size_t n) {
  assert(n <= kMaxRemainingLength);
  // spec 2.2.3: 7 bits per byte, least significant group first, bit 7 = more bytes follow.
  do {
    auto byte = static_cast<std::uint8_t>(n & 0x7f);
    n >>= 7;
    if (n > 0) byte |= 0x80;
    out.push_back(static_cast<char>(byte));
  } while (n > 0);
}

bool valid_topic_name(std::string_view topic) noexcept {
  // spec 4.7.3: at least one character; 1.5.3: at most 65,535 bytes of well-formed UTF-8
  // (RFC 3629: no overlong encodings, no surrogates, nothing above U+10FFFF), no U+0000;
  // 4.7.1: wildcards are not allowed in topic names.
  if (topic.empty() || topic.size() > kMaxStringLength) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(topic.data());
  const auto* end = p + topic.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      if (c == 0 || c == '+' || c == '#') return false;
      ++p;
      continue;
    }
    int extra;
    std::uint32_t cp;
    std::uint32_t min;
    if ((c & 0xe0) == 0xc0) {
      extra = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;  // continuation byte without a lead byte, or 0xf8..0xff
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    p += extra + 1;
  }
  return true;
}

void encode_connect(std::string& out, const ConnectFields& f) {
  assert(!f.has_password || f.has_username);  // spec 3.1.2.9
  // Variable header (spec 3.1.2): protocol name, level 4, flags, keep-alive = 10 bytes.
  std::size_t remaining = 10 + 2 + f.client_id.size();
  if (f.has_username) remaining += 2 + f.username.size();
  if (f.has_password) remaining += 2 + f.password.size();
  out.push_back(static_cast<char>(static_cast<std::uint8_t>(PacketType::Connect) << 4));
  append_remaining_length(out, remaining);
  append_string(out, "MQTT");
  out.push_back(4);  // protocol level 3.1.1
  std::uint8_t flags = 0;
  if (f.has_username) flags |= 0x80;
  if (f.has_password) flags |= 0x40;
  if (f.clean_session) flags |= 0x02;
  out.push_back(static_cast<char>(flags));
  append_u16(out, f.keep_alive_seconds);
  // Payload (spec 3.1.3): client id, [will topic, will message], [username], [password].
  append_string(out, f.client_id);
  if (f.has_username) append_string(out, f.username);
  if (f.has_password) append_string(out, f.password);
}

std::size_t publish_size(std::string_view topic, std::size_t payload_size, int qos) noexcept {
  if (topic.size() > kMaxStringLength) return 0;
  const std::size_t header = 2 + topic.size() + (qos > 0 ? 2 : 0);
  if (payload_size > kMaxRemainingLength - header) return 0;
  const std::size_t remaining = header + payload_size;
  return 1 + varint_size(remaining) + remaining;
}

void encode_publish(std::string& out, std::string_view topic, std::string_view payload, int qos,
                    bool retain, std::uint16_t packet_id, bool dup) {
  assert(qos >= 0 && qos <= 2);
  assert(qos == 0 || packet_id != 0);
  assert(publish_size(topic, payload.size(), qos) != 0);
  // spec 3.3.1: DUP bit 3, QoS bits 2-1, RETAIN bit 0.
  std::uint8_t first = static_cast<std::uint8_t>(PacketType::Publish) << 4;
  if (dup) first |= 0x08;
  first |= static_cast<std::uint8_t>(qos << 1);
  if (retain) first |= 0x01;
  out.push_back(static_cast<char>(first));
  append_remaining_length(out, 2 + topic.size() + (qos > 0 ? 2 : 0) + payload.size());
  append_string(out, topic);                // spec 3.3.2.1
  if (qos > 0) append_u16(out, packet_id);  // spec 3.3.2.2
  out.append(payload);                      // spec 3.3.3
}

void encode_pubrel(std::string& out, std::uint16_t packet_id) {
  // spec 3.6.1: fixed-header flags are reserved and must be 0010.
  encode_ack_like(out, static_cast<std::uint8_t>(PacketType::Pubrel) << 4 | 0x02, packet_id);
}

void encode_pingreq(std::string& out) {
  out.push_back(static_cast<char>(static_cast<std::uint8_t>(PacketType::Pingreq) << 4));
  out.push_back(0);
}

void encode_disconnect(std::string& out) {
  out.push_back(static_cast<char>(static_cast<std::uint8_t>(PacketType::Disconnect) << 4));
  out.push_back(0);
}

DecodeResult decode_packet(std::string_view input) noexcept {
  DecodeResult r;
  if (input.empty()) return r;
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  const auto type = static_cast<PacketType>(in[0] >> 4);
  const std::uint8_t flags = in[0] & 0x0f;

  // The packets a broker sends to a publishing client, with their fixed flags (spec 2.2.2)
  // and Remaining Lengths (3.2, 3.4-3.7, 3.13). Checked before the whole packet has arrived
  // so garbage is rejected at once rather than waited for.
  std::size_t expected_length;
  std::uint8_t expected_flags = 0;
  switch (type) {
    case PacketType::Connack:
    case PacketType::Puback:
    case PacketType::Pubrec:
    case PacketType::Pubcomp:
      expected_length = 2;
      break;
    case PacketType::Pubrel:
      expected_length = 2;
      expected_flags = 0x02;
      break;
    case PacketType::Pingresp:
      expected_length = 0;
      break;
    default:
      r.status = DecodeStatus::Malformed;
      return r;
  }
  if (flags != expected_flags) {
    r.status = DecodeStatus::Malformed;
    return r;
  }

  // spec 2.2.3: Remaining Length, at most 4 bytes.
  std::size_t remaining = 0;
  std::size_t pos = 1;
  for (int shift = 0;; shift += 7) {
    if (pos >= input.size()) return r;  // NeedMore
    if (shift > 21) {
      r.status = DecodeStatus::Malformed;
      return r;
    }
    const unsigned char b = in[pos++];
    remaining |= static_cast<std::size_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) break;
  }
  if (remaining != expected_length) {
    r.status = DecodeStatus::Malformed;
    return r;
  }
  if (input.size() - pos < remaining) return r;  // NeedMore

  Packet& p = r.packet;
  p.type = type;
  p.flags = flags;
  p.remaining_length = remaining;
  const unsigned char* body = in + pos;
  if (type == PacketType::Connack) {
    // spec 3.2.2.1: bits 7-1 of the acknowledge flags are reserved and must be 0.
    if ((body[0] & 0xfe) != 0) {
      r.status = DecodeStatus::Malformed;
      return r;
    }
    p.session_present = (body[0] & 0x01) != 0;
    p.connack_code = body[1];
  } else if (remaining == 2) {
    p.packet_id = static_cast<std::uint16_t>(body[0] << 8 | body[1]);
    if (p.packet_id == 0) {  // spec 2.3.1: packet identifiers are non-zero
      r.status = DecodeStatus::Malformed;
      return r;
    }
  }
  r.status = DecodeStatus::Ok;
  r.consumed = pos + remaining;
  return r;
}

}  // namespace ts::mqtt

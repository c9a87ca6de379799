// MQTT 3.1.1 packets, written from the OASIS specification (section numbers cited inline).
#include "mqtt/codec.hpp"

#include <cassert>
#include <span>
#include <string>

namespace ts::mqtt {
namespace {

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

namespace {

// spec 1.5.3: at most 65,535 bytes of well-formed UTF-8 (RFC 3629: no overlong encodings, no
// surrogates, nothing above U+10FFFF) and no U+0000. `wildcards` lets '+' and '#' through.
bool valid_utf8_string(std::string_view s, bool wildcards) noexcept {
  if (s.size() > kMaxStringLength) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      if (c == 0 || (!wildcards && (c == '+' || c == '#'))) return false;
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

}  // namespace

bool valid_topic_name(std::string_view topic) noexcept {
  // spec 4.7.3: at least one character; 4.7.1: wildcards are not allowed in topic names.
  return !topic.empty() && valid_utf8_string(topic, /*wildcards=*/false);
}

bool valid_topic_filter(std::string_view filter) noexcept {
  // spec 4.7.3: at least one character.
  if (filter.empty() || !valid_utf8_string(filter, /*wildcards=*/true)) return false;
  // spec 4.7.1.2: '#' occupies a whole level and is the last character of the filter;
  // 4.7.1.3: '+' occupies a whole level. Both are ASCII, so byte positions are safe in UTF-8.
  for (std::size_t i = 0; i < filter.size(); ++i) {
    const char c = filter[i];
    if (c != '+' && c != '#') continue;
    const bool starts_level = i == 0 || filter[i - 1] == '/';
    const bool ends_level = i + 1 == filter.size() || filter[i + 1] == '/';
    if (!starts_level || !ends_level) return false;
    if (c == '#' && i + 1 != filter.size()) return false;
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

void encode_puback(std::string& out, std::uint16_t packet_id) {
  encode_ack_like(out, static_cast<std::uint8_t>(PacketType::Puback) << 4, packet_id);  // 3.4
}

void encode_pubrec(std::string& out, std::uint16_t packet_id) {
  encode_ack_like(out, static_cast<std::uint8_t>(PacketType::Pubrec) << 4, packet_id);  // 3.5
}

void encode_pubcomp(std::string& out, std::uint16_t packet_id) {
  encode_ack_like(out, static_cast<std::uint8_t>(PacketType::Pubcomp) << 4, packet_id);  // 3.7
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

namespace {

// Remaining Length of the SUBSCRIBE for these filters, or 0 if it cannot be encoded.
std::size_t subscribe_remaining(std::span<const Subscription> subscriptions) noexcept {
  if (subscriptions.empty()) return 0;  // spec 3.8.3: at least one filter
  std::size_t remaining = 2;            // packet identifier
  for (const Subscription& s : subscriptions) {
    if (s.filter.size() > kMaxStringLength) return 0;
    remaining += 2 + s.filter.size() + 1;
    if (remaining > kMaxRemainingLength) return 0;
  }
  return remaining;
}

}  // namespace

std::size_t subscribe_size(std::span<const Subscription> subscriptions) noexcept {
  const std::size_t remaining = subscribe_remaining(subscriptions);
  return remaining == 0 ? 0 : 1 + varint_size(remaining) + remaining;
}

void encode_subscribe(std::string& out, std::uint16_t packet_id,
                      std::span<const Subscription> subscriptions) {
  const std::size_t remaining = subscribe_remaining(subscriptions);
  assert(remaining != 0);
  assert(packet_id != 0);
  // spec 3.8.1: fixed-header flags are reserved and must be 0010.
  out.push_back(static_cast<char>(static_cast<std::uint8_t>(PacketType::Subscribe) << 4 | 0x02));
  append_remaining_length(out, remaining);
  append_u16(out, packet_id);  // spec 3.8.2
  for (const Subscription& s : subscriptions) {
    assert(s.qos <= 2);
    append_string(out, s.filter);                       // spec 3.8.3: filter,
    out.push_back(static_cast<char>(s.qos & 0x03));  // then Requested QoS (bits 7-2 reserved)
  }
}

namespace {

std::uint16_t read_u16(const unsigned char* p) noexcept {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

// The head of a PUBLISH (spec 3.3.2): topic name, then the packet identifier at QoS 1/2. `body`
// holds at least `available` bytes of a packet whose Remaining Length is `remaining`. Returns
// the head's size, 0 if more bytes are needed, or sets `bad` if the head is invalid.
std::size_t decode_publish_head(const unsigned char* body, std::size_t available,
                                std::size_t remaining, Packet& p, bool& bad) noexcept {
  if (available < 2) return 0;
  const std::size_t topic_length = read_u16(body);
  const std::size_t head = 2 + topic_length + (p.qos > 0 ? 2 : 0);
  if (head > remaining) {
    bad = true;
    return 0;
  }
  if (available < head) return 0;
  p.topic = std::string_view(reinterpret_cast<const char*>(body + 2), topic_length);
  if (!valid_topic_name(p.topic)) {  // spec 3.3.2.1: no wildcards, well-formed UTF-8
    bad = true;
    return 0;
  }
  if (p.qos > 0) {
    p.packet_id = read_u16(body + 2 + topic_length);
    if (p.packet_id == 0) {  // spec 2.3.1: packet identifiers are non-zero
      bad = true;
      return 0;
    }
  }
  return head;
}

}  // namespace

DecodeResult decode_packet(std::string_view input, ClientKind kind,
                           std::size_t max_remaining_length) noexcept {
  DecodeResult r;
  if (input.empty()) return r;
  const auto malformed = [&r] {
    r.status = DecodeStatus::Malformed;
    return r;
  };
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  const auto type = static_cast<PacketType>(in[0] >> 4);
  const std::uint8_t flags = in[0] & 0x0f;
  const bool subscriber = kind == ClientKind::Subscriber;
  Packet& p = r.packet;

  // The packets a broker sends to this kind of client, with their fixed flags (spec 2.2.2) and
  // Remaining Lengths (3.2-3.7, 3.9, 3.11, 3.13). Checked before the whole packet has arrived
  // so garbage is rejected at once rather than waited for.
  std::size_t length = 0;  // the exact length, or the minimum one when !exact
  bool exact = true;
  std::uint8_t expected_flags = 0;
  switch (type) {
    case PacketType::Connack:
    case PacketType::Puback:
    case PacketType::Pubrec:
    case PacketType::Pubcomp:
      length = 2;
      break;
    case PacketType::Pubrel:
      length = 2;
      expected_flags = 0x02;
      break;
    case PacketType::Pingresp:
      length = 0;
      break;
    case PacketType::Unsuback:
      if (!subscriber) return malformed();
      length = 2;
      break;
    case PacketType::Suback:  // spec 3.9: packet id and at least one return code
      if (!subscriber) return malformed();
      length = 3;
      exact = false;
      break;
    case PacketType::Publish:  // spec 3.3.1: DUP bit 3, QoS bits 2-1, RETAIN bit 0
      if (!subscriber) return malformed();
      p.qos = (flags >> 1) & 0x03;
      p.dup = (flags & 0x08) != 0;
      p.retain = (flags & 0x01) != 0;
      if (p.qos == 3) return malformed();            // spec 3.3.1.2
      if (p.dup && p.qos == 0) return malformed();   // spec 3.3.1.1
      length = 2 + 1 + (p.qos > 0 ? 2 : 0);          // a topic has at least one character
      exact = false;
      expected_flags = flags;
      break;
    default:
      return malformed();
  }
  if (flags != expected_flags) return malformed();

  // spec 2.2.3: Remaining Length, at most 4 bytes.
  std::size_t remaining = 0;
  std::size_t pos = 1;
  for (int shift = 0;; shift += 7) {
    if (pos >= input.size()) return r;  // NeedMore
    if (shift > 21) return malformed();
    const unsigned char b = in[pos++];
    remaining |= static_cast<std::size_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) break;
  }
  if (exact ? remaining != length : remaining < length) return malformed();
  const unsigned char* body = in + pos;
  const std::size_t available = input.size() - pos;
  p.type = type;
  p.flags = flags;
  p.remaining_length = remaining;

  if (remaining > max_remaining_length) {
    if (type != PacketType::Publish) return malformed();
    bool bad = false;
    const std::size_t head = decode_publish_head(body, available, remaining, p, bad);
    if (bad) return malformed();
    if (head == 0) return DecodeResult{};  // NeedMore
    r.status = DecodeStatus::TooLarge;
    r.consumed = pos + head;
    r.skip = remaining - head;
    return r;
  }
  if (available < remaining) return DecodeResult{};  // NeedMore

  switch (type) {
    case PacketType::Connack:
      // spec 3.2.2.1: bits 7-1 of the acknowledge flags are reserved and must be 0.
      if ((body[0] & 0xfe) != 0) return malformed();
      p.session_present = (body[0] & 0x01) != 0;
      p.connack_code = body[1];
      break;
    case PacketType::Pingresp:
      break;
    case PacketType::Publish: {
      bool bad = false;
      const std::size_t head = decode_publish_head(body, remaining, remaining, p, bad);
      if (bad || head == 0) return malformed();
      p.payload = std::string_view(reinterpret_cast<const char*>(body + head), remaining - head);
      break;
    }
    case PacketType::Suback:
      p.packet_id = read_u16(body);
      if (p.packet_id == 0) return malformed();
      p.return_codes = std::string_view(reinterpret_cast<const char*>(body + 2), remaining - 2);
      for (const char c : p.return_codes) {  // spec 3.9.3: 0x00, 0x01, 0x02 or 0x80
        const auto code = static_cast<std::uint8_t>(c);
        if (code > 2 && code != kSubackFailure) return malformed();
      }
      break;
    default:  // PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK: a packet identifier
      p.packet_id = read_u16(body);
      if (p.packet_id == 0) return malformed();  // spec 2.3.1: packet identifiers are non-zero
      break;
  }
  r.status = DecodeStatus::Ok;
  r.consumed = pos + remaining;
  return r;
}

}  // namespace ts::mqtt

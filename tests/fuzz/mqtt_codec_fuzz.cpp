// libFuzzer target: a byte stream from a broker through both MQTT decoders of ts::mqtt (the
// publisher's and the subscriber's), packet after packet, as the clients read it. Traps when an
// invariant breaks: a decoder claims more bytes than it was given, a view points outside the
// input, a decoded PUBLISH does not re-encode to the bytes it came from, or a packet the
// publisher may receive decodes differently for the subscriber. Seeds: seeds/mqtt/.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mqtt/codec.hpp"

namespace {

namespace mqtt = ts::mqtt;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

// Decodes `stream` packet by packet the way the clients do; returns the packets it decoded.
void run(std::string_view stream, mqtt::ClientKind kind, std::size_t max_remaining) {
  std::size_t pos = 0;
  while (pos < stream.size()) {
    const std::string_view in = stream.substr(pos);
    const mqtt::DecodeResult r = mqtt::decode_packet(in, kind, max_remaining);
    const mqtt::Packet& p = r.packet;
    switch (r.status) {
      case mqtt::DecodeStatus::NeedMore:
      case mqtt::DecodeStatus::Malformed:
        check(r.consumed == 0);
        return;
      case mqtt::DecodeStatus::TooLarge:
        check(kind == mqtt::ClientKind::Subscriber && p.type == mqtt::PacketType::Publish);
        check(r.consumed <= in.size() && p.remaining_length > max_remaining);
        check(r.skip < p.remaining_length && inside(p.topic, in));
        check(mqtt::valid_topic_name(p.topic));
        pos += r.consumed + r.skip;  // the subscriber discards the payload
        continue;
      case mqtt::DecodeStatus::Ok:
        break;
    }
    check(r.consumed > 0 && r.consumed <= in.size());
    check(p.remaining_length <= max_remaining && p.remaining_length < r.consumed);
    check(inside(p.topic, in) && inside(p.payload, in) && inside(p.return_codes, in));
    const std::string_view body = in.substr(r.consumed - p.remaining_length, p.remaining_length);
    if (p.type == mqtt::PacketType::Publish) {
      check(kind == mqtt::ClientKind::Subscriber && mqtt::valid_topic_name(p.topic));
      check(p.qos <= 2 && (p.qos > 0) == (p.packet_id != 0));
      std::string again;
      mqtt::encode_publish(again, p.topic, p.payload, p.qos, p.retain, p.packet_id, p.dup);
      check(static_cast<unsigned char>(again[0]) == static_cast<unsigned char>(in[0]));
      check(std::string_view(again).substr(again.size() - body.size()) == body);
    } else if (kind == mqtt::ClientKind::PublishOnly) {
      // What the publisher accepts, the subscriber reads the same way.
      const mqtt::DecodeResult s = mqtt::decode_packet(in, mqtt::ClientKind::Subscriber);
      check(s.status == mqtt::DecodeStatus::Ok && s.consumed == r.consumed);
      check(s.packet.type == p.type && s.packet.packet_id == p.packet_id);
      check(s.packet.session_present == p.session_present);
      check(s.packet.connack_code == p.connack_code);
    }
    if (p.type == mqtt::PacketType::Suback) {
      check(!p.return_codes.empty() && p.packet_id != 0);
      for (std::size_t i = 0; i < p.return_codes.size(); ++i)
        check(p.return_code(i) <= 2 || p.return_code(i) == mqtt::kSubackFailure);
    }
    pos += r.consumed;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view stream(reinterpret_cast<const char*>(data), size);
  run(stream, mqtt::ClientKind::PublishOnly, mqtt::kMaxRemainingLength);
  run(stream, mqtt::ClientKind::Subscriber, mqtt::kMaxRemainingLength);
  run(stream, mqtt::ClientKind::Subscriber, 16);  // exercises the oversized-PUBLISH path
  return 0;
}

// MQTT 3.1.1 packet encoding/decoding (pure, no sockets). Expected bytes are written out by hand
// from the OASIS spec, not produced by the code under test.
#include "mqtt/codec.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ts::mqtt {
namespace {

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int v : b) s.push_back(static_cast<char>(v));
  return s;
}

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
    out.push_back(' ');
  }
  return out;
}

#define EXPECT_BYTES(actual, expected) EXPECT_EQ(hex(actual), hex(expected))

TEST(MqttCodec, ConnectWithoutCredentials) {
  std::string out;
  ConnectFields f;
  f.client_id = "ab";
  f.keep_alive_seconds = 30;
  encode_connect(out, f);
  EXPECT_BYTES(out, bytes({0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 30, 0, 2, 'a', 'b'}));
}

TEST(MqttCodec, ConnectWithUsernameAndPassword) {
  std::string out = "x";  // appends, never overwrites
  ConnectFields f;
  f.client_id = "ab";
  f.keep_alive_seconds = 0x0102;
  f.has_username = true;
  f.username = "u";
  f.has_password = true;
  f.password = "pw";
  encode_connect(out, f);
  EXPECT_BYTES(out, bytes({'x', 0x10, 21, 0,   4,   'M', 'Q', 'T', 'T', 4, 0xc2, 1,
                           2,   0,    2,  'a', 'b', 0,   1,   'u', 0,   2, 'p',  'w'}));
}

TEST(MqttCodec, ConnectWithUsernameOnlyAndEmptyClientId) {
  std::string out;
  ConnectFields f;
  f.has_username = true;
  f.username = "me";
  f.clean_session = true;
  encode_connect(out, f);
  EXPECT_BYTES(out,
               bytes({0x10, 16, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x82, 0, 30, 0, 0, 0, 2, 'm', 'e'}));
}

TEST(MqttCodec, PublishQos0) {
  std::string out;
  encode_publish(out, "a/b", "hi", 0, false, 0);
  EXPECT_BYTES(out, bytes({0x30, 7, 0, 3, 'a', '/', 'b', 'h', 'i'}));
  EXPECT_EQ(publish_size("a/b", 2, 0), out.size());
}

TEST(MqttCodec, PublishQos1RetainCarriesPacketId) {
  std::string out;
  encode_publish(out, "a/b", "hi", 1, true, 10);
  EXPECT_BYTES(out, bytes({0x33, 9, 0, 3, 'a', '/', 'b', 0, 10, 'h', 'i'}));
  EXPECT_EQ(publish_size("a/b", 2, 1), out.size());
}

TEST(MqttCodec, PublishQos2AndDup) {
  std::string out;
  encode_publish(out, "t", "", 2, false, 0x1234);
  EXPECT_BYTES(out, bytes({0x34, 5, 0, 1, 't', 0x12, 0x34}));
  out.clear();
  encode_publish(out, "t", "", 1, true, 0xffff, /*dup=*/true);
  EXPECT_BYTES(out, bytes({0x3b, 5, 0, 1, 't', 0xff, 0xff}));
}

TEST(MqttCodec, ControlPackets) {
  std::string out;
  encode_pubrel(out, 0x0203);
  encode_pingreq(out);
  encode_disconnect(out);
  EXPECT_BYTES(out, bytes({0x62, 2, 2, 3, 0xc0, 0, 0xe0, 0}));
}

TEST(MqttCodec, RemainingLengthBoundaries) {
  const std::vector<std::pair<std::size_t, std::string>> cases = {
      {0, bytes({0x00})},
      {127, bytes({0x7f})},
      {128, bytes({0x80, 0x01})},
      {16'383, bytes({0xff, 0x7f})},
      {16'384, bytes({0x80, 0x80, 0x01})},
      {2'097'151, bytes({0xff, 0xff, 0x7f})},
      {2'097'152, bytes({0x80, 0x80, 0x80, 0x01})},
      {268'435'455, bytes({0xff, 0xff, 0xff, 0x7f})},
  };
  for (const auto& [n, expected] : cases) {
    std::string out;
    append_remaining_length(out, n);
    EXPECT_BYTES(out, expected) << "n=" << n;
  }
}

TEST(MqttCodec, PublishHeaderAtRemainingLengthBoundaries) {
  // Topic "t" at QoS 0: remaining = 3 + payload.
  for (std::size_t remaining : {127u, 128u, 16'383u, 16'384u, 2'097'151u, 2'097'152u}) {
    const std::string payload(remaining - 3, 'p');
    std::string out;
    encode_publish(out, "t", payload, 0, false, 0);
    std::string header;
    append_remaining_length(header, remaining);
    ASSERT_EQ(out.size(), 1 + header.size() + remaining) << remaining;
    EXPECT_EQ(out.substr(1, header.size()), header) << remaining;
    EXPECT_EQ(publish_size("t", payload.size(), 0), out.size()) << remaining;
  }
}

TEST(MqttCodec, PublishSizeRejectsWhatCannotBeEncoded) {
  EXPECT_EQ(publish_size(std::string(65'536, 'a'), 0, 0), 0u);
  EXPECT_NE(publish_size(std::string(65'535, 'a'), 0, 0), 0u);
  EXPECT_EQ(publish_size("t", kMaxRemainingLength - 2, 0), 0u);
  EXPECT_EQ(publish_size("t", kMaxRemainingLength - 3, 0), 1u + 4u + kMaxRemainingLength);
  EXPECT_EQ(publish_size("t", kMaxRemainingLength - 3, 1), 0u);  // packet id needs 2 more
}

TEST(MqttCodec, TopicNameValidation) {
  EXPECT_TRUE(valid_topic_name("telemetry/VIN/v/VehicleSpeed"));
  EXPECT_TRUE(valid_topic_name("/"));
  EXPECT_TRUE(valid_topic_name("caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x9a\x97"));
  EXPECT_TRUE(valid_topic_name(std::string(65'535, 'a')));
  EXPECT_FALSE(valid_topic_name(""));
  EXPECT_FALSE(valid_topic_name(std::string(65'536, 'a')));
  EXPECT_FALSE(valid_topic_name("a/+/b"));
  EXPECT_FALSE(valid_topic_name("a/#"));
  EXPECT_FALSE(valid_topic_name(std::string("a\0b", 3)));
  EXPECT_FALSE(valid_topic_name("\xc3"));              // truncated sequence
  EXPECT_FALSE(valid_topic_name("\x80"));              // lone continuation byte
  EXPECT_FALSE(valid_topic_name("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(valid_topic_name("\xed\xa0\x80"));      // UTF-16 surrogate
  EXPECT_FALSE(valid_topic_name("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(valid_topic_name("\xff"));
}

TEST(MqttCodec, DecodesConnack) {
  auto r = decode_packet(bytes({0x20, 2, 0, 0}));
  ASSERT_EQ(r.status, DecodeStatus::Ok);
  EXPECT_EQ(r.packet.type, PacketType::Connack);
  EXPECT_EQ(r.consumed, 4u);
  EXPECT_FALSE(r.packet.session_present);
  EXPECT_EQ(r.packet.connack_code, 0);
  EXPECT_FALSE(connack_error(0));

  r = decode_packet(bytes({0x20, 2, 1, 4}));
  ASSERT_EQ(r.status, DecodeStatus::Ok);
  EXPECT_TRUE(r.packet.session_present);
  EXPECT_EQ(r.packet.connack_code, 4);
}

TEST(MqttCodec, ConnackReturnCodesAreReadable) {
  EXPECT_EQ(connack_error(1), errc::unacceptable_protocol_version);
  EXPECT_EQ(connack_error(2), errc::identifier_rejected);
  EXPECT_EQ(connack_error(3), errc::server_unavailable);
  EXPECT_EQ(connack_error(4), errc::bad_username_or_password);
  EXPECT_EQ(connack_error(5), errc::not_authorized);
  EXPECT_EQ(connack_error(200), errc::unknown_connack_code);
  EXPECT_NE(connack_error(4).message().find("bad username or password"), std::string::npos);
  EXPECT_NE(connack_error(5).message().find("not authorized"), std::string::npos);
  EXPECT_STREQ(connack_error(5).category().name(), "mqtt");
}

TEST(MqttCodec, DecodesAcksAndPingresp) {
  struct Case {
    std::string input;
    PacketType type;
    std::uint16_t id;
  };
  const std::vector<Case> cases = {
      {bytes({0x40, 2, 0, 7}), PacketType::Puback, 7},
      {bytes({0x50, 2, 0x12, 0x34}), PacketType::Pubrec, 0x1234},
      {bytes({0x62, 2, 0xff, 0xff}), PacketType::Pubrel, 0xffff},
      {bytes({0x70, 2, 1, 0}), PacketType::Pubcomp, 256},
      {bytes({0xd0, 0}), PacketType::Pingresp, 0},
  };
  for (const auto& c : cases) {
    auto r = decode_packet(c.input);
    ASSERT_EQ(r.status, DecodeStatus::Ok) << hex(c.input);
    EXPECT_EQ(r.packet.type, c.type);
    EXPECT_EQ(r.packet.packet_id, c.id);
    EXPECT_EQ(r.consumed, c.input.size());
  }
}

TEST(MqttCodec, EveryTruncationNeedsMore) {
  for (const auto& full : {bytes({0x20, 2, 0, 0}), bytes({0x40, 2, 0, 7}), bytes({0x50, 2, 0, 1}),
                           bytes({0x70, 2, 0, 1}), bytes({0xd0, 0})}) {
    for (std::size_t n = 0; n < full.size(); ++n)
      EXPECT_EQ(decode_packet(full.substr(0, n)).status, DecodeStatus::NeedMore)
          << hex(full) << " cut at " << n;
  }
}

TEST(MqttCodec, DecodesOnePacketAtATimeFromAStream) {
  const std::string stream = bytes({0x40, 2, 0, 1, 0xd0, 0, 0x70, 2, 0, 2, 0x40});
  std::size_t pos = 0;
  std::vector<PacketType> seen;
  for (;;) {
    auto r = decode_packet(std::string_view(stream).substr(pos));
    if (r.status != DecodeStatus::Ok) {
      EXPECT_EQ(r.status, DecodeStatus::NeedMore);
      break;
    }
    seen.push_back(r.packet.type);
    pos += r.consumed;
  }
  EXPECT_EQ(seen, (std::vector<PacketType>{PacketType::Puback, PacketType::Pingresp,
                                           PacketType::Pubcomp}));
  EXPECT_EQ(pos, 10u);
}

TEST(MqttCodec, RejectsGarbage) {
  const std::vector<std::string> bad = {
      bytes({0x00}),                             // type 0 is reserved
      bytes({0xf0, 0}),                          // type 15 is reserved
      bytes({0x30, 3, 0, 1, 't'}),               // PUBLISH: we never subscribe
      bytes({0x90, 3, 0, 1, 0}),                 // SUBACK
      bytes({0x10, 0}),                          // CONNECT is client-to-server
      bytes({0xc0, 0}),                          // PINGREQ likewise
      bytes({0x41, 2, 0, 1}),                    // PUBACK with reserved flags set
      bytes({0x60, 2, 0, 1}),                    // PUBREL must have flags 0010
      bytes({0x40, 3, 0, 1, 0}),                 // PUBACK with the wrong length
      bytes({0x40, 2, 0, 0}),                    // packet id 0
      bytes({0xd0, 1, 0}),                       // PINGRESP with a body
      bytes({0x20, 2, 2, 0}),                    // CONNACK reserved flag bits
      bytes({0x20, 3, 0, 0, 0}),                 // CONNACK too long
      bytes({0xd0, 0x80, 0x80, 0x80, 0x80, 0}),  // Remaining Length of 5 bytes
  };
  for (const auto& b : bad) EXPECT_EQ(decode_packet(b).status, DecodeStatus::Malformed) << hex(b);
}

TEST(MqttCodec, ErrorsAreDetectedBeforeThePacketIsComplete) {
  // A wrong type or length is reported at once rather than waited for.
  EXPECT_EQ(decode_packet(bytes({0x30})).status, DecodeStatus::Malformed);
  EXPECT_EQ(decode_packet(bytes({0x40, 5})).status, DecodeStatus::Malformed);
}

}  // namespace
}  // namespace ts::mqtt

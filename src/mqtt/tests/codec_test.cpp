// MQTT 3.1.1 packet encoding/decoding (pure, no sockets). Expected bytes are written out by hand
// from the OASIS spec, not produced by the code under test.
#include "mqtt/codec.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <random>
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

TEST(MqttCodec, AcknowledgementsOfInboundMessages) {
  // spec 3.4.1, 3.5.1, 3.7.1: type << 4, flags 0, Remaining Length 2, packet identifier.
  std::string out;
  encode_puback(out, 1);
  encode_pubrec(out, 0x1234);
  encode_pubcomp(out, 0xffff);
  EXPECT_BYTES(out, bytes({0x40, 2, 0, 1, 0x50, 2, 0x12, 0x34, 0x70, 2, 0xff, 0xff}));
}

TEST(MqttCodec, SubscribeTwoFilters) {
  // The example of spec 3.8.3 (figure 3.22 payload): "a/b" at QoS 1 and "c/d" at QoS 2,
  // packet identifier 10; fixed header 1000 0010 (spec 3.8.1).
  const std::array<Subscription, 2> subs = {{{"a/b", 1}, {"c/d", 2}}};
  std::string out = "x";  // appends
  encode_subscribe(out, 10, subs);
  EXPECT_BYTES(out, bytes({'x', 0x82, 14, 0, 10, 0, 3, 'a', '/', 'b', 1, 0, 3, 'c', '/', 'd', 2}));
  EXPECT_EQ(subscribe_size(subs), out.size() - 1);
}

TEST(MqttCodec, SubscribeOneWildcardFilterAtQos0) {
  const std::array<Subscription, 1> subs = {{{"telemetry/+/v/+", 0}}};
  std::string out;
  encode_subscribe(out, 0x0102, subs);
  EXPECT_BYTES(out, bytes({0x82, 20,  1,   2,   0,   15,  't', 'e', 'l', 'e', 'm', 'e',
                           't',  'r', 'y', '/', '+', '/', 'v', '/', '+', 0}));
  EXPECT_EQ(subscribe_size(subs), out.size());
}

TEST(MqttCodec, SubscribeWithATwoByteRemainingLength) {
  const std::string filter(200, 'f');
  const std::array<Subscription, 1> subs = {{{filter, 1}}};
  std::string out;
  encode_subscribe(out, 1, subs);
  // Remaining Length 2 + 2 + 200 + 1 = 205 = 0xcd 0x01.
  ASSERT_EQ(out.size(), 3u + 205u);
  EXPECT_BYTES(out.substr(0, 7), bytes({0x82, 0xcd, 0x01, 0, 1, 0, 200}));
  EXPECT_EQ(static_cast<unsigned char>(out.back()), 1);
  EXPECT_EQ(subscribe_size(subs), out.size());
}

TEST(MqttCodec, SubscribeSizeRejectsWhatCannotBeEncoded) {
  EXPECT_EQ(subscribe_size({}), 0u);
  const std::string too_long(65'536, 'a');
  const std::array<Subscription, 1> bad = {{{too_long, 1}}};
  EXPECT_EQ(subscribe_size(bad), 0u);
  const std::string longest(65'535, 'a');
  const std::array<Subscription, 1> ok = {{{longest, 1}}};
  EXPECT_EQ(subscribe_size(ok), 1u + 3u + 2u + 2u + 65'535u + 1u);
}

TEST(MqttCodec, TopicFilterValidation) {
  // spec 4.7.1.2 and 4.7.1.3 list these as valid ...
  for (const char* f : {"sport/tennis/player1/#", "sport/#", "#", "+", "+/tennis/#", "sport/+/player1",
                        "sport/+", "/+", "+/+", "/finance", "telemetry/+/v/+", "a//b", "/", "$SYS/#",
                        "caf\xc3\xa9/+"})
    EXPECT_TRUE(valid_topic_filter(f)) << f;
  EXPECT_TRUE(valid_topic_filter(std::string(65'535, 'a')));
  // ... and these as invalid.
  for (const char* f : {"sport/tennis#", "sport/tennis/#/ranking", "sport+", "sport/+player1", "a/b#",
                        "#/", "##", "++", "a/#b", "+a", "a+/b", ""})
    EXPECT_FALSE(valid_topic_filter(f)) << f;
  EXPECT_FALSE(valid_topic_filter(std::string(65'536, 'a')));
  EXPECT_FALSE(valid_topic_filter(std::string("a/\0/b", 5)));
  EXPECT_FALSE(valid_topic_filter("\xc0\xaf"));  // overlong '/'
  EXPECT_FALSE(valid_topic_filter("a/\xff"));
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

TEST(MqttCodec, PublisherDecoderStillRefusesWhatOnlySubscribersGet) {
  // The default decoder is the publisher's: a broker that sends it a PUBLISH, SUBACK or
  // UNSUBACK is broken, whatever bytes follow.
  for (const auto& b : {bytes({0x30, 4, 0, 1, 't', 'x'}), bytes({0x32, 5, 0, 1, 't', 0, 1}),
                        bytes({0x90, 3, 0, 1, 1}), bytes({0xb0, 2, 0, 1})}) {
    EXPECT_EQ(decode_packet(b).status, DecodeStatus::Malformed) << hex(b);
    EXPECT_EQ(decode_packet(b, ClientKind::PublishOnly).status, DecodeStatus::Malformed) << hex(b);
    EXPECT_EQ(decode_packet(b, ClientKind::Subscriber).status, DecodeStatus::Ok) << hex(b);
  }
}

TEST(MqttCodec, ErrorsAreDetectedBeforeThePacketIsComplete) {
  // A wrong type or length is reported at once rather than waited for.
  EXPECT_EQ(decode_packet(bytes({0x30})).status, DecodeStatus::Malformed);
  EXPECT_EQ(decode_packet(bytes({0x40, 5})).status, DecodeStatus::Malformed);
}

DecodeResult decode_sub(std::string_view in, std::size_t max = kMaxRemainingLength) {
  return decode_packet(in, ClientKind::Subscriber, max);
}

bool inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

TEST(MqttSubscriberCodec, DecodesPublishQos0) {
  // spec 3.3: 0011 0000, Remaining Length 7, topic "a/b", payload "hi" (no packet id at QoS 0).
  const std::string in = bytes({0x30, 7, 0, 3, 'a', '/', 'b', 'h', 'i'});
  auto r = decode_sub(in);
  ASSERT_EQ(r.status, DecodeStatus::Ok);
  EXPECT_EQ(r.consumed, in.size());
  EXPECT_EQ(r.packet.type, PacketType::Publish);
  EXPECT_EQ(r.packet.qos, 0);
  EXPECT_FALSE(r.packet.dup);
  EXPECT_FALSE(r.packet.retain);
  EXPECT_EQ(r.packet.packet_id, 0);
  EXPECT_EQ(r.packet.topic, "a/b");
  EXPECT_EQ(r.packet.payload, "hi");
  EXPECT_TRUE(inside(r.packet.topic, in));  // views into the input, no copy
  EXPECT_TRUE(inside(r.packet.payload, in));
}

TEST(MqttSubscriberCodec, DecodesPublishQos1RetainAndQos2Dup) {
  // spec 3.3.2.3 example: topic "a/b", packet identifier 10. The decoded packet's views point
  // into the input, so each input outlives its result.
  const std::string q1 = bytes({0x33, 9, 0, 3, 'a', '/', 'b', 0, 10, 'h', 'i'});
  auto r = decode_sub(q1);
  ASSERT_EQ(r.status, DecodeStatus::Ok);
  EXPECT_EQ(r.packet.qos, 1);
  EXPECT_TRUE(r.packet.retain);
  EXPECT_FALSE(r.packet.dup);
  EXPECT_EQ(r.packet.packet_id, 10);
  EXPECT_EQ(r.packet.payload, "hi");

  const std::string q2 = bytes({0x3c, 7, 0, 1, 't', 0xff, 0xfe, 0, 'z'});  // payload has a NUL
  r = decode_sub(q2);
  ASSERT_EQ(r.status, DecodeStatus::Ok);
  EXPECT_EQ(r.packet.qos, 2);
  EXPECT_TRUE(r.packet.dup);
  EXPECT_FALSE(r.packet.retain);
  EXPECT_EQ(r.packet.packet_id, 0xfffe);
  EXPECT_EQ(r.packet.topic, "t");
  EXPECT_EQ(r.packet.payload, std::string_view("\0z", 2));

  const std::string empty = bytes({0x32, 5, 0, 1, 't', 0, 1});  // empty payload
  r = decode_sub(empty);
  ASSERT_EQ(r.status, DecodeStatus::Ok);
  EXPECT_TRUE(r.packet.payload.empty());
}

TEST(MqttSubscriberCodec, DecodesWhatOurPublisherEncodes) {
  for (int qos = 0; qos <= 2; ++qos) {
    for (const std::size_t n : {0u, 1u, 120u, 200u, 20'000u}) {
      const std::string payload(n, static_cast<char>('a' + qos));
      std::string out;
      encode_publish(out, "telemetry/VIN/v/Soc", payload, qos, qos == 1, qos ? 77 : 0, qos == 2);
      auto r = decode_sub(out);
      ASSERT_EQ(r.status, DecodeStatus::Ok) << qos << " " << n;
      EXPECT_EQ(r.consumed, out.size());
      EXPECT_EQ(r.packet.qos, qos);
      EXPECT_EQ(r.packet.retain, qos == 1);
      EXPECT_EQ(r.packet.dup, qos == 2);
      EXPECT_EQ(r.packet.packet_id, qos ? 77 : 0);
      EXPECT_EQ(r.packet.topic, "telemetry/VIN/v/Soc");
      EXPECT_EQ(r.packet.payload, payload);
    }
  }
}

TEST(MqttSubscriberCodec, DecodesSubackWithEveryReturnCode) {
  // spec 3.9.3 example: granted QoS 0, 1, 2 and Failure, packet identifier 0x0a0b. The return
  // codes are a view into the input: it must outlive the result.
  const std::string in = bytes({0x90, 6, 0x0a, 0x0b, 0, 1, 2, 0x80});
  auto r = decode_sub(in);
  ASSERT_EQ(r.status, DecodeStatus::Ok);
  EXPECT_EQ(r.packet.type, PacketType::Suback);
  EXPECT_EQ(r.packet.packet_id, 0x0a0b);
  ASSERT_EQ(r.packet.return_codes.size(), 4u);
  EXPECT_EQ(r.packet.return_code(0), 0);
  EXPECT_EQ(r.packet.return_code(1), 1);
  EXPECT_EQ(r.packet.return_code(2), 2);
  EXPECT_EQ(r.packet.return_code(3), kSubackFailure);
  EXPECT_EQ(r.consumed, 8u);
}

TEST(MqttSubscriberCodec, DecodesPubrelUnsubackAndTheRest) {
  struct Case {
    std::string input;
    PacketType type;
    std::uint16_t id;
  };
  const std::vector<Case> cases = {
      {bytes({0x62, 2, 0x01, 0x02}), PacketType::Pubrel, 0x0102},
      {bytes({0xb0, 2, 0, 9}), PacketType::Unsuback, 9},
      {bytes({0x40, 2, 0, 7}), PacketType::Puback, 7},
      {bytes({0x50, 2, 0, 7}), PacketType::Pubrec, 7},
      {bytes({0x70, 2, 0, 7}), PacketType::Pubcomp, 7},
      {bytes({0xd0, 0}), PacketType::Pingresp, 0},
      {bytes({0x20, 2, 1, 0}), PacketType::Connack, 0},
  };
  for (const auto& c : cases) {
    auto r = decode_sub(c.input);
    ASSERT_EQ(r.status, DecodeStatus::Ok) << hex(c.input);
    EXPECT_EQ(r.packet.type, c.type);
    EXPECT_EQ(r.packet.packet_id, c.id);
    EXPECT_EQ(r.consumed, c.input.size());
  }
}

TEST(MqttSubscriberCodec, RejectsMalformedPackets) {
  const std::vector<std::string> bad = {
      bytes({0x36, 5, 0, 1, 't', 0, 1}),            // PUBLISH QoS 3
      bytes({0x38, 4, 0, 1, 't', 'x'}),             // DUP at QoS 0
      bytes({0x30, 2, 0, 0}),                       // empty topic (Remaining Length too short)
      bytes({0x30, 3, 0, 0, 'x'}),                  // empty topic
      bytes({0x30, 4, 0, 5, 'a', 'b'}),             // topic longer than the packet
      bytes({0x32, 4, 0, 1, 't', 0}),               // packet id cut by the Remaining Length
      bytes({0x32, 5, 0, 1, 't', 0, 0}),            // packet id 0
      bytes({0x30, 5, 0, 3, 'a', '/', '+'}),        // wildcard in a topic name
      bytes({0x30, 5, 0, 3, 'a', '/', '#'}),
      bytes({0x30, 4, 0, 2, 0xc0, 0xaf}),           // overlong UTF-8
      bytes({0x30, 4, 0, 2, 'a', 0}),               // U+0000
      bytes({0x90, 2, 0, 1}),                       // SUBACK without a return code
      bytes({0x90, 3, 0, 0, 1}),                    // SUBACK packet id 0
      bytes({0x90, 3, 0, 1, 3}),                    // return code 3
      bytes({0x90, 3, 0, 1, 0x81}),                 // return code 0x81
      bytes({0x91, 3, 0, 1, 0}),                    // SUBACK reserved flags
      bytes({0xb0, 3, 0, 1, 0}),                    // UNSUBACK too long
      bytes({0xb0, 2, 0, 0}),                       // UNSUBACK packet id 0
      bytes({0x62, 2, 0, 0}),                       // PUBREL packet id 0
      bytes({0x60, 2, 0, 1}),                       // PUBREL flags must be 0010
      bytes({0x82, 6, 0, 1, 0, 1, 'a', 1}),         // SUBSCRIBE is client-to-server
      bytes({0xe0, 0}),                             // DISCONNECT likewise
      bytes({0x30, 0x80, 0x80, 0x80, 0x80, 0x01}),  // Remaining Length of 5 bytes
  };
  for (const auto& b : bad) EXPECT_EQ(decode_sub(b).status, DecodeStatus::Malformed) << hex(b);
}

TEST(MqttSubscriberCodec, EveryTruncationNeedsMore) {
  std::string big;
  encode_publish(big, "x/y", std::string(300, 'p'), 1, false, 5);  // 2-byte Remaining Length
  for (const auto& full :
       {bytes({0x30, 7, 0, 3, 'a', '/', 'b', 'h', 'i'}), bytes({0x34, 5, 0, 1, 't', 0, 1}),
        bytes({0x90, 4, 0, 1, 0, 0x80}), bytes({0x62, 2, 0, 1}), bytes({0xb0, 2, 0, 1}), big}) {
    ASSERT_EQ(decode_sub(full).status, DecodeStatus::Ok) << hex(full);
    for (std::size_t n = 0; n < full.size(); ++n)
      EXPECT_EQ(decode_sub(full.substr(0, n)).status, DecodeStatus::NeedMore)
          << hex(full) << " cut at " << n;
  }
}

TEST(MqttSubscriberCodec, DecodesAStreamOfMixedPackets) {
  std::string stream = bytes({0x90, 3, 0, 1, 1});
  encode_publish(stream, "a", "1", 1, false, 1);
  stream += bytes({0x62, 2, 0, 2, 0xd0, 0});
  encode_publish(stream, "b", "22", 0, true, 0);
  stream += bytes({0x30, 9, 0});  // the start of the next one
  std::size_t pos = 0;
  std::vector<PacketType> seen;
  std::vector<std::string> payloads;
  for (;;) {
    auto r = decode_sub(std::string_view(stream).substr(pos));
    if (r.status != DecodeStatus::Ok) {
      EXPECT_EQ(r.status, DecodeStatus::NeedMore);
      break;
    }
    seen.push_back(r.packet.type);
    if (r.packet.type == PacketType::Publish) payloads.emplace_back(r.packet.payload);
    pos += r.consumed;
  }
  EXPECT_EQ(seen, (std::vector<PacketType>{PacketType::Suback, PacketType::Publish,
                                           PacketType::Pubrel, PacketType::Pingresp,
                                           PacketType::Publish}));
  EXPECT_EQ(payloads, (std::vector<std::string>{"1", "22"}));
  EXPECT_EQ(pos, stream.size() - 3);
}

TEST(MqttSubscriberCodec, OversizedPublishIsReportedWithItsHeadAndTheBytesToSkip) {
  std::string in;
  encode_publish(in, "big/topic", std::string(1000, 'p'), 1, false, 42);
  // Remaining Length 2 + 9 + 2 + 1000 = 1013 (2 bytes): header 3, head 13, payload 1000.
  auto r = decode_sub(in, 100);
  ASSERT_EQ(r.status, DecodeStatus::TooLarge);
  EXPECT_EQ(r.packet.type, PacketType::Publish);
  EXPECT_EQ(r.packet.topic, "big/topic");
  EXPECT_EQ(r.packet.packet_id, 42);
  EXPECT_EQ(r.packet.qos, 1);
  EXPECT_EQ(r.packet.remaining_length, 1013u);
  EXPECT_EQ(r.consumed, 16u);
  EXPECT_EQ(r.skip, 1000u);
  EXPECT_TRUE(r.packet.payload.empty());
  // Only the head is needed to say so; a cut head needs more.
  EXPECT_EQ(decode_sub(std::string_view(in).substr(0, 16), 100).status, DecodeStatus::TooLarge);
  for (std::size_t n = 0; n < 16; ++n)
    EXPECT_EQ(decode_sub(std::string_view(in).substr(0, n), 100).status, DecodeStatus::NeedMore)
        << n;
  // At the limit it is an ordinary packet.
  EXPECT_EQ(decode_sub(in, 1013).status, DecodeStatus::Ok);
  // Other packets over the limit are malformed; an invalid head stays malformed.
  EXPECT_EQ(decode_sub(bytes({0x90, 5, 0, 1, 1, 1, 1}), 4).status, DecodeStatus::Malformed);
  EXPECT_EQ(decode_sub(bytes({0x32, 20, 0, 1, '#', 0, 1}), 4).status, DecodeStatus::Malformed);
  EXPECT_EQ(decode_sub(bytes({0x32, 20, 0, 30}), 4).status, DecodeStatus::Malformed);
}

// Never crash, never read outside the input, never claim more than was given: random bytes and
// random mutations of valid packets, for both decoders.
TEST(MqttSubscriberCodec, ArbitraryBytesNeverBreakTheDecoders) {
  std::mt19937 rng(1234);
  std::vector<std::string> valid = {bytes({0x90, 4, 0, 1, 0, 0x80}), bytes({0x62, 2, 0, 1}),
                                    bytes({0x20, 2, 0, 0}), bytes({0xd0, 0})};
  for (int qos = 0; qos <= 2; ++qos) {
    std::string p;
    encode_publish(p, "telemetry/VIN/v/Soc", "{\"value\":1}", qos, false, qos ? 9 : 0);
    valid.push_back(p);
  }
  for (int i = 0; i < 200'000; ++i) {
    std::string in;
    if (i % 2 == 0) {
      in.resize(rng() % 24);
      for (char& c : in) c = static_cast<char>(rng());
    } else {
      in = valid[rng() % valid.size()];
      const int flips = 1 + static_cast<int>(rng() % 3);
      for (int f = 0; f < flips; ++f) in[rng() % in.size()] = static_cast<char>(rng());
      in.resize(rng() % (in.size() + 1));
    }
    for (const auto kind : {ClientKind::PublishOnly, ClientKind::Subscriber}) {
      for (const std::size_t max : {kMaxRemainingLength, std::size_t{8}}) {
        const auto r = decode_packet(in, kind, max);
        if (r.status == DecodeStatus::Ok) {
          ASSERT_LE(r.consumed, in.size()) << hex(in);
          ASSERT_TRUE(inside(r.packet.topic, in) || r.packet.topic.empty());
          ASSERT_TRUE(inside(r.packet.payload, in) || r.packet.payload.empty());
          ASSERT_TRUE(inside(r.packet.return_codes, in) || r.packet.return_codes.empty());
        } else if (r.status == DecodeStatus::TooLarge) {
          ASSERT_EQ(kind, ClientKind::Subscriber);
          ASSERT_LE(r.consumed, in.size());
          ASSERT_GT(r.packet.remaining_length, max) << hex(in);
          ASSERT_LT(r.skip, r.packet.remaining_length);
        } else {
          ASSERT_EQ(r.consumed, 0u);
        }
      }
    }
  }
}

}  // namespace
}  // namespace ts::mqtt

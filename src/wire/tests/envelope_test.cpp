#include "wire/envelope.hpp"

#include <gtest/gtest.h>

#include "wire/tests/hex.hpp"

namespace ts::wire {
namespace {

using ts::testing::from_hex;
using ts::testing::to_hex;

// Byte vectors from spec §3.4, produced by running the reference code.
constexpr std::string_view kAck1234V = R"(
0000: 1400000000000e001800140010000f00
0010: 080004000e000000140000002c000000
0020: 00000005100000001400000000000000
0030: 00000000010000005600000004000000
0040: 31323334000000000000000000000000)";

constexpr std::string_view kAckEmpty = R"(
0000: 1400000000000e001800140010000f00
0010: 080004000e0000001400000028000000
0020: 00000005100000001400000000000000
0030: 00000000000000000000000000000000
0040: 000000000000000000000000)";

constexpr std::string_view kAckAlerts = R"(
0000: 1400000000000e001800140010000f00
0010: 080004000e0000001400000040000000
0020: 00000005100000001800000000000000
0030: 0000000006000000616c657274730000
0040: 15000000696e746567726174696f6e2d
0050: 746573742d7478696400000000000000
0060: 00000000)";

constexpr std::string_view kError1234 = R"(
0000: 1400000000000e001800140010000f00
0010: 080004000e0000001400000038000000
0020: 00000004100000001400000000000000
0030: 00000000000000000000000004000000
0040: 3132333400000e001400000010000c00
0050: 080004000e0000001000000014000000
0060: 18000000340000000000000000000000
0070: 000000000000000018000000696e636f
0080: 7272656374206d65737361676520666f
0090: 726d6174000000000000000000000000)";

constexpr std::string_view kErrorEmpty = R"(
0000: 1400000000000e001800140010000f00
0010: 080004000e0000001400000034000000
0020: 00000004100000001400000000000000
0030: 00000000000000000000000000000000
0040: 00000e001400000010000c0008000400
0050: 0e000000100000001400000018000000
0060: 34000000000000000000000000000000
0070: 0000000018000000696e636f72726563
0080: 74206d65737361676520666f726d6174
0090: 000000000000000000000000)";

constexpr std::string_view kVehicleFrame = R"(
0000: 180000000000000000000e0018001400
0010: 10000f00080004000e00000014000000
0020: 6400000000000004280000002c000000
0030: 1b000000696e746567726174696f6e2d
0040: 746573742d6d6573736167652d696400
0050: 010000005600000015000000696e7465
0060: 67726174696f6e2d746573742d747869
0070: 64000000100024001c00200018001400
0080: 10000400100000007b68e5cf8b010000
0090: 00000000140000002000000030000000
00a0: 01000000380000000800000064657669
00b0: 63652d31000000000e00000076656869
00c0: 636c655f64657669636500000b000000
00d0: 0a09084012050a036162630017000000
00e0: 76656869636c655f6465766963652e64
00f0: 65766963652d3100)";

TEST(Envelope, AckIsByteIdenticalToReference) {
  EXPECT_EQ(to_hex(build_ack("1234", "V")), to_hex(from_hex(kAck1234V)));
  EXPECT_EQ(to_hex(build_ack("", "")), to_hex(from_hex(kAckEmpty)));
  EXPECT_EQ(to_hex(build_ack("integration-test-txid", "alerts")), to_hex(from_hex(kAckAlerts)));
}

TEST(Envelope, ErrorIsByteIdenticalToReference) {
  EXPECT_EQ(to_hex(build_error("1234")), to_hex(from_hex(kError1234)));
  EXPECT_EQ(to_hex(build_error("")), to_hex(from_hex(kErrorEmpty)));
}

TEST(Envelope, VehicleFrameIsByteIdenticalToReferenceBuilder) {
  const std::string payload = std::string("\x0a\x09\x08\x40\x12\x05\x0a\x03" "abc", 11);
  Bytes frame = build_stream_frame({.txid = "integration-test-txid",
                                    .topic = "V",
                                    .message_id = "integration-test-message-id",
                                    .sender_id = "vehicle_device.device-1",
                                    .payload = payload,
                                    .device_type = "vehicle_device",
                                    .device_id = "device-1",
                                    .created_at = 1,
                                    .delivered_at_epoch_ms = 1700000000123ULL});
  EXPECT_EQ(to_hex(frame), to_hex(from_hex(kVehicleFrame)));
}

TEST(Envelope, DecodesVehicleFrame) {
  auto bytes = from_hex(kVehicleFrame);
  auto env = decode_envelope(bytes);
  ASSERT_TRUE(env);
  EXPECT_EQ(env->txid, "integration-test-txid");
  EXPECT_EQ(env->topic, "V");
  EXPECT_EQ(env->message_type, kMessageTypeStream);
  ASSERT_TRUE(env->stream);
  EXPECT_EQ(env->stream->sender_id, "vehicle_device.device-1");
  EXPECT_EQ(env->stream->device_id, "device-1");
  EXPECT_EQ(env->stream->payload.size(), 11u);
  EXPECT_EQ(env->stream->created_at, 1u);
  EXPECT_EQ(env->stream->delivered_at_epoch_ms, 1700000000123ULL);
}

TEST(Envelope, RejectsGarbageAndEveryTruncation) {
  auto bytes = from_hex(kVehicleFrame);
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::span<const std::uint8_t> prefix(bytes.data(), n);
    auto env = decode_envelope(prefix);
    // A prefix may only decode if every field it exposes lies inside it.
    if (env && env->stream) {
      EXPECT_LE(env->stream->payload.data() + env->stream->payload.size(),
                reinterpret_cast<const char*>(bytes.data() + n));
    }
  }
  std::string garbage = "D4,test,1234,{\"mydata\":42}";
  EXPECT_FALSE(decode_envelope(std::span(reinterpret_cast<const std::uint8_t*>(garbage.data()),
                                         garbage.size())));
}

TEST(Envelope, AckTypeEnvelopeDecodesWithoutStream) {
  auto frame = build_stream_ack_frame("tx", "V");
  auto env = decode_envelope(frame);
  ASSERT_TRUE(env);
  EXPECT_EQ(env->message_type, kMessageTypeStreamAck);
  EXPECT_TRUE(env->has_message);
  EXPECT_FALSE(env->stream);
}

TEST(Envelope, RepliesRoundTrip) {
  auto ack = decode_reply(build_ack("1234", "test-topic"));
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->message_type, 5);
  EXPECT_EQ(ack->txid, "1234");
  EXPECT_EQ(ack->topic, "test-topic");
  auto err = decode_reply(build_error("1234"));
  ASSERT_TRUE(err);
  EXPECT_EQ(err->message_type, 4);
  EXPECT_EQ(err->txid, "1234");
  EXPECT_EQ(err->error_text, kErrorText);
}

}  // namespace
}  // namespace ts::wire

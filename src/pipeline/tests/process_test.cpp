#include "pipeline/process.hpp"

#include <gtest/gtest.h>

namespace ts::pipeline {
namespace {

namespace vd = wire::vehicle_data;

SocketContext socket() {
  return {.vin = "device-1", .sender_id = "vehicle_device.device-1", .client_version = "1.0.0",
          .socket_id = "00000000-0000-4000-8000-000000000001", .network_interface = "wifi"};
}

PipelineOptions options(bool json = false) {
  return {.configured_record_types = {"V", "alerts", "errors", "connectivity"},
          .transmit_decoded_records = json};
}

wire::Bytes frame(std::string_view topic, std::string_view payload,
                  std::string_view sender = "vehicle_device.device-1", std::string_view txid = "tx") {
  return wire::build_stream_frame(
      {.txid = txid, .topic = topic, .sender_id = sender, .payload = payload});
}

TEST(Pipeline, OversizeFrameGetsErrorAckWithEmptyTxid) {
  wire::Bytes big(wire::kMaxFrameBytes + 1, 0x41);
  auto o = process(big, socket(), options(), 0);
  EXPECT_EQ(o.kind, OutcomeKind::TooBig);
  auto replies = immediate_replies(o, false);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0], wire::build_error(""));
}

TEST(Pipeline, EmptyFrameIsAcknowledgedTwiceWithEmptyTxid) {
  auto o = process({}, socket(), options(), 0);
  EXPECT_EQ(o.kind, OutcomeKind::UnknownType);
  auto replies = immediate_replies(o, false);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0], wire::build_ack("", ""));
  EXPECT_EQ(replies[1], replies[0]);
}

TEST(Pipeline, AckTypeEnvelopeIsAcknowledgedTwiceEchoingTxid) {
  auto o = process(wire::build_stream_ack_frame("t1", "V"), socket(), options(), 0);
  EXPECT_EQ(o.kind, OutcomeKind::UnknownType);
  EXPECT_EQ(o.message_type, 5);
  auto replies = immediate_replies(o, false);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0], wire::build_ack("t1", ""));
}

TEST(Pipeline, GarbageGetsErrorWithEmptyTxid) {
  std::string text = "D4,test,1234,{\"mydata\":42}";
  auto o = process(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()),
                   socket(), options(), 0);
  EXPECT_EQ(o.kind, OutcomeKind::Bad);
  EXPECT_EQ(o.reason, BadReason::Unreadable);
  EXPECT_EQ(immediate_replies(o, false)[0], wire::build_error(""));
}

TEST(Pipeline, BadProtobufGetsErrorEchoingTxid) {
  auto o = process(frame("V", "\xff\xff\xff"), socket(), options(), 0);
  EXPECT_EQ(o.kind, OutcomeKind::Bad);
  EXPECT_EQ(o.reason, BadReason::PayloadDecode);
  EXPECT_EQ(immediate_replies(o, false)[0], wire::build_error("tx"));
}

TEST(Pipeline, UnconfiguredTopicChecksSender) {
  auto foreign = process(frame("canlogs", "x", "SOMEOTHERVIN"), socket(), options(), 0);
  EXPECT_EQ(foreign.kind, OutcomeKind::Bad);
  EXPECT_EQ(foreign.reason, BadReason::UnexpectedSender);
  auto own = process(frame("canlogs", "x"), socket(), options(), 0);
  EXPECT_EQ(own.kind, OutcomeKind::Ok);
  EXPECT_EQ(immediate_replies(own, false)[0], wire::build_ack("tx", "canlogs"));
  auto bare = process(frame("canlogs", "x", "device-1"), socket(), options(), 0);
  EXPECT_EQ(bare.kind, OutcomeKind::Ok);
  // Configured topics skip the check.
  auto configured = process(frame("V", "", "SOMEOTHERVIN"), socket(), options(), 0);
  EXPECT_EQ(configured.kind, OutcomeKind::Ok);
}

TEST(Pipeline, VehicleRecordCarriesCertificateVinAndReencodes) {
  // spec §7.1 example: VehicleName="abc" from cert device-1.
  auto o = process(frame("V", std::string("\x0a\x09\x08\x40\x12\x05\x0a\x03" "abc", 11)), socket(),
                   options(), 1234);
  ASSERT_EQ(o.kind, OutcomeKind::Ok);
  EXPECT_EQ(o.record.vin, "device-1");
  EXPECT_EQ(o.record.received_at_ms, 1234);
  EXPECT_EQ(o.record.signals_count(), 1);
  const std::string expected("\x0a\x09\x08\x40\x12\x05\x0a\x03" "abc" "\x1a\x08" "device-1", 21);
  EXPECT_EQ(o.record.encoded_payload(), expected);
  EXPECT_EQ(o.payload_size, expected.size());
  EXPECT_TRUE(immediate_replies(o, /*ack_deferred=*/true).empty());
}

TEST(Pipeline, SpoofedVinInPayloadIsReplaced) {
  auto o = process(frame("V", std::string("\x1a\x05SPOOF\x20\x01", 9)), socket(), options(), 0);
  ASSERT_EQ(o.kind, OutcomeKind::Ok);
  EXPECT_EQ(o.record.encoded_payload(), std::string("\x1a\x08" "device-1" "\x20\x01", 12));
}

TEST(Pipeline, JsonModeProducesProtojsonAndBracesForUnknownTopics) {
  auto o = process(frame("V", ""), socket(), options(true), 0);
  ASSERT_EQ(o.kind, OutcomeKind::Ok);
  EXPECT_EQ(o.json_payload, R"({"data":[],"createdAt":null,"vin":"device-1","isResend":false})");
  auto other = process(frame("canlogs", "x"), socket(), options(true), 0);
  EXPECT_EQ(other.json_payload, "{}");
}

TEST(Pipeline, JsonEncodeFailureIsAnError) {
  vd::Payload p;
  p.mutable_created_at()->set_seconds(-62135596801);
  auto o = process(frame("V", p.SerializeAsString()), socket(), options(true), 0);
  EXPECT_EQ(o.kind, OutcomeKind::Bad);
  EXPECT_EQ(o.reason, BadReason::JsonEncode);
}

TEST(Pipeline, ConnectivityRecordForASocket) {
  auto r = make_connectivity_record(socket(), 1, 1'700'000'000'123'456'789);
  EXPECT_EQ(r.tx_type, "connectivity");
  EXPECT_EQ(r.txid, socket().socket_id);
  ASSERT_NE(r.message.get_if<wire::vehicle_connectivity::VehicleConnectivity>(), nullptr);
  const auto& c = *r.message.get_if<wire::vehicle_connectivity::VehicleConnectivity>();
  EXPECT_EQ(c.vin(), "device-1");
  EXPECT_EQ(c.status(), wire::vehicle_connectivity::CONNECTED);
  EXPECT_EQ(c.created_at().seconds(), 1'700'000'000);
  EXPECT_EQ(c.created_at().nanos(), 123'456'789);
  EXPECT_EQ(c.network_interface(), "wifi");
}

}  // namespace
}  // namespace ts::pipeline

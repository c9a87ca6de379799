// VehicleServer in-process over real mTLS on 127.0.0.1 (2 shards), driven by the test vehicle:
// what an untrusted vehicle can make the server keep (metric labels, read buffers, connections,
// identities).
#include "vehicle_link/vehicle_server.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pki/certificate.hpp"
#include "pki/dev_ca.hpp"
#include "pki/openssl.hpp"
#include "pki/tls_context.hpp"
#include "runtime/shard_pool.hpp"
#include "support/temp_dir.hpp"
#include "support/vehicle_client.hpp"
#include "support/wait_for.hpp"
#include "wire/envelope.hpp"

namespace ts::vehicle_link {
namespace {

using namespace std::chrono_literals;
using testsupport::VehicleClient;
using testsupport::wait_for;

constexpr const char* kVin = "5YJ3E1EA7JF000000";

class LinkUnderTest {
 public:
  explicit LinkUnderTest(LinkOptions options = {}) : pool_(2) {
    dev_ = pki::write_dev_ca({.out_dir = dir_.file("certs"), .vins = {kVin}});
    tls_.emplace(pki::make_vehicle_server_context({.server_cert = dev_.server_cert.string(),
                                                   .server_key = dev_.server_key.string(),
                                                   .ca_file = dev_.ca_file.string()}));
    options.host = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<VehicleServer>(pool_, tls_->context, std::move(options), metrics_);
    pool_.start();
    server_->start();
  }
  ~LinkUnderTest() {
    server_->shutdown_input();
    server_->close_sessions(5s);
    pool_.stop();
  }

  VehicleServer& server() { return *server_; }
  core::MetricsRegistry& metrics() { return metrics_; }

  testsupport::VehicleClientOptions vehicle() const {
    testsupport::VehicleClientOptions o;
    o.port = server_->port();
    o.ca_file = dev_.ca_file.string();
    o.cert_file = dir_.file(std::string("certs/vehicle-") + kVin + ".pem").string();
    o.key_file = dir_.file(std::string("certs/vehicle-") + kVin + ".key").string();
    return o;
  }

  // A vehicle certificate from the dev CA (vehicle OID, like a real car) with this CN.
  testsupport::VehicleClientOptions vehicle_with_cn(const std::string& cn) {
    const auto ca = pki::read_pem_certificates(read(dev_.ca_file));
    const auto ca_key = pki::read_pem_private_key(read(dir_.file("certs/ca.key")));
    pki::KeyGenerator keys;
    auto key = keys.generate();
    pki::CertificateSpec spec;
    spec.subject = {{"CN", cn}};
    spec.ext_key_usage = {std::string(pki::kOidClientAuth), "1.3.6.1.4.1.49279.2.5.1"};
    spec.not_before = std::chrono::system_clock::now() - 1h;
    spec.not_after = std::chrono::system_clock::now() + 1h;
    auto cert = pki::issue_certificate(spec, key.get(), ca.at(0).get(), ca_key.get());
    auto o = vehicle();
    o.cert_file = write(dir_.file("odd.pem"), pki::to_pem(cert.get()));
    o.key_file = write(dir_.file("odd.key"), pki::to_pem(key.get()));
    return o;
  }

  std::size_t metric_lines() const {
    return static_cast<std::size_t>(std::ranges::count(metrics_.render_prometheus(), '\n'));
  }

  // Sum over the children of a counter family.
  std::uint64_t family_total(const std::string& name) {
    std::uint64_t sum = 0;
    metrics_.counter(name, "").for_each(
        [&](const std::vector<std::string>&, const core::Counter& c) { sum += c.value(); });
    return sum;
  }

 private:
  static std::string read(const std::filesystem::path& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  static std::string write(const std::filesystem::path& p, const std::string& text) {
    std::ofstream(p) << text;
    return p.string();
  }

  testsupport::TempDir dir_{"ts-link-test"};
  pki::DevCaResult dev_;
  core::MetricsRegistry metrics_;
  runtime::ShardPool pool_;
  std::optional<pki::VehicleServerContext> tls_;
  std::unique_ptr<VehicleServer> server_;
};

// A frame on `topic` that passes the sender check (spec §4 step 4: the connection's own sender).
std::vector<std::uint8_t> frame_on(const std::string& topic, const std::string& txid,
                                   std::size_t payload_bytes = 1) {
  const std::string payload(payload_bytes, 'p');
  return wire::build_stream_frame({.txid = txid, .topic = topic,
                                   .sender_id = std::string("vehicle_device.") + kVin,
                                   .payload = payload, .device_type = "vehicle_device",
                                   .device_id = kVin, .created_at = 1700000000});
}

std::optional<wire::Reply> reply_of(VehicleClient& car, std::chrono::milliseconds d = 10s) {
  auto r = car.receive(d);
  if (!r) return std::nullopt;
  return wire::decode_reply(*r);
}

// H2: the envelope topic is the vehicle's text; it must not become a label value.
TEST(VehicleServer, TenThousandEnvelopeTopicsDoNotGrowTheMetrics) {
  LinkUnderTest link;
  VehicleClient car(link.vehicle());
  // A few topics, and past the counting-only rate limit (100 a minute, spec §6), so that the
  // series of the refusal path exist too.
  constexpr int kWarmup = 120;
  for (int i = 0; i < kWarmup; ++i) car.send_binary(frame_on("warmup-" + std::to_string(i), "w"));
  car.send_binary(frame_on("V", "v-ok", 0));  // an empty V payload is a valid record
  for (int i = 0; i < kWarmup + 1; ++i) ASSERT_TRUE(reply_of(car)) << i;
  const std::size_t after_a_few = link.metric_lines();

  constexpr int kTopics = 10'000;
  for (int i = 0; i < kTopics; ++i) car.send_binary(frame_on("topic-" + std::to_string(i), "t"));
  for (int i = 0; i < kTopics; ++i) {
    auto r = reply_of(car);
    ASSERT_TRUE(r) << "reply " << i;
    ASSERT_EQ(r->message_type, wire::kMessageTypeStreamAck) << i;
  }
  EXPECT_EQ(link.metric_lines(), after_a_few);
  const std::string text = link.metrics().render_prometheus();
  EXPECT_NE(text.find("record_total{record_type=\"other\"} 10120\n"), std::string::npos) << text;
  EXPECT_NE(text.find("record_total{record_type=\"V\"} 1\n"), std::string::npos);
  EXPECT_EQ(text.find("topic-"), std::string::npos);
}

TEST(VehicleServer, TenThousandTopicsOnTheRateLimitedPathDoNotGrowTheMetrics) {
  LinkOptions options;
  options.rate_limit = {.enabled = true, .message_limit = 1, .interval = std::chrono::hours(1)};
  LinkUnderTest link(std::move(options));
  VehicleClient car(link.vehicle());
  car.send_binary(frame_on("first", "f"));
  ASSERT_TRUE(reply_of(car));
  for (int i = 0; i < 3; ++i) car.send_binary(frame_on("warmup-" + std::to_string(i), "w"));
  ASSERT_TRUE(wait_for([&] { return link.family_total("rate_limit_exceeded_total") == 3; }, 10s,
                       "three refusals counted"));
  const std::size_t after_a_few = link.metric_lines();

  constexpr int kTopics = 10'000;
  for (int i = 0; i < kTopics; ++i) car.send_binary(frame_on("topic-" + std::to_string(i), "t"));
  ASSERT_TRUE(wait_for(
      [&] { return link.family_total("rate_limit_exceeded_total") == kTopics + 3; }, 60s,
      "every refusal counted"));
  EXPECT_EQ(link.metric_lines(), after_a_few);
  const std::string text = link.metrics().render_prometheus();
  EXPECT_NE(text.find(std::string("rate_limit_exceeded_total{device_id=\"") + kVin +
                      "\",txtype=\"other\"} 10003\n"),
            std::string::npos);
  EXPECT_EQ(text.find("topic-"), std::string::npos);
}

TEST(VehicleServer, ConfiguredRecordTypesKeepTheirOwnLabel) {
  LinkOptions options;
  options.pipeline.configured_record_types = {"custom"};
  LinkUnderTest link(std::move(options));
  VehicleClient car(link.vehicle());
  car.send_binary(frame_on("custom", "c"));
  ASSERT_TRUE(reply_of(car));
  EXPECT_NE(link.metrics().render_prometheus().find("record_total{record_type=\"custom\"} 1\n"),
            std::string::npos);
}

// M8: a message over spec §4's 1,000,000 bytes gets the protocol's answer (ERROR, empty txid),
// is counted, and the connection stays.
TEST(VehicleServer, OverLimitFrameGetsErrorAndIsCountedWithoutClosing) {
  LinkUnderTest link;
  VehicleClient car(link.vehicle());
  car.send_binary(std::vector<std::uint8_t>(wire::kMaxFrameBytes + 1, 0x41));
  auto r = reply_of(car);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->message_type, wire::kMessageTypeStream);
  EXPECT_EQ(r->txid, "");
  car.send_binary(std::vector<std::uint8_t>(3 * wire::kMaxFrameBytes, 0x42));
  auto r2 = reply_of(car);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->message_type, wire::kMessageTypeStream);
  car.send_binary(frame_on("V", "still-open", 0));
  auto ack = reply_of(car);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->txid, "still-open");
  const std::string text = link.metrics().render_prometheus();
  EXPECT_NE(text.find("record_too_big_total 2\n"), std::string::npos);
  EXPECT_NE(text.find("teslasync_link_oversize_frames_discarded_total 2\n"), std::string::npos);
  // Never more than one record's worth of buffer, even for the 3 MB message.
  EXPECT_LE(link.server().read_buffer_capacity_for_test(), wire::kMaxFrameBytes + 64 * 1024);
}

TEST(VehicleServer, ReadBufferIsReleasedAfterALargeFrame) {
  LinkUnderTest link;
  VehicleClient car(link.vehicle());
  car.send_binary(frame_on("V", "small", 0));
  ASSERT_TRUE(reply_of(car));
  const std::size_t small = link.server().read_buffer_capacity_for_test();
  EXPECT_LE(small, 64u * 1024);
  car.send_binary(frame_on("big-topic", "big", 900'000));  // under the limit: a normal record
  auto r = reply_of(car);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->message_type, wire::kMessageTypeStreamAck);
  EXPECT_LE(link.server().read_buffer_capacity_for_test(), 64u * 1024)
      << "the ~1 MB buffer of the large frame was kept";
}

TEST(VehicleServer, ConnectionsPastThePerIdentityCapAreRefusedAndCounted) {
  LinkOptions options;
  options.max_connections_per_identity = 2;
  LinkUnderTest link(std::move(options));
  auto first = std::make_unique<VehicleClient>(link.vehicle());
  VehicleClient second(link.vehicle());
  first->send_binary(frame_on("V", "1", 0));
  second.send_binary(frame_on("V", "2", 0));
  ASSERT_TRUE(reply_of(*first));
  ASSERT_TRUE(reply_of(second));

  VehicleClient third(link.vehicle());
  EXPECT_TRUE(third.wait_closed(10s));
  EXPECT_TRUE(third.got_close_frame()) << "refused with close code 1013, not dropped";
  EXPECT_NE(link.metrics().render_prometheus().find(
                "teslasync_link_connections_per_identity_refused_total 1\n"),
            std::string::npos);
  EXPECT_EQ(link.server().connections(), 2);

  // A slot comes back when a session ends.
  first->close();
  first.reset();
  ASSERT_TRUE(wait_for([&] { return link.server().connections() == 1; }, 10s, "first gone"));
  VehicleClient fourth(link.vehicle());
  fourth.send_binary(frame_on("V", "4", 0));
  auto r = reply_of(fourth);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->txid, "4");
}

TEST(VehicleServer, DefaultCapIsFourConnectionsPerIdentity) {
  EXPECT_EQ(LinkOptions{}.max_connections_per_identity, 4u);
}

// L10: a device id that would be an MQTT wildcard or a topic separator is refused at the
// handshake like any identity error (closed, no close frame) and counted.
TEST(VehicleServer, DeviceIdUnfitForATopicIsRefusedAtTheHandshake) {
  LinkUnderTest link;
  VehicleClient car(link.vehicle_with_cn("5YJ/+/#"));
  EXPECT_TRUE(car.wait_closed(10s));
  EXPECT_FALSE(car.got_close_frame());
  EXPECT_EQ(link.family_total("teslasync_link_identity_rejected_total"), 1u);
  EXPECT_EQ(link.server().connections(), 0);
}

}  // namespace
}  // namespace ts::vehicle_link

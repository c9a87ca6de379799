// telemetry-server as a process: bad input never crashes it, degraded modes are survived and
// counted, and the features the vectors do not cover (reliable acks, rate limiting, shutdown).
#include <gtest/gtest.h>

#include <csignal>

#include "pki/certificate.hpp"
#include "pki/openssl.hpp"
#include "server_fixture.hpp"
#include "support/mqtt_collector.hpp"
#include "support/wait_for.hpp"
#include "wire/envelope.hpp"

namespace ts::integration {
namespace {

using namespace std::chrono_literals;
using testsupport::MqttCollector;
using testsupport::VehicleClient;
using testsupport::wait_for;

std::optional<wire::Reply> reply_of(VehicleClient& car, std::chrono::milliseconds d = 5s) {
  auto r = car.receive(d);
  if (!r) return std::nullopt;
  return wire::decode_reply(*r);
}

// A certificate the TLS layer rejects, written next to the server's.
std::pair<std::string, std::string> write_cert(ServerUnderTest& s, const std::string& name,
                                               std::vector<std::string> eku, bool own_ca) {
  pki::KeyGenerator keys;
  pki::CertificateSpec spec;
  spec.subject = {{"CN", kVin}};
  spec.ext_key_usage = std::move(eku);
  spec.not_before = std::chrono::system_clock::now() - std::chrono::hours(1);
  spec.not_after = std::chrono::system_clock::now() + std::chrono::hours(1);
  auto key = keys.generate();
  pki::X509Ptr cert;
  if (own_ca) {
    pki::CertificateSpec ca_spec = spec;
    ca_spec.subject = {{"CN", "Tesla Motors Products CA"}};  // right name, wrong key: not trusted
    ca_spec.is_ca = true;
    ca_spec.ext_key_usage = {};
    auto ca_key = keys.generate();
    auto ca = pki::issue_certificate(ca_spec, ca_key.get(), nullptr, ca_key.get());
    cert = pki::issue_certificate(spec, key.get(), ca.get(), ca_key.get());
  } else {
    auto ca_pem = testsupport::read_file_text(s.dir().file("certs/ca.pem"));
    auto ca_key_pem = testsupport::read_file_text(s.dir().file("certs/ca.key"));
    auto ca = pki::read_pem_certificates(ca_pem);
    auto ca_key = pki::read_pem_private_key(ca_key_pem);
    cert = pki::issue_certificate(spec, key.get(), ca.at(0).get(), ca_key.get());
  }
  return {s.dir().write_file(name + ".pem", pki::to_pem(cert.get())).string(),
          s.dir().write_file(name + ".key", pki::to_pem(key.get())).string()};
}

TEST(TelemetryServer, UntrustedOrWrongTypeCertificatesFailTheHandshakeAndAreCounted) {
  ServerUnderTest s;
  auto unknown_ca = write_cert(s, "unknown-ca", {std::string(pki::kOidClientAuth)}, true);
  auto server_only = write_cert(s, "server-only", {std::string(pki::kOidServerAuth)}, false);
  for (const auto& [cert, key] : {unknown_ca, server_only}) {
    auto o = s.vehicle();
    o.cert_file = cert;
    o.key_file = key;
    EXPECT_THROW(VehicleClient car(o), std::runtime_error) << cert;
  }
  // The server is still serving.
  VehicleClient car(s.vehicle());
  car.send_binary(v_frame("after"));
  auto r = reply_of(car);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->message_type, wire::kMessageTypeStreamAck);
  EXPECT_GE(s.metric("teslasync_link_tls_handshake_failed_total"), 2);
}

TEST(TelemetryServer, OversizeFramesGetAnErrorOrEndOnlyThatConnection) {
  ServerUnderTest s;
  VehicleClient car(s.vehicle());
  car.send_binary(std::vector<std::uint8_t>(1'000'001, 0x41));
  auto r = reply_of(car);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->message_type, 4);
  EXPECT_EQ(r->txid, "");
  EXPECT_EQ(r->error_text, wire::kErrorText);
  car.send_binary(v_frame("still-open"));
  auto ack = reply_of(car);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->txid, "still-open");
  EXPECT_EQ(s.metric("record_too_big_total"), 1);

  // Beyond the WebSocket message limit (8 MiB) the connection ends; the server does not.
  try {
    car.send_binary(std::vector<std::uint8_t>(9 * 1024 * 1024, 0x42));
  } catch (const std::runtime_error&) {
    // the server may close while the client is still writing
  }
  EXPECT_TRUE(car.wait_closed(10s));
  VehicleClient other(s.vehicle());
  other.send_binary(v_frame("other"));
  EXPECT_TRUE(reply_of(other));
}

TEST(TelemetryServer, GarbageAndTruncatedFramesNeverCloseTheConnection) {
  ServerUnderTest s;
  VehicleClient car(s.vehicle());
  auto frame = v_frame("t");
  for (std::size_t n : {1u, 3u, 7u, 16u, 40u, 100u}) {
    car.send_binary(std::vector<std::uint8_t>(frame.begin(), frame.begin() + std::min(n, frame.size() - 1)));
    auto r = reply_of(car);
    ASSERT_TRUE(r) << n;
    EXPECT_EQ(r->message_type, 4) << n;
  }
  car.send_binary(frame);
  auto ok = reply_of(car);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->message_type, 5);
  EXPECT_EQ(s.metric("unexpected_record_err_total"), 6);
}

TEST(TelemetryServer, BrokerDownAtStartupThenUp) {
  ServerSetup setup;
  setup.start_broker = false;
  ServerUnderTest s(setup);
  ASSERT_TRUE(s.process().running()) << s.process().stderr_text();
  {
    // Without a reliable-ack source the frame is acknowledged (as the reference does); the
    // failed publish is counted.
    VehicleClient car(s.vehicle());
    car.send_binary(v_frame("while-down"));
    auto r = reply_of(car);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->message_type, 5);
  }
  EXPECT_GE(s.metric("mqtt_err{record_type=\"V\"}"), 1);
  EXPECT_EQ(s.metric("teslasync_mqtt_connected"), 0);
  // Start a broker on the port the server keeps trying.
  testsupport::TempDir dir("ts-late-broker");
  auto conf = dir.write_file("m.conf", "listener " + std::to_string(s.broker_port()) +
                                           " 127.0.0.1\nallow_anonymous true\npersistence false\n");
  auto broker = testsupport::Process::start({.argv = {"/usr/sbin/mosquitto", "-c", conf.string()},
                                             .output_dir = dir.path()});
  ASSERT_TRUE(wait_for([&] { return s.metric("teslasync_mqtt_connected") == 1; }, 20s,
                       "server connected to the late broker"));
  MqttCollector sub(s.broker_port(), "telemetry/#", 0);
  VehicleClient car(s.vehicle());
  car.send_binary(v_frame("after-up"));
  ASSERT_TRUE(reply_of(car));
  ASSERT_TRUE(sub.wait_for_count(2, 5s));  // CONNECTED + VehicleName
  broker.terminate(2s);
}

TEST(TelemetryServer, ReliableAckWaitsForTheBroker) {
  ServerSetup setup;
  setup.extra_config = R"("reliable_ack_sources": {"V": "mqtt"})";
  setup.mqtt_extra = R"("qos": 1)";
  ServerUnderTest s(setup);
  MqttCollector sub(s.broker_port(), "telemetry/+/v/#", 1);
  VehicleClient car(s.vehicle());
  car.send_binary(v_frame("reliable-1"));
  auto r = reply_of(car);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->message_type, 5);
  EXPECT_EQ(r->txid, "reliable-1");
  ASSERT_TRUE(sub.wait_for_count(1, 5s));
  EXPECT_EQ(s.metric("reliable_ack{record_type=\"V\",dispatcher=\"mqtt\"}"), 1);

  // Broker gone: no ACK and no ERROR — the vehicle keeps the data and resends (spec §5).
  s.broker().stop();
  ASSERT_TRUE(wait_for([&] { return s.metric("teslasync_mqtt_connected") == 0; }, 10s, "disconnect seen"));
  car.send_binary(v_frame("reliable-2"));
  EXPECT_FALSE(car.receive(3s));
  s.broker().start();
  ASSERT_TRUE(wait_for([&] { return s.metric("teslasync_mqtt_connected") == 1; }, 20s, "reconnected"));
  car.send_binary(v_frame("reliable-3"));
  auto again = reply_of(car);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->txid, "reliable-3");
}

TEST(TelemetryServer, RateLimitDropsSilentlyWithTheDocumentedInterval) {
  ServerSetup setup;
  setup.extra_config = R"("rate_limit": {"enabled": true, "message_limit": 2, "message_interval_time": 60})";
  ServerUnderTest s(setup);
  VehicleClient car(s.vehicle());
  for (int i = 0; i < 2; ++i) {
    car.send_binary(v_frame("ok-" + std::to_string(i)));
    ASSERT_TRUE(reply_of(car)) << i;
  }
  car.send_binary(v_frame("limited"));
  EXPECT_FALSE(car.receive(500ms));  // no ack, no error, no rate-limit message
  EXPECT_EQ(s.metric(std::string("rate_limit_exceeded_total{device_id=\"") + kVin + "\",txtype=\"V\"}"), 1);
}

TEST(TelemetryServer, InvalidConfigurationsStopStartupWithTheKeyNamed) {
  struct Case {
    std::string config, expect;
  } cases[] = {
      {"{", "invalid JSON"},
      {R"({"port": 1, "records": {"V": ["mqtt"]}, "mqtt": {"broker": "127.0.0.1:1", "qos": 5},
          "tls": {"server_cert": "/nonexistent", "server_key": "/nonexistent", "ca_file": "/nonexistent"}})",
       "mqtt.qos"},
      {R"({"port": 1, "records": {"V": ["mqt"]}})", "mqt"},
      {R"({"port": 1, "records": {"V": ["mqtt"]}})", "expected MQTT to be configured"},
      {R"({"port": 1, "records": {"V": ["logger"]}})", "tls config is empty"},
      {R"({"port": "443"})", "port"},
  };
  for (const auto& c : cases) {
    auto [code, err] = run_with_config(c.config);
    EXPECT_EQ(code, 1) << c.config << "\n" << err;
    EXPECT_NE(err.find(c.expect), std::string::npos) << err;
  }
}

TEST(TelemetryServer, GracefulShutdownClosesSessionsAndPublishesDisconnected) {
  ServerUnderTest s;
  MqttCollector sub(s.broker_port(), "telemetry/+/connectivity", 0);
  VehicleClient car(s.vehicle("00000000-0000-4000-8000-0000000000aa"));
  ASSERT_TRUE(sub.wait_for_count(1, 5s));
  car.send_binary(v_frame("before-stop"));
  ASSERT_TRUE(reply_of(car));
  EXPECT_EQ(s.process().terminate(10s), 0) << s.process().stderr_text();
  EXPECT_TRUE(car.wait_closed(5s));
  EXPECT_TRUE(car.got_close_frame());  // 1001 going away
  ASSERT_TRUE(sub.wait_for_count(2, 5s));
  EXPECT_NE(sub.lines()[1].find("\"Status\":\"DISCONNECTED\""), std::string::npos);
}

}  // namespace
}  // namespace ts::integration

// Conformance through a running telemetry-server with a real Mosquitto and a subscriber: every
// vector frame sent over a real mTLS WebSocket gives the reference's replies byte for byte and
// the reference's MQTT messages (server-generated connectivity timestamps are wall clock and are
// compared by shape). Certificates are made to the subjects of the vectors README.
#include <gtest/gtest.h>

#include <regex>

#include "pki/certificate.hpp"
#include "pki/openssl.hpp"
#include "support/mosquitto_broker.hpp"
#include "support/mqtt_collector.hpp"
#include "support/ports.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/vehicle_client.hpp"
#include "support/wait_for.hpp"
#include "vectors.hpp"
#include "wire/envelope.hpp"

namespace ts::conformance {
namespace {

using namespace std::chrono_literals;
namespace ts_support = ts::testsupport;

// --- certificates of the vectors README ("Certificates and identity") ----------------------

struct Issued {
  pki::X509Ptr cert;
  pki::EvpPkeyPtr key;
};

Issued issue(pki::KeyGenerator& keys, std::vector<pki::NameEntry> subject, bool ca,
             std::vector<std::string> eku, const Issued* issuer,
             std::vector<std::string> dns = {}, std::vector<std::string> ips = {}) {
  pki::CertificateSpec spec;
  spec.subject = std::move(subject);
  spec.is_ca = ca;
  spec.ext_key_usage = std::move(eku);
  spec.dns_names = std::move(dns);
  spec.ip_addresses = std::move(ips);
  spec.not_before = std::chrono::system_clock::now() - 1h;
  spec.not_after = std::chrono::system_clock::now() + 24h;
  Issued out;
  out.key = keys.generate();
  out.cert = issuer ? pki::issue_certificate(spec, out.key.get(), issuer->cert.get(), issuer->key.get())
                    : pki::issue_certificate(spec, out.key.get(), nullptr, out.key.get());
  return out;
}

struct VectorPki {
  ts_support::TempDir dir{"ts-vector-pki"};
  std::string ca_bundle, server_cert, server_key;
  std::map<int, std::pair<std::string, std::string>> vehicle;  // case -> (cert, key); 0 = default

  VectorPki() {
    pki::KeyGenerator keys;
    const std::string client(pki::kOidClientAuth), server(pki::kOidServerAuth);
    const std::string oid_vehicle(pki::kOidTeslaVehicleProd), oid_wifi = "1.3.6.1.4.1.49279.2.5.1.1";
    auto main_ca = issue(keys, {{"O", "Peer Test"}, {"CN", "Tesla Motors Products CA"}}, true, {}, nullptr);
    auto oid_ca = issue(keys, {{"O", "Peer Test"}, {"CN", "Tesla Motors Product Issuing CA"}}, true, {}, nullptr);
    auto unknown_ca = issue(keys, {{"O", "Peer Test"}, {"CN", "Peer Unknown Issuer CA"}}, true, {}, nullptr);
    auto srv = issue(keys, {{"O", "Peer Test"}, {"CN", "localhost"}}, false, {server}, &main_ca,
                     {"localhost"}, {"127.0.0.1"});
    ca_bundle = dir.write_file("ca.pem", pki::to_pem(main_ca.cert.get()) + pki::to_pem(oid_ca.cert.get()) +
                                             pki::to_pem(unknown_ca.cert.get())).string();
    server_cert = dir.write_file("server.pem", pki::to_pem(srv.cert.get())).string();
    server_key = dir.write_file("server.key", pki::to_pem(srv.key.get())).string();
    auto add = [&](int n, Issued v) {
      vehicle[n] = {dir.write_file("v" + std::to_string(n) + ".pem", pki::to_pem(v.cert.get())).string(),
                    dir.write_file("v" + std::to_string(n) + ".key", pki::to_pem(v.key.get())).string()};
    };
    add(0, issue(keys, {{"O", "Peer Test"}, {"CN", "5YJ3E1EA7JF000000"}}, false, {client}, &main_ca));
    add(50, issue(keys, {{"O", "Peer Test"}, {"CN", "5YJ3.E1EA7.JF000001"}}, false, {client}, &main_ca));
    add(51, issue(keys, {{"O", "Peer Test"}, {"OU", "Tesla Motors SN"}, {"CN", "5YJ3E1EA7JF000002"}}, false,
                  {client}, &main_ca));
    add(52, issue(keys, {{"O", "Peer Test"}, {"CN", "5YJ3E1EA7JF000003"}}, false, {client, oid_vehicle}, &oid_ca));
    add(53, issue(keys, {{"O", "Peer Test"}, {"CN", "5YJ3E1EA7JF000004"}}, false, {client}, &unknown_ca));
    add(54, issue(keys, {{"O", "Peer Test"}, {"CN", "5YJ3E1EA7JF000005"}}, false,
                  {client, oid_wifi, oid_vehicle}, &oid_ca));
  }
};

// --- the server under test --------------------------------------------------------------------

class ServerConformance : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { start_server(false); }

  // `event_time_envelope`: our mqtt.event_time_envelope extension, off in the reference setup.
  static void start_server(bool event_time_envelope) {
    pki_ = new VectorPki();
    broker_ = new ts_support::MosquittoBroker();
    dir_ = new ts_support::TempDir("ts-server-conformance");
    port_ = ts_support::free_port();
    metrics_port_ = ts_support::free_port();
    auto config = dir_->write_file("config.json", R"({
      "host": "127.0.0.1", "port": )" + std::to_string(port_) + R"(, "log_level": "info",
      "namespace": "tesla_telemetry", "json_log_enable": true,
      "records": {"V": ["mqtt"], "alerts": ["mqtt"], "errors": ["mqtt"], "connectivity": ["mqtt"]},
      "mqtt": {"broker": "127.0.0.1:)" + std::to_string(broker_->port()) + R"(",
               "client_id": "fleet-telemetry-conformance", "topic_base": "telemetry", "qos": 0, "retained": false,
               "event_time_envelope": )" + (event_time_envelope ? "true" : "false") + R"(},
      "monitoring": {"prometheus_metrics_port": )" + std::to_string(metrics_port_) + R"(},
      "tls": {"server_cert": ")" + pki_->server_cert + R"(", "server_key": ")" + pki_->server_key +
                                                     R"(", "ca_file": ")" + pki_->ca_bundle + R"("}
    })");
    server_ = new ts_support::Process(ts_support::Process::start(
        {.argv = {std::string(TS_BIN_DIR) + "/telemetry-server", "-config=" + config.string(),
                  "--workers", "2"},
         .output_dir = dir_->path()}));
    ASSERT_TRUE(ts_support::wait_for([] { return ts_support::tcp_connectable(port_); }, 10s,
                                     "telemetry-server listening"));
  }

  static void TearDownTestSuite() {
    if (server_) {
      const int code = server_->terminate(5s);
      EXPECT_EQ(code, 0) << "telemetry-server must exit cleanly on SIGTERM\n" << server_->stderr_text();
    }
    delete server_;
    delete broker_;
    delete pki_;
    delete dir_;
    server_ = nullptr;
    broker_ = nullptr;
    pki_ = nullptr;
    dir_ = nullptr;
  }

  static ts_support::VehicleClientOptions vehicle(int cert_case, const std::string& txid = "") {
    ts_support::VehicleClientOptions o;
    o.port = port_;
    o.ca_file = pki_->ca_bundle;
    o.cert_file = pki_->vehicle.at(cert_case).first;
    o.key_file = pki_->vehicle.at(cert_case).second;
    if (!txid.empty()) o.headers["X-TXID"] = txid;
    return o;
  }

  static std::vector<std::uint8_t> frame_of(const VectorCase& c) {
    auto bytes = read_file(vectors_dir() + "/" + c.stem() + ".in.bin").value_or("");
    return {bytes.begin(), bytes.end()};
  }

  static std::vector<std::string> expected_replies(const VectorCase& c) {
    std::vector<std::string> out;
    for (const char* suffix : {".ack.bin", ".ack.2.bin"})
      if (auto b = read_file(vectors_dir() + "/" + c.stem() + suffix)) out.push_back(to_hex(*b));
    return out;
  }

  // Connectivity CreatedAt is the wall clock of the capture: compare it by shape.
  static std::string normalize(std::string line) {
    static const std::regex created(R"re("CreatedAt":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")re");
    if (line.find("/connectivity\t") == std::string::npos) return line;
    return std::regex_replace(line, created, R"("CreatedAt":"<now>")");
  }

  static std::vector<std::string> normalized(std::vector<std::string> lines) {
    for (auto& l : lines) l = normalize(l);
    std::sort(lines.begin(), lines.end());
    return lines;
  }

  static std::vector<std::string> expected_mqtt(const VectorCase& c, bool connection_messages) {
    std::vector<std::string> out;
    for (auto& l : read_lines(vectors_dir() + "/" + c.stem() + ".mqtt.txt")) {
      if (!connection_messages && l.find("/connectivity\t{\"ConnectionId\":\"00000000-0000-4000-8000-") != std::string::npos)
        continue;
      out.push_back(l);
    }
    return normalized(out);
  }

  static std::string connection_id_of(const VectorCase& c) {
    for (auto& l : read_lines(vectors_dir() + "/" + c.stem() + ".mqtt.txt")) {
      auto p = l.find("\"ConnectionId\":\"");
      if (p != std::string::npos) return l.substr(p + 16, 36);
    }
    return "";
  }

  static std::string http_get_metrics();

  static VectorPki* pki_;
  static ts_support::MosquittoBroker* broker_;
  static ts_support::TempDir* dir_;
  static ts_support::Process* server_;
  static std::uint16_t port_, metrics_port_;
};

VectorPki* ServerConformance::pki_ = nullptr;
ts_support::MosquittoBroker* ServerConformance::broker_ = nullptr;
ts_support::TempDir* ServerConformance::dir_ = nullptr;
ts_support::Process* ServerConformance::server_ = nullptr;
std::uint16_t ServerConformance::port_ = 0;
std::uint16_t ServerConformance::metrics_port_ = 0;

std::vector<std::string> hex_all(ts_support::VehicleClient& v, std::size_t n, std::chrono::milliseconds d) {
  std::vector<std::string> out;
  while (out.size() < n) {
    auto r = v.receive(d);
    if (!r) break;
    out.push_back(to_hex(std::string(r->begin(), r->end())));
  }
  return out;
}

// Cases 01-46: frames on one long-lived connection, as the capture did.
TEST_F(ServerConformance, FramesOnALongLivedConnection) {
  ts_support::MqttCollector sub(broker_->port(), "telemetry/#", 0);
  ts_support::VehicleClient car(vehicle(0, "00000000-0000-4000-8000-000000000100"));
  ASSERT_TRUE(sub.wait_for_count(1, 5s));  // CONNECTED of this connection
  sub.clear();
  for (const auto& c : load_cases()) {
    if (c.number() > 46) continue;
    SCOPED_TRACE(c.stem() + ": " + c.description);
    auto want_replies = expected_replies(c);
    auto want_mqtt = expected_mqtt(c, false);
    car.send_binary(frame_of(c));
    auto got = hex_all(car, want_replies.size(), 5s);
    EXPECT_EQ(got, want_replies);
    ASSERT_TRUE(sub.wait_for_count(want_mqtt.size(), 5s));
    EXPECT_EQ(normalized(sub.lines()), want_mqtt);
    sub.clear();
  }
  // Nothing late: no reply and no publish beyond what each case expected.
  EXPECT_FALSE(car.receive(300ms));
  EXPECT_EQ(sub.size(), 0u);
  car.close();
  ASSERT_TRUE(sub.wait_for_count(1, 5s));
  EXPECT_EQ(normalized(sub.lines()),
            normalized({"telemetry/5YJ3E1EA7JF000000/connectivity\t{\"ConnectionId\":\"00000000-0000-4000-8000-000000000100\","
                        "\"CreatedAt\":\"2026-01-01T00:00:00Z\",\"Status\":\"DISCONNECTED\"}"}));
}

// Case 47: a TEXT message ends the session: no reply, DISCONNECTED published. The vector's
// frame is binary FlatBuffers, i.e. invalid UTF-8 as text: RFC 6455 makes us fail such a
// connection with a 1007 close frame where the reference just drops the socket
// (docs/compatibility.md). A valid-UTF-8 text message is dropped without a close frame, as the
// reference does.
TEST_F(ServerConformance, TextFrameEndsTheSession) {
  const auto c = load_cases()[46];
  ASSERT_EQ(c.number(), 47);
  {
    ts_support::MqttCollector sub(broker_->port(), "telemetry/#", 0);
    const std::string id = connection_id_of(c);
    ts_support::VehicleClient car(vehicle(0, id));
    ASSERT_TRUE(sub.wait_for_count(1, 5s));
    sub.clear();
    auto f = frame_of(c);
    car.send_text(std::string(f.begin(), f.end()));
    EXPECT_TRUE(car.wait_closed(5s));
    EXPECT_FALSE(car.receive(100ms));
    ASSERT_TRUE(sub.wait_for_count(1, 5s));
    EXPECT_EQ(normalized(sub.lines()), expected_mqtt(c, true));
  }
  ts_support::VehicleClient car(vehicle(0));
  car.send_text("D4,test,1234,{\"mydata\":42}");
  EXPECT_TRUE(car.wait_closed(5s));
  EXPECT_FALSE(car.got_close_frame());
  EXPECT_FALSE(car.receive(100ms));
}

// Case 48: the reference crashes its connection handler here; we acknowledge, skip the
// value-less datum, keep the connection, and count it (docs/compatibility.md).
TEST_F(ServerConformance, DatumWithoutValueIsAcknowledgedAndSkipped) {
  const auto c = load_cases()[47];
  ASSERT_EQ(c.number(), 48);
  ts_support::VehicleClient car(vehicle(0));
  car.send_binary(frame_of(c));
  auto reply = car.receive(5s);
  ASSERT_TRUE(reply);
  auto ack = wire::build_ack("tx-malformed-datum-without-value", "V");
  EXPECT_EQ(*reply, ack);
  // The connection is still usable.
  car.send_binary(frame_of(load_cases()[0]));
  EXPECT_TRUE(car.receive(5s));
  car.close();
  EXPECT_NE(http_get_metrics().find("teslasync_mqtt_datums_without_value_total{record_type=\"V\"} 1"),
            std::string::npos);
}

// Cases 49-52: a connection of their own, with their certificate and pinned X-TXID.
TEST_F(ServerConformance, SessionAndIdentityCases) {
  for (const auto& c : load_cases()) {
    if (c.number() < 49 || c.number() > 52) continue;
    SCOPED_TRACE(c.stem() + ": " + c.description);
    ts_support::MqttCollector sub(broker_->port(), "telemetry/#", 0);
    const auto want_mqtt = expected_mqtt(c, true);
    {
      ts_support::VehicleClient car(vehicle(c.number() == 49 ? 0 : c.number(), connection_id_of(c)));
      if (c.number() != 49) {
        car.send_binary(frame_of(c));
        EXPECT_EQ(hex_all(car, 1, 5s), expected_replies(c));
      }
      car.close();
    }
    ASSERT_TRUE(sub.wait_for_count(want_mqtt.size(), 5s));
    EXPECT_EQ(normalized(sub.lines()), want_mqtt);
  }
}

// Cases 53-54: TLS-valid certificates that fail the identity rules: the upgrade succeeds, then
// the socket is closed without a close frame; nothing is published.
TEST_F(ServerConformance, IdentityRejectedAfterUpgrade) {
  for (int n : {53, 54}) {
    SCOPED_TRACE(n);
    ts_support::MqttCollector sub(broker_->port(), "telemetry/#", 0);
    ts_support::VehicleClient car(vehicle(n));
    EXPECT_TRUE(car.wait_closed(5s));
    EXPECT_FALSE(car.got_close_frame());
    EXPECT_FALSE(car.receive(300ms));
    EXPECT_EQ(sub.size(), 0u);
  }
  auto metrics = http_get_metrics();
  EXPECT_NE(metrics.find("teslasync_link_identity_rejected_total{reason=\"unauthorized certificate\"}"), std::string::npos);
  EXPECT_NE(metrics.find("teslasync_link_identity_rejected_total{reason=\"excluded certificate\"}"), std::string::npos);
}

TEST_F(ServerConformance, NoClientCertificateFailsTheHandshake) {
  auto o = vehicle(0);
  o.cert_file.clear();
  // TLS 1.3: the client learns of the rejection at its first read, i.e. during the upgrade.
  EXPECT_THROW(ts_support::VehicleClient car(o), std::runtime_error);
}

TEST_F(ServerConformance, ReferenceMetricNamesAreExported) {
  {
    ts_support::VehicleClient car(vehicle(0));
    car.send_binary(frame_of(load_cases()[0]));
    ASSERT_TRUE(car.receive(5s));
    car.close();
  }
  auto m = http_get_metrics();
  for (const char* name : {"record_total{record_type=\"V\"}", "record_size_bytes_total{record_type=\"V\"}",
                           "dispatch_total{record_type=\"V\"}", "unexpected_record_err_total",
                           "unknown_message_type_error_total", "mqtt_publish_total{record_type=\"V\"}",
                           "num_connections", "rate_limit_exceeded_total", "socket_err_total"})
    EXPECT_NE(m.find(name), std::string::npos) << name;
}

// The same server with mqtt.event_time_envelope on: every v/ message is
// {"value":<the reference's payload>,"ts":"<the record's created_at>"}; alerts, errors and
// connectivity messages are the reference's.
class ServerEventTimeEnvelope : public ServerConformance {
 protected:
  static void SetUpTestSuite() { start_server(true); }
};

TEST_F(ServerEventTimeEnvelope, FieldMessagesCarryTheRecordsCreatedAt) {
  ts_support::MqttCollector sub(broker_->port(), "telemetry/#", 0);
  ts_support::VehicleClient car(vehicle(0, "00000000-0000-4000-8000-000000000101"));
  ASSERT_TRUE(sub.wait_for_count(1, 5s));
  EXPECT_EQ(normalized(sub.lines()),
            normalized({"telemetry/5YJ3E1EA7JF000000/connectivity\t{\"ConnectionId\":\"00000000-0000-4000-8000-000000000101\","
                        "\"CreatedAt\":\"2026-01-01T00:00:00Z\",\"Status\":\"CONNECTED\"}"}));
  sub.clear();
  std::size_t wrapped = 0, unchanged = 0;
  for (const auto& c : load_cases()) {
    if (c.number() > 46) continue;
    SCOPED_TRACE(c.stem() + ": " + c.description);
    const auto ts = v_created_at(c);
    std::vector<std::string> want;
    for (const auto& line : expected_mqtt(c, false)) {
      want.push_back(ts ? with_event_time_envelope(line, *ts) : line);
      (want.back() != line ? wrapped : unchanged) += 1;
    }
    std::sort(want.begin(), want.end());
    car.send_binary(frame_of(c));
    EXPECT_EQ(hex_all(car, expected_replies(c).size(), 5s), expected_replies(c));
    ASSERT_TRUE(sub.wait_for_count(want.size(), 5s));
    EXPECT_EQ(normalized(sub.lines()), want);
    sub.clear();
  }
  EXPECT_GT(wrapped, 50u);   // the V cases' field messages
  EXPECT_GT(unchanged, 5u);  // alerts and errors
  EXPECT_EQ(sub.size(), 0u);
}

}  // namespace
}  // namespace ts::conformance

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

std::string ts::conformance::ServerConformance::http_get_metrics() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket s(io);
  s.connect({boost::asio::ip::make_address("127.0.0.1"), metrics_port_});
  std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  boost::asio::write(s, boost::asio::buffer(req));
  std::string out;
  boost::system::error_code ec;
  char buf[8192];
  for (;;) {
    auto n = s.read_some(boost::asio::buffer(buf), ec);
    if (ec) break;
    out.append(buf, n);
  }
  return out;
}

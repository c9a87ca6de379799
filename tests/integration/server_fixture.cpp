#include "server_fixture.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>

#include "pki/dev_ca.hpp"
#include "support/ports.hpp"
#include "support/wait_for.hpp"
#include "wire/envelope.hpp"
#include "wire/payload.hpp"

namespace ts::integration {

using namespace std::chrono_literals;

ServerUnderTest::ServerUnderTest(ServerSetup setup) : setup_(std::move(setup)) {
  pki::write_dev_ca({.out_dir = dir_.file("certs"), .vins = {kVin}});
  if (setup_.start_broker) {
    broker_ = std::make_unique<testsupport::MosquittoBroker>();
    broker_port_ = broker_->port();
  } else {
    broker_port_ = testsupport::free_port();  // nothing listens there (yet)
  }
  port_ = testsupport::free_port();
  metrics_port_ = testsupport::free_port();
  const auto certs = dir_.file("certs").string();
  std::string config = R"({
    "host": "127.0.0.1", "port": )" + std::to_string(port_) + R"(,
    "records": {"V": ["mqtt"], "alerts": ["mqtt"], "errors": ["mqtt"], "connectivity": ["mqtt"]},
    "mqtt": {"broker": "127.0.0.1:)" + std::to_string(broker_port_) + R"(", "client_id": "it",
             "topic_base": "telemetry", "connect_retry_interval_ms": 1000)" +
                       (setup_.mqtt_extra.empty() ? "" : ", " + setup_.mqtt_extra) + R"(},
    "monitoring": {"prometheus_metrics_port": )" + std::to_string(metrics_port_) + R"(},
    "tls": {"server_cert": ")" + certs + R"(/server.pem", "server_key": ")" + certs +
                       R"(/server.key", "ca_file": ")" + certs + R"(/ca.pem"})" +
                       (setup_.extra_config.empty() ? "" : ", " + setup_.extra_config) + "}";
  auto path = dir_.write_file("config.json", config);
  process_ = std::make_unique<testsupport::Process>(testsupport::Process::start(
      {.argv = {std::string(TS_BIN_DIR) + "/telemetry-server", "--config", path.string(),
                "--workers", std::to_string(setup_.workers)},
       .output_dir = dir_.path()}));
  auto up = testsupport::wait_for([this] { return testsupport::tcp_connectable(port_); }, 10s,
                                  "telemetry-server listening");
  if (!up) ADD_FAILURE() << up.message() << "\n" << process_->stderr_text();
}

ServerUnderTest::~ServerUnderTest() {
  if (process_ && process_->running()) process_->terminate(5s);
}

testsupport::VehicleClientOptions ServerUnderTest::vehicle(const std::string& txid) const {
  testsupport::VehicleClientOptions o;
  o.port = port_;
  o.ca_file = dir_.file("certs/ca.pem").string();
  o.cert_file = dir_.file(std::string("certs/vehicle-") + kVin + ".pem").string();
  o.key_file = dir_.file(std::string("certs/vehicle-") + kVin + ".key").string();
  if (!txid.empty()) o.headers["X-TXID"] = txid;
  return o;
}

std::string ServerUnderTest::metrics() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket s(io);
  boost::system::error_code ec;
  s.connect({boost::asio::ip::make_address("127.0.0.1"), metrics_port_}, ec);
  if (ec) return "";
  std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  boost::asio::write(s, boost::asio::buffer(req), ec);
  std::string out;
  char buf[8192];
  for (;;) {
    auto n = s.read_some(boost::asio::buffer(buf), ec);
    if (ec) break;
    out.append(buf, n);
  }
  return out;
}

double ServerUnderTest::metric(const std::string& series) {
  auto text = metrics();
  auto pos = text.find("\n" + series + " ");
  if (pos == std::string::npos) return 0;
  return std::stod(text.substr(pos + series.size() + 2));
}

std::vector<std::uint8_t> v_frame(const std::string& txid, int datums) {
  wire::vehicle_data::Payload p;
  for (int i = 0; i < datums; ++i) {
    auto* d = p.add_data();
    d->set_key(wire::vehicle_data::VehicleName);
    d->mutable_value()->set_string_value("car-" + txid);
  }
  auto payload = p.SerializeAsString();
  return wire::build_stream_frame({.txid = txid, .topic = "V",
                                   .sender_id = std::string("vehicle_device.") + kVin,
                                   .payload = payload, .device_type = "vehicle_device",
                                   .device_id = kVin, .created_at = 1700000000});
}

std::pair<int, std::string> run_with_config(const std::string& config_json) {
  testsupport::TempDir dir("ts-config-it");
  auto path = dir.write_file("config.json", config_json);
  auto p = testsupport::Process::start(
      {.argv = {std::string(TS_BIN_DIR) + "/telemetry-server", "-config=" + path.string()},
       .output_dir = dir.path()});
  auto code = p.wait(10s);
  if (!code) {
    p.terminate(1s);
    return {-1, "still running after 10 s:\n" + p.stderr_text()};
  }
  return {*code, p.stderr_text()};
}

}  // namespace ts::integration

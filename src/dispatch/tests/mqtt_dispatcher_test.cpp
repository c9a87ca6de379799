// MQTT dispatcher against a real Mosquitto on 127.0.0.1 (label: mosquitto).
#include "dispatch/mqtt/mqtt_dispatcher.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <cmath>
#include <future>
#include <map>
#include <thread>

#include "dispatch/mqtt/mqtt_client.hpp"
#include "pki/dev_ca.hpp"
#include "support/mosquitto_broker.hpp"
#include "support/mqtt_collector.hpp"
#include "support/wait_for.hpp"

namespace ts::dispatch {
namespace {

using namespace std::chrono_literals;
using testsupport::wait_for;

pipeline::Record v_record(std::string vin, std::string name, double odometer = 1.5) {
  pipeline::Record r;
  r.type = wire::RecordType::V;
  r.tx_type = "V";
  r.vin = std::move(vin);
  wire::vehicle_data::Payload p;
  auto* d = p.add_data();
  d->set_key(wire::vehicle_data::VehicleName);
  d->mutable_value()->set_string_value(std::move(name));
  auto* o = p.add_data();
  o->set_key(wire::vehicle_data::Odometer);
  o->mutable_value()->set_double_value(odometer);
  r.message = std::move(p);
  return r;
}

bool run_dispatch(Dispatcher& d, const pipeline::Record& r) {
  boost::asio::io_context io;
  auto fut = boost::asio::co_spawn(io, d.dispatch(r), boost::asio::use_future);
  io.run_for(10s);
  return fut.get();
}

MqttOptions options(std::uint16_t port, int qos = 0) {
  MqttOptions o;
  o.port = port;
  o.client_id = "dispatch-test";
  o.topic_base = "telemetry";
  o.qos = qos;
  o.publish_timeout = 2000ms;
  return o;
}

// An unlabelled metric's value (the line after its # HELP/# TYPE lines).
double metric(core::MetricsRegistry& m, const std::string& name) {
  auto text = m.render_prometheus();
  auto pos = text.find("\n" + name + " ");
  if (pos == std::string::npos) return 0;
  return std::stod(text.substr(pos + name.size() + 2));
}

std::uint64_t counter(core::MetricsRegistry& m, const std::string& line) {
  auto text = m.render_prometheus();
  auto pos = text.find(line + " ");
  if (pos == std::string::npos) return 0;
  return std::stoull(text.substr(pos + line.size() + 1));
}

TEST(MqttDispatcher, PublishesEveryDatumAndConfirms) {
  testsupport::MosquittoBroker broker;
  testsupport::MqttCollector sub(broker.port(), "telemetry/#");
  core::MetricsRegistry metrics;
  MqttDispatcher d(options(broker.port()), metrics);
  d.start();
  ASSERT_TRUE(wait_for([&] { return d.connected(); }, 10s, "dispatcher connected"));
  EXPECT_TRUE(run_dispatch(d, v_record("VIN1", "car")));
  ASSERT_TRUE(sub.wait_for_count(2, 5s));
  EXPECT_EQ(sub.sorted_lines(), (std::vector<std::string>{"telemetry/VIN1/v/Odometer\t1.5",
                                                          "telemetry/VIN1/v/VehicleName\t\"car\""}));
  EXPECT_EQ(counter(metrics, "mqtt_publish_total{record_type=\"V\"}"), 2u);
  EXPECT_EQ(d.in_flight(), 0u);
  d.shutdown(250ms);
}

// mqtt.event_time_envelope: field messages wrapped; this record has no created_at, so the time is
// the frame's receive time.
TEST(MqttDispatcher, EventTimeEnvelopeWrapsFieldMessages) {
  testsupport::MosquittoBroker broker;
  testsupport::MqttCollector sub(broker.port(), "telemetry/#");
  core::MetricsRegistry metrics;
  auto o = options(broker.port());
  o.event_time_envelope = true;
  MqttDispatcher d(o, metrics);
  d.start();
  ASSERT_TRUE(wait_for([&] { return d.connected(); }, 10s, "dispatcher connected"));
  auto r = v_record("VIN1", "car");
  r.received_at_ms = 1700000000123;
  EXPECT_TRUE(run_dispatch(d, r));
  ASSERT_TRUE(sub.wait_for_count(2, 5s));
  EXPECT_EQ(sub.sorted_lines(),
            (std::vector<std::string>{
                "telemetry/VIN1/v/Odometer\t{\"value\":1.5,\"ts\":\"2023-11-14T22:13:20.123Z\"}",
                "telemetry/VIN1/v/VehicleName\t{\"value\":\"car\",\"ts\":\"2023-11-14T22:13:20.123Z\"}"}));
  d.shutdown(250ms);
}

TEST(MqttDispatcher, QosOneWaitsForPuback) {
  testsupport::MosquittoBroker broker;
  testsupport::MqttCollector sub(broker.port(), "telemetry/#", 1);
  core::MetricsRegistry metrics;
  MqttDispatcher d(options(broker.port(), 1), metrics);
  d.start();
  ASSERT_TRUE(wait_for([&] { return d.connected(); }, 10s, "dispatcher connected"));
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(run_dispatch(d, v_record("VIN1", "n" + std::to_string(i))));
  ASSERT_TRUE(sub.wait_for_count(100, 5s));
  for (const auto& m : sub.messages()) EXPECT_EQ(m.qos, 1);
  d.shutdown(250ms);
}

TEST(MqttDispatcher, NonFiniteValuePublishesNothingAndCountsAnError) {
  testsupport::MosquittoBroker broker;
  testsupport::MqttCollector sub(broker.port(), "telemetry/#");
  core::MetricsRegistry metrics;
  MqttDispatcher d(options(broker.port()), metrics);
  d.start();
  ASSERT_TRUE(wait_for([&] { return d.connected(); }, 10s, "dispatcher connected"));
  EXPECT_FALSE(run_dispatch(d, v_record("VIN1", "car", std::nan(""))));
  EXPECT_EQ(counter(metrics, "mqtt_err{record_type=\"V\"}"), 1u);
  EXPECT_TRUE(run_dispatch(d, v_record("VIN1", "after")));  // a marker proves nothing came before
  ASSERT_TRUE(sub.wait_for_count(2, 5s));
  EXPECT_EQ(sub.size(), 2u);
  d.shutdown(250ms);
}

TEST(MqttDispatcher, BrokerDownAtStartupAndOutagesAreSurvived) {
  testsupport::MosquittoBroker broker;
  broker.stop();
  core::MetricsRegistry metrics;
  MqttOptions o = options(broker.port());
  o.connect_retry_interval = 1000ms;
  MqttDispatcher d(o, metrics);
  d.start();  // must not throw or exit while the broker is down
  EXPECT_FALSE(run_dispatch(d, v_record("VIN1", "lost")));
  EXPECT_GE(counter(metrics, "mqtt_err{record_type=\"V\"}"), 1u);

  broker.start();
  ASSERT_TRUE(wait_for([&] { return d.connected(); }, 15s, "reconnected after broker start"));
  {
    testsupport::MqttCollector sub(broker.port(), "telemetry/#");
    EXPECT_TRUE(run_dispatch(d, v_record("VIN1", "first")));
    ASSERT_TRUE(sub.wait_for_count(2, 5s));
  }
  broker.stop();
  ASSERT_TRUE(wait_for([&] { return !d.connected(); }, 10s, "disconnect noticed"));
  broker.start();
  ASSERT_TRUE(wait_for([&] { return d.connected(); }, 15s, "reconnected after restart"));
  testsupport::MqttCollector sub(broker.port(), "telemetry/#");
  EXPECT_TRUE(run_dispatch(d, v_record("VIN1", "second")));
  ASSERT_TRUE(sub.wait_for_count(2, 5s));
  d.shutdown(250ms);
}

TEST(MqttDispatcher, QosTwoCompletesAfterPubcomp) {
  testsupport::MosquittoBroker broker;
  testsupport::MqttCollector sub(broker.port(), "telemetry/#", 2);
  core::MetricsRegistry metrics;
  MqttDispatcher d(options(broker.port(), 2), metrics);
  d.start();
  ASSERT_TRUE(wait_for([&] { return d.connected(); }, 10s, "dispatcher connected"));
  for (int i = 0; i < 20; ++i)
    EXPECT_TRUE(run_dispatch(d, v_record("VIN2", "n" + std::to_string(i))));
  EXPECT_EQ(d.in_flight(), 0u);
  ASSERT_TRUE(sub.wait_for_count(40, 5s));
  for (const auto& m : sub.messages()) EXPECT_EQ(m.qos, 2);
  d.shutdown(250ms);
}

TEST(MqttDispatcher, RetainedMessagesReachALateSubscriber) {
  testsupport::MosquittoBroker broker;
  core::MetricsRegistry metrics;
  MqttOptions o = options(broker.port(), 1);
  o.retained = true;
  MqttDispatcher d(o, metrics);
  d.start();
  ASSERT_TRUE(wait_for([&] { return d.connected(); }, 10s, "dispatcher connected"));
  EXPECT_TRUE(run_dispatch(d, v_record("VIN3", "kept")));
  d.shutdown(250ms);
  // Subscribed only after the publisher is gone: only the broker's retained copies can arrive.
  testsupport::MqttCollector late(broker.port(), "telemetry/#", 1);
  ASSERT_TRUE(late.wait_for_count(2, 5s));
  EXPECT_EQ(late.sorted_lines(),
            (std::vector<std::string>{"telemetry/VIN3/v/Odometer\t1.5",
                                      "telemetry/VIN3/v/VehicleName\t\"kept\""}));
  for (const auto& m : late.messages()) EXPECT_TRUE(m.retain);
}

TEST(MqttDispatcher, UsernameAndPasswordAreSentAndRefusalIsReported) {
  testsupport::MosquittoOptions bo;
  bo.username = "ts-user";
  bo.password = "s3cret:with spaces";
  bo.allow_anonymous = false;
  testsupport::MosquittoBroker broker(bo);
  testsupport::MqttCollectorOptions co;
  co.username = bo.username;
  co.password = bo.password;
  testsupport::MqttCollector sub(broker.port(), "telemetry/#", 1, co);

  {  // wrong password: refused (CONNACK 5 with a password file), never connected, retried
    core::MetricsRegistry metrics;
    MqttOptions o = options(broker.port());
    o.username = bo.username;
    o.password = "wrong";
    o.connect_retry_interval = 1000ms;
    MqttDispatcher d(o, metrics);
    d.start();
    ASSERT_TRUE(
        wait_for([&] { return metric(metrics, "teslasync_mqtt_connect_failures_total") >= 2; }, 10s,
                 "refused twice"));
    EXPECT_FALSE(d.connected());
    EXPECT_FALSE(run_dispatch(d, v_record("VIN4", "refused")));
    d.shutdown(0ms);
  }
  core::MetricsRegistry metrics;
  MqttOptions o = options(broker.port(), 1);
  o.username = bo.username;
  o.password = bo.password;
  MqttDispatcher d(o, metrics);
  d.start();
  ASSERT_TRUE(wait_for([&] { return d.connected(); }, 10s, "connected with credentials"));
  EXPECT_TRUE(run_dispatch(d, v_record("VIN4", "ok")));
  ASSERT_TRUE(sub.wait_for_count(2, 5s));
  EXPECT_EQ(sub.size(), 2u);  // nothing from the refused client got through
  d.shutdown(250ms);
}

TEST(MqttDispatcher, PublishesOverTlsAndVerifiesTheBroker) {
  testsupport::TempDir certs("mqtt-tls");
  auto ca = pki::write_dev_ca({.out_dir = certs.path(), .vins = {}, .server_name = "localhost"});
  testsupport::MosquittoOptions bo;
  bo.tls = testsupport::MosquittoTlsListener{ca.server_cert, ca.server_key, ca.ca_file, false};
  testsupport::MosquittoBroker broker(bo);
  testsupport::MqttCollector sub(broker.port(), "telemetry/#", 1);

  {  // a CA that did not sign the broker certificate: the handshake fails, no session
    testsupport::TempDir other("mqtt-tls-other");
    auto other_ca = pki::write_dev_ca({.out_dir = other.path(), .vins = {}, .server_name = "x"});
    core::MetricsRegistry metrics;
    MqttOptions o = options(broker.tls_port());
    o.tls = true;
    o.ca_file = other_ca.ca_file.string();
    o.connect_retry_interval = 1000ms;
    MqttDispatcher d(o, metrics);
    d.start();
    ASSERT_TRUE(
        wait_for([&] { return metric(metrics, "teslasync_mqtt_connect_failures_total") >= 1; }, 10s,
                 "untrusted broker refused"));
    EXPECT_FALSE(d.connected());
    d.shutdown(0ms);
  }
  core::MetricsRegistry metrics;
  MqttOptions o = options(broker.tls_port(), 1);
  o.tls = true;
  o.ca_file = ca.ca_file.string();
  MqttDispatcher d(o, metrics);
  d.start();
  ASSERT_TRUE(wait_for([&] { return d.connected(); }, 10s, "connected over TLS"));
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(run_dispatch(d, v_record("VIN5", "tls")));
  ASSERT_TRUE(sub.wait_for_count(20, 5s));
  d.shutdown(250ms);
}

TEST(MqttClient, TenThousandMessagesInFiveHundredBatchesArriveInOrder) {
  testsupport::MosquittoBroker broker({.extra_config = {"max_queued_messages 100000"}});
  testsupport::MqttCollector sub(broker.port(), "bulk/#", 1);
  MqttClientOptions o;
  o.port = broker.port();
  o.client_id = "bulk";
  MqttClient client(o);
  client.start();
  ASSERT_TRUE(wait_for([&] { return client.connected(); }, 10s, "client connected"));
  std::atomic<int> ok{0}, failed{0};
  // Two caller threads, as two shards would be; each batch has its own topic.
  auto produce = [&](int first, int count) {
    for (int b = first; b < first + count; ++b) {
      std::vector<MqttClient::Message> batch;
      for (int i = 0; i < 20; ++i)
        batch.push_back({"bulk/" + std::to_string(b), std::to_string(i),
                         static_cast<std::uint8_t>(b % 3), false});
      client.publish_batch(std::move(batch), [&](bool r) { (r ? ok : failed).fetch_add(1); });
    }
  };
  std::thread t1(produce, 0, 250), t2(produce, 250, 250);
  t1.join();
  t2.join();
  ASSERT_TRUE(wait_for([&] { return ok + failed == 500; }, 20s, "every batch completed"));
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(client.unconfirmed(), 0u);
  // The broker keeps its default max_inflight_messages (20): beyond it Mosquitto acknowledges
  // QoS 1/2 messages and drops them, so this also checks that the client keeps the window.
  const bool all = sub.wait_for_count(10'000, 20s);
  std::map<int, int> per_qos;
  for (const auto& m : sub.messages()) per_qos[std::stoi(m.topic.substr(5)) % 3]++;
  ASSERT_TRUE(all) << "received per QoS 0/1/2: " << per_qos[0] << " " << per_qos[1] << " "
                   << per_qos[2];
  std::map<std::string, std::vector<std::string>> by_topic;
  for (const auto& m : sub.messages()) by_topic[m.topic].push_back(m.payload);
  ASSERT_EQ(by_topic.size(), 500u);
  std::vector<std::string> expected;
  for (int i = 0; i < 20; ++i) expected.push_back(std::to_string(i));
  for (const auto& [topic, payloads] : by_topic) EXPECT_EQ(payloads, expected) << topic;
  EXPECT_EQ(client.stats().messages.value(), 10'000u);
  EXPECT_LT(client.stats().writes.value(), 10'000u);  // batched: many packets per write
  client.stop();
}

TEST(MqttClient, InvalidTopicsAndOverloadFailFastAndSendNothing) {
  testsupport::MosquittoBroker broker;
  testsupport::MqttCollector sub(broker.port(), "#", 0);
  MqttClientOptions o;
  o.port = broker.port();
  o.max_unconfirmed = 5;
  MqttClient client(o);
  // Not started: not connected, fails inline.
  std::optional<bool> result;
  client.publish_batch({{"a/b", "x", 0, false}}, [&](bool r) { result = r; });
  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(*result);
  EXPECT_EQ(client.stats().not_connected_rejected.value(), 1u);

  client.start();
  ASSERT_TRUE(wait_for([&] { return client.connected(); }, 10s, "client connected"));
  for (const char* bad : {"a/+/b", "a/#", "", "\xc3"}) {
    result.reset();
    client.publish_batch({{"ok/first", "x", 0, false}, {bad, "y", 0, false}},
                         [&](bool r) { result = r; });
    ASSERT_TRUE(result.has_value()) << bad;
    EXPECT_FALSE(*result) << bad;
  }
  EXPECT_EQ(client.stats().rejected_messages.value(), 4u);
  result.reset();
  client.publish_batch(std::vector<MqttClient::Message>(6, {"ok/many", "x", 0, false}),
                       [&](bool r) { result = r; });
  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(*result);
  EXPECT_EQ(client.stats().overload_rejected.value(), 1u);
  std::promise<bool> marker;
  client.publish_batch({{"ok/marker", "m", 1, false}}, [&](bool r) { marker.set_value(r); });
  EXPECT_TRUE(marker.get_future().get());
  ASSERT_TRUE(sub.wait_for_count(1, 5s));
  EXPECT_EQ(sub.lines(), (std::vector<std::string>{"ok/marker\tm"}));
  client.stop();
}

TEST(MqttClient, KeepAlivePingsHoldAnIdleConnection) {
  testsupport::MosquittoBroker broker;
  MqttClientOptions o;
  o.port = broker.port();
  o.keep_alive_seconds = 1;  // Mosquitto drops a client silent for 1.5 x keep-alive
  MqttClient client(o);
  client.start();
  ASSERT_TRUE(wait_for([&] { return client.connected(); }, 10s, "client connected"));
  // Idle for more than 3 x keep-alive; the wait ends early only if the connection drops.
  const auto until = std::chrono::steady_clock::now() + 3500ms;
  (void)wait_for([&] { return !client.connected() || std::chrono::steady_clock::now() >= until; },
                 10s, "idle period over");
  EXPECT_TRUE(client.connected());
  EXPECT_EQ(client.stats().connects.value(), 1u);
  EXPECT_EQ(client.stats().disconnects.value(), 0u);
  std::promise<bool> marker;
  client.publish_batch({{"idle/after", "x", 1, false}}, [&](bool r) { marker.set_value(r); });
  EXPECT_TRUE(marker.get_future().get());
  client.stop();
}

// A broker that accepts the session and then never answers: no PINGRESP must end the session.
TEST(MqttClient, MissingPingrespDropsTheConnection) {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  std::thread silent([&] {
    boost::system::error_code ec;
    asio::ip::tcp::socket s(io);
    acceptor.accept(s, ec);
    if (ec) return;
    std::array<char, 256> buf{};
    s.read_some(asio::buffer(buf), ec);  // CONNECT
    const unsigned char connack[] = {0x20, 2, 0, 0};
    asio::write(s, asio::buffer(connack), ec);
    while (!ec) s.read_some(asio::buffer(buf), ec);  // swallow PINGREQs until the client hangs up
  });
  MqttClientOptions o;
  o.port = acceptor.local_endpoint().port();
  o.keep_alive_seconds = 1;
  MqttClient client(o);
  client.start();
  ASSERT_TRUE(wait_for([&] { return client.stats().connects.value() >= 1; }, 5s, "session up"));
  EXPECT_TRUE(wait_for([&] { return client.stats().disconnects.value() >= 1; }, 5s,
                       "dropped for a missing PINGRESP"));
  silent.join();  // the client closed the silent session
  client.stop();
}

}  // namespace
}  // namespace ts::dispatch

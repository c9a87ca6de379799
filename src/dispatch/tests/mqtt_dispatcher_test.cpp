// MQTT dispatcher against a real Mosquitto on 127.0.0.1 (label: mosquitto).
#include "dispatch/mqtt/mqtt_dispatcher.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <cmath>

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

}  // namespace
}  // namespace ts::dispatch

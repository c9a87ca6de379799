#pragma once
/// MQTT dispatcher (spec §8.8) on our batching MqttClient (dispatch/mqtt/mqtt_client.hpp).
///
/// One broker connection driven by the client's own thread; `dispatch` may be called from
/// every shard. Each record's publishes go to the client as one batch, confirmed when all are
/// written (QoS 0) or acknowledged (QoS 1/2), awaited on the caller's shard with one shared
/// `publish_timeout_ms` budget per record (spec §8.8 "Delivery" 2).
/// The broker being down never stops the server: the connection is retried forever, with
/// exponential back-off, from start-up on; publishes meanwhile fail fast and are counted.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/metrics.hpp"
#include "dispatch/dispatcher.hpp"

namespace ts::dispatch {

struct MqttOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  bool tls = false;  ///< ssl:// / mqtts:// broker URL, or a CA file given
  std::string ca_file, cert_file, key_file;
  std::string client_id;
  std::string username, password;
  std::string topic_base;
  int qos = 0;
  bool retained = false;
  bool event_time_envelope = false;  ///< pipeline::MqttFormatOptions::event_time_envelope
  bool record_message = false;       ///< pipeline::MqttFormatOptions::record_message
  std::chrono::milliseconds connect_timeout{30000};
  std::chrono::milliseconds publish_timeout{2500};
  std::chrono::milliseconds disconnect_timeout{250};
  std::chrono::milliseconds connect_retry_interval{10000};
  int keep_alive_seconds = 30;
};

class MqttDispatcher final : public Dispatcher {
 public:
  /// Registers the dispatcher's metrics (spec §9 `mqtt_*` plus ours). Does not connect yet.
  /// Throws std::runtime_error for local misconfiguration (unreadable TLS files).
  MqttDispatcher(MqttOptions options, core::MetricsRegistry& metrics);
  ~MqttDispatcher() override;

  /// Starts the network thread and the first (asynchronous) connection attempt; an unreachable
  /// broker is retried forever.
  void start();

  std::string_view name() const override { return "mqtt"; }
  boost::asio::awaitable<bool> dispatch(const pipeline::Record& record) override;
  void dispatch_detached(const pipeline::Record& record) override;
  void shutdown(std::chrono::milliseconds grace) override;
  bool connected() const override;

  /// Publishes still waiting for the broker (for tests and metrics).
  std::size_t in_flight() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace ts::dispatch

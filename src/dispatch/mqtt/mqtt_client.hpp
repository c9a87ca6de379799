#pragma once
/// An MQTT 3.1.1 client that only publishes, on Boost.Asio, built to batch: many PUBLISH packets
/// go out in one socket write.
///
/// Threading: the client owns one thread running its own io_context (start() .. stop()); every
/// socket operation, packet-id table and batch state lives there. `publish_batch` may be called
/// from any thread: it takes one mutex per batch to append it to the pending list and posts a
/// single wake-up when the client thread is not already draining. The client thread encodes all
/// pending messages straight into one reusable buffer and issues one write (up to
/// `max_write_bytes`), gathering what arrives meanwhile for the next write.
///
/// Delivery: a batch's callback runs once, on the client thread, with true when every message
/// was written to the socket (QoS 0) or acknowledged (QoS 1: PUBACK, QoS 2: PUBCOMP), false when
/// any failed. Fail-fast cases call it inline, on the caller's thread, before publish_batch
/// returns: not connected, more than `max_unconfirmed` messages unconfirmed, an invalid topic or
/// an oversized message (nothing of that batch is sent). When the connection is lost, every
/// unconfirmed batch fails; nothing is retransmitted after a reconnect.
///
/// Robustness: connects asynchronously at start() and reconnects forever with exponential
/// back-off (250 ms doubling up to `max_backoff`); a broker down at start-up is just retried.
/// Keep-alive: a PINGREQ every `keep_alive_seconds`; no PINGRESP before the next one is due ->
/// the connection is dropped and re-established. Errors are logged ("mqtt" logger, rate-limited)
/// and counted in stats(); nothing throws out of the client thread.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/metrics.hpp"

namespace ts::dispatch {

/// Connection settings of an MqttClient; fixed after construction.
struct MqttClientOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  bool tls = false;             ///< TLS to the broker (ssl://, mqtts://)
  std::string ca_file;          ///< PEM trust anchors; empty: the system's default CAs
  std::string cert_file;        ///< client certificate chain (PEM), optional
  std::string key_file;         ///< its private key (PEM), required with cert_file
  bool verify_hostname = true;  ///< check the broker certificate against `host` (name or IP)
  std::string client_id;        ///< empty: the broker assigns one (clean session)
  std::string username;         ///< empty: no credentials
  std::string password;         ///< sent only with a username
  int keep_alive_seconds = 30;  ///< 0 disables keep-alive pings
  std::chrono::milliseconds connect_timeout{30'000};  ///< TCP + TLS + CONNACK, per attempt
  std::chrono::milliseconds max_backoff{10'000};      ///< reconnect delay cap (starts at 250 ms)
  std::size_t max_unconfirmed = 200'000;              ///< messages accepted but not yet confirmed
  std::size_t max_write_bytes = 256 * 1024;           ///< cap of a single socket write
  /// QoS 1/2 messages awaiting PUBACK/PUBCOMP at once. Brokers limit this (MQTT 5 calls it
  /// "receive maximum"; Mosquitto's max_inflight_messages, default 20) and Mosquitto drops
  /// messages beyond it while still acknowledging them, so stay within the broker's setting.
  std::size_t max_inflight = 20;
};

/// Counters of one client, incremented on its thread and readable from any thread.
struct MqttClientStats {
  core::Counter connects;          ///< sessions established (CONNACK accepted)
  core::Counter disconnects;       ///< established sessions lost (not counting stop())
  core::Counter connect_failures;  ///< attempts that did not reach an accepted CONNACK
  core::Counter bytes_written;
  core::Counter writes;                  ///< socket writes (each carries many packets)
  core::Counter messages;                ///< PUBLISH packets written
  core::Counter rejected_messages;       ///< invalid topic or oversized: never sent
  core::Counter overload_rejected;       ///< batches refused beyond max_unconfirmed
  core::Counter not_connected_rejected;  ///< batches refused while disconnected
  core::Counter failed_batches;          ///< batches that completed with false
};

class MqttClient {
 public:
  /// One message to publish. Topic and payload are moved in and kept until it is confirmed.
  struct Message {
    std::string topic;
    std::string payload;
    std::uint8_t qos = 0;  ///< 0, 1 or 2 (larger values are treated as 2)
    bool retain = false;
  };
  /// Completion of a batch: true when every message was confirmed. Must not throw.
  using Callback = std::function<void(bool ok)>;

  /// Validates and loads the TLS files. Throws std::runtime_error for local misconfiguration
  /// (unreadable CA, certificate or key file); never for an unreachable broker.
  explicit MqttClient(MqttClientOptions options);
  /// Calls stop().
  ~MqttClient();

  MqttClient(const MqttClient&) = delete;
  MqttClient& operator=(const MqttClient&) = delete;

  /// Starts the client thread and the first connection attempt. Once.
  void start();

  /// Sends DISCONNECT if connected, closes the connection, fails every unconfirmed batch and
  /// joins the thread (bounded: about one second). Idempotent; any thread but the client's.
  void stop();

  /// Any thread. Queues `messages` as one batch; see the class comment for `done`. An empty
  /// batch completes with true at once. `done` may be empty (fire and forget).
  void publish_batch(std::vector<Message>&& messages, Callback done);

  /// True while a broker session is up (CONNACK accepted, connection not yet lost).
  bool connected() const { return connected_.load(std::memory_order_relaxed); }

  /// Messages accepted by publish_batch and not yet confirmed or failed.
  std::size_t unconfirmed() const { return unconfirmed_.load(std::memory_order_relaxed); }

  const MqttClientStats& stats() const { return stats_; }

 private:
  struct Batch {
    std::vector<Message> messages;
    Callback done;
    std::size_t next = 0;         // first message not yet encoded
    std::size_t outstanding = 0;  // messages not yet confirmed
  };
  struct Impl;  // client-thread state: sockets, TLS context, packet ids, timers

  const MqttClientOptions options_;
  MqttClientStats stats_;
  std::atomic<bool> connected_{false};
  std::atomic<std::size_t> unconfirmed_{0};

  std::mutex mutex_;          // guards pending_, accepting_, scheduled_
  std::list<Batch> pending_;  // accepted, not yet taken by the client thread
  bool accepting_ = false;    // a session is up and not being torn down
  bool scheduled_ = false;    // the client thread will look at pending_ without a new wake-up

  std::unique_ptr<Impl> impl_;  // owns the io_context; used by the client thread only
  std::thread thread_;
  std::once_flag started_, stopped_;
};

}  // namespace ts::dispatch

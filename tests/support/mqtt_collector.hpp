#pragma once
/// An MQTT subscriber that records everything it receives, for asserting on what our binaries
/// publish.
///
/// Owner: the test that creates it. Thread-safe: libmosquitto's network thread
/// (mosquitto_loop_start) records messages under a mutex, and every public method may be called
/// from any thread. The constructor blocks until the broker has acknowledged the subscription
/// (SUBACK), so nothing published after it returns is missed. After a lost connection (broker
/// outage) it reconnects every second and subscribes again; subscriptions() counts SUBACKs.
///
/// Failure: the constructor throws std::runtime_error if it cannot connect, the broker refuses
/// the connection (bad credentials, TLS) or the subscription, or no SUBACK arrives within
/// `subscribe_timeout`. The destructor disconnects and joins the network thread.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

struct mosquitto;
struct mosquitto_message;

namespace ts::testsupport {

/// Calls mosquitto_lib_init() once per process (thread-safe). Tests that use libmosquitto
/// directly call this first; MqttCollector does it itself. Throws std::runtime_error on failure.
void init_mosquitto_lib();

struct MqttMessage {
  std::string topic;
  std::string payload;  ///< raw bytes, may contain NUL
  int qos = 0;          ///< as delivered: min(published QoS, subscription QoS)
  bool retain = false;
  std::chrono::steady_clock::time_point arrived;
};

struct MqttCollectorOptions {
  std::string client_id;  ///< empty: "ts-collector-<pid>-<n>"
  std::string username;   ///< empty: connect without credentials
  std::string password;
  /// Non-empty: connect with TLS, verifying the broker certificate against this CA.
  std::filesystem::path ca_file;
  std::filesystem::path cert_file;  ///< client certificate for mutual TLS (optional)
  std::filesystem::path key_file;
  std::chrono::milliseconds subscribe_timeout{10'000};
};

class MqttCollector {
 public:
  /// Connects to 127.0.0.1:`port` and subscribes to `pattern` (MQTT wildcards allowed) at `qos`.
  MqttCollector(std::uint16_t port, std::string pattern, int qos = 1,
                MqttCollectorOptions options = {});
  ~MqttCollector();

  MqttCollector(const MqttCollector&) = delete;
  MqttCollector& operator=(const MqttCollector&) = delete;

  std::size_t size() const;
  std::vector<MqttMessage> messages() const;
  void clear();

  /// Succeeds once at least `n` messages have been recorded; the failure message gives the
  /// count reached and the last topics received.
  ::testing::AssertionResult wait_for_count(std::size_t n,
                                            std::chrono::milliseconds deadline) const;

  /// One "topic\tpayload" line per message in arrival order (the format of
  /// shared/vectors/reference/*.mqtt.txt, without the trailing newline).
  std::vector<std::string> lines() const;
  /// lines(), sorted bytewise (unsigned), for comparisons that ignore arrival order.
  std::vector<std::string> sorted_lines() const;

  /// Number of SUBACKs received: 1 after construction, +1 after each reconnect.
  std::uint64_t subscriptions() const;
  /// Succeeds once subscriptions() >= n: `before + 1` means "subscribed again after an outage".
  ::testing::AssertionResult wait_for_subscriptions(std::uint64_t n,
                                                    std::chrono::milliseconds deadline) const;
  /// True while an MQTT session with the broker is up.
  bool connected() const;

 private:
  static void on_connect(mosquitto* mosq, void* self, int rc);
  static void on_disconnect(mosquitto* mosq, void* self, int rc);
  static void on_subscribe(mosquitto* mosq, void* self, int mid, int qos_count,
                           const int* granted_qos);
  static void on_message(mosquitto* mosq, void* self, const mosquitto_message* message);
  static void on_log(mosquitto* mosq, void* self, int level, const char* text);
  void shutdown() noexcept;

  const std::uint16_t port_;
  const std::string pattern_;
  const int qos_;
  mosquitto* mosq_ = nullptr;  // owned; used by the network thread between start and shutdown

  mutable std::mutex mutex_;  // guards everything below
  mutable std::condition_variable changed_;
  std::vector<MqttMessage> messages_;
  std::uint64_t subscriptions_ = 0;
  bool connected_ = false;
  std::string error_;  // first failure before the first SUBACK, reported by the constructor
  std::string last_client_error_;  // last error libmosquitto logged, for failure messages
};

}  // namespace ts::testsupport

#pragma once
/// The whole data path as real processes on 127.0.0.1, for teslasync-api's end-to-end tests:
/// Mosquitto (configured for ack-after-durable), telemetry-server (QoS 1, event-time envelope),
/// teslasync-api, and vehicle-sim on demand. Plus the helpers those tests share: a QoS 1
/// publisher, paged signal history through the API, and SSE event filters.
///
/// Owner: one test; not thread-safe. Every process is stopped by the destructor; the broker and
/// the API can be stopped and started again on the same ports to simulate outages.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "support/http_client.hpp"
#include "support/mosquitto_broker.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

struct mosquitto;

namespace ts::integration {

inline constexpr const char* kRegistered = "5YJ3E1EA7KF000101";
inline constexpr const char* kUnregistered = "5YJ3E1EA7KF000102";
inline constexpr const char* kToken = "tsk_e2e-test-token-0123456789abcdef";

/// The Authorization header carrying kToken.
testsupport::Headers auth();

/// The response body as JSON (a test failure when it is not).
boost::json::value json_of(const testsupport::HttpResponse& r);

struct ApiOptions {
  std::string database_url;
  std::string redis_url;
  std::string public_key_file;
  /// telemetry-server publishes each V record as one message (mqtt.record_message).
  bool record_message = false;
  /// More environment for teslasync-api (appended; a later entry wins over the defaults).
  std::vector<std::pair<std::string, std::string>> extra_env;
  /// Mosquitto with persistence (in the pipeline's temp dir): sessions, their subscriptions and
  /// queued or unacknowledged messages survive broker().stop() + start().
  bool broker_persistence = false;
};

class Pipeline {
 public:
  explicit Pipeline(ApiOptions api = {});
  ~Pipeline();

  /// (Re)starts telemetry-server on a new port; waits until it listens.
  void start_server();
  /// (Re)starts teslasync-api on its port (picked at the first start); waits for /readyz.
  void start_api();

  /// Runs vehicle-sim against the server; returns its JSON report.
  boost::json::value drive(int vehicles, double rate, int seconds);
  /// Starts vehicle-sim in the background (for tests that act while vehicles stream).
  testsupport::Process start_vehicles(int vehicles, double rate, int seconds);

  /// GET `path` on the API with the token; the body as JSON (a test failure unless 200).
  boost::json::value get(const std::string& path);
  /// L1's state document of `vin`.
  boost::json::value state(const std::string& vin = kRegistered);
  /// One stage (`{"stage","health","reason","metrics"}`) of /api/v1/system/telemetry-pipeline;
  /// an empty object (and a test failure) when it is missing.
  boost::json::object stage(const std::string& name);
  /// The value of one series of /metrics, e.g. `teslasync_redis_up{client="mirror"}`; NaN (and
  /// a test failure) when it is missing.
  double metric(const std::string& series);

  std::uint16_t api_port() const { return api_port_; }
  std::uint16_t server_port() const { return server_port_; }
  testsupport::MosquittoBroker& broker() { return *broker_; }
  testsupport::Process& api() { return *api_; }
  testsupport::Process& server() { return *server_; }
  const testsupport::TempDir& dir() const { return dir_; }

 private:
  std::vector<std::string> sim_argv(int vehicles, double rate, int seconds) const;

  ApiOptions api_options_;
  testsupport::TempDir dir_{"ts-api-e2e"};
  std::unique_ptr<testsupport::MosquittoBroker> broker_;
  std::unique_ptr<testsupport::Process> server_, api_;
  std::uint16_t server_port_ = 0, api_port_ = 0;
};

/// The value of one series of the /metrics of the API on `port` (see Pipeline::metric).
double metric(std::uint16_t port, const std::string& series);

/// The event time of L1's VehicleSpeed in a /state document, in µs.
std::int64_t signal_ts_us(const boost::json::value& state, const std::string& name = "VehicleSpeed");

/// Publishes QoS 1 messages with libmosquitto and waits (bounded) until the broker has
/// acknowledged all of them. Reconnects by itself after a broker restart (libmosquitto's loop,
/// about once a second): wait_connected() before publishing again; publishing while it is not
/// connected is a test failure. Call all_acked() before stopping the broker, so that no publish
/// is in flight across a restart.
class Publisher {
 public:
  explicit Publisher(std::uint16_t port);
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  void publish(const std::string& topic, const std::string& payload, bool retain = false);
  void publish_retained(const std::string& topic, const std::string& payload) {
    publish(topic, payload, true);
  }
  ::testing::AssertionResult all_acked();
  /// Waits (bounded) until the connection is up, counting `connects()` beyond `after`.
  ::testing::AssertionResult wait_connected(int after = 0);
  /// CONNACKs received so far (1 after the first connection, +1 per reconnect).
  int connects() const { return connects_.load(); }

 private:
  mosquitto* m_ = nullptr;
  int sent_ = 0;
  std::atomic<int> acked_{0};
  std::atomic<int> connects_{0};
  std::atomic<bool> connected_{false};
};

/// `{"value":<value>,"ts":"<ts_us as RFC 3339>"}`: the event-time envelope.
std::string envelope(const std::string& value_json, std::int64_t ts_us);

/// Rows of `name` for `vin` in signal_log (paged through the API); 0 when the API does not
/// answer 200. Event times seen twice go to `duplicates`.
std::size_t history_count(std::uint16_t port, const std::string& vin, const std::string& name,
                          std::set<std::string>* duplicates = nullptr);

/// All rows of one signal of one vehicle from signal_log, through the paged API.
std::vector<boost::json::object> history(std::uint16_t port, const std::string& vin,
                                         const std::string& name);

/// (ts -> value JSON) of every signal_change of `name` for `vin` in an SSE event list.
std::map<std::string, std::string> sse_changes(const std::vector<testsupport::SseEvent>& events,
                                               const std::string& vin, const std::string& name);

}  // namespace ts::integration

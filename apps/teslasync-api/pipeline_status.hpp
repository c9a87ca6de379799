#pragma once
/// GET /api/v1/system/telemetry-pipeline: every stage of the data path with its numbers and a
/// health verdict. `PipelineSnapshot` is filled by the composition root from the components'
/// stats; `evaluate` is pure (tested without servers). `RateMeter` turns counters into rates.
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace ts::api {

enum class Health { Ok, Degraded, Down, Disabled };
std::string_view to_string(Health h) noexcept;

/// Per-second rate of a monotonically increasing counter over a sliding window. Thread-safe.
class RateMeter {
 public:
  explicit RateMeter(std::chrono::seconds window = std::chrono::seconds(10)) : window_(window) {}
  /// Records the counter's value at `now_us`.
  void sample(double value, std::int64_t now_us);
  /// Increase per second over the window (0 with fewer than two samples).
  double rate() const;
  /// Increase over the whole window.
  double increase() const;

 private:
  const std::chrono::seconds window_;
  mutable std::mutex mutex_;  // guards samples_
  std::deque<std::pair<std::int64_t, double>> samples_;
};

struct PipelineSnapshot {
  std::int64_t now_us = 0;
  bool telemetry_enabled = true;
  std::chrono::milliseconds stale_timeout{};
  std::size_t registered_vehicles = 0;

  // MQTT
  bool mqtt_connected = false;
  bool mqtt_subscribed = false;
  std::string mqtt_broker;
  std::uint64_t mqtt_reconnects = 0;
  double messages_per_second = 0;
  std::optional<double> last_message_age_seconds;  ///< empty: none since start
  std::uint64_t messages_total = 0;

  // Decode
  std::uint64_t decode_failures = 0;
  std::uint64_t dead_letters = 0;
  std::uint64_t unregistered = 0;
  double dead_letters_recent = 0;  ///< increase over the rate window

  // L1
  std::size_t l1_vehicles = 0;
  std::size_t l1_signals = 0;

  // Redis
  bool redis_configured = false;
  bool redis_up = false;
  std::size_t redis_pending = 0;
  std::uint64_t redis_errors = 0;

  // signal_log
  std::string database;  ///< "sqlite" | "postgresql"
  std::size_t queue_batches = 0;
  std::size_t queue_capacity = 0;
  std::size_t queue_messages = 0;
  double append_rate = 0;  ///< records per second made durable
  std::uint64_t write_failures = 0;
  double write_failures_recent = 0;
  bool paused = false;
  std::optional<double> last_write_age_seconds;
  std::string writer_problem;           ///< Ingest::writer_problem(): "" while healthy
  std::uint64_t rejected_messages = 0;  ///< refused by the database, kept as dead letters
  double rejected_recent = 0;           ///< of those, in the rate window

  // SSE
  std::size_t sse_clients = 0;
  double sse_events_per_second = 0;
  std::uint64_t sse_slow_disconnects = 0;

  // Polling
  bool polling_configured = false;
  std::size_t polling_vehicles = 0;
  std::uint64_t polls = 0;
  std::uint64_t polls_failed = 0;
  std::uint64_t polls_asleep = 0;
  std::uint64_t polls_rate_limited = 0;
  std::optional<double> last_poll_age_seconds;
};

/// The JSON document: {"generated_at","health","stages":[{"stage","health","reason","metrics":{…}}]}.
std::string evaluate(const PipelineSnapshot& s);

}  // namespace ts::api

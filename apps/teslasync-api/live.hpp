#pragma once
/// Live views: what a decoded record changes in L1, Redis L2 and the SSE streams.
///
/// `observe` runs on the MQTT subscriber thread for every message (before it is durable) and
/// `apply_polled` on the poller thread: each applies the signals to L1, and for the ones that
/// changed it queues a Redis write, publishes a `signal_change` event at once, and marks the
/// vehicle for the next `vehicle_update` (one per vehicle per interval, from the coalescer
/// thread). Alerts and connectivity events are published as `alert` and `connectivity` events.
/// With a Redis bus, every event also goes to the other replicas, which publish it to their own
/// SSE clients and apply signal changes to their L1 (their mirror is not written again).
///
/// Catching up after a Redis outage (with both a mirror and a bus): events published while the
/// bus was down are lost (pub/sub keeps no backlog), so a replica re-reads L2 into its L1 (and
/// publishes what changed to its own SSE clients) whenever its bus subscription is established
/// again, and whenever another replica announces (`l2_synced` on the bus) that its mirror has
/// written its backlog into a Redis it reconnected to. One of the two comes after the other
/// replicas' outage changes have landed in Redis, so every replica's L1 converges.
/// Thread-safe; nothing here blocks on I/O except the coalescer thread's L2 re-reads.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http/sse.hpp"
#include "state/redis/pubsub.hpp"
#include "state/redis/redis_mirror.hpp"
#include "state/store.hpp"
#include "storage/database.hpp"

namespace ts::api {

inline constexpr std::string_view kEventsChannel = "teslasync:events";
/// Bus-only event type: the sender's mirror has written its backlog into Redis after
/// (re)connecting; the receivers re-read L2. Never sent to SSE clients.
inline constexpr std::string_view kL2SyncedEvent = "l2_synced";

class Live {
 public:
  Live(state::Store& store, state::redis::RedisMirror* mirror, std::shared_ptr<http::EventHub> hub,
       state::redis::PubSub* bus, std::chrono::milliseconds update_interval);
  ~Live();  ///< stop()

  /// Subscribes to the bus (before bus->start()) and starts the coalescer thread.
  void start();
  void stop();

  /// The records of one MQTT message (subscriber thread).
  void observe(const storage::Batch& records);
  /// Signals from a Fleet API poll (poller thread).
  void apply_polled(std::span<const signal::Signal> signals);

  /// SSE snapshot events: every vehicle (`vin` empty) or one.
  std::vector<http::Event> snapshot(std::string_view vin) const;

 private:
  void apply(std::span<const signal::Signal> signals, bool mirror);
  void publish(http::Event event, bool to_bus);
  void publish(std::span<http::Event> events, bool to_bus);  // one hub batch: one wake-up
  void on_bus_message(std::string_view payload);
  void coalescer_loop();
  /// Coalescer thread: the L2 catch-up described above.
  void sync_with_l2();
  void refresh_from_l2();

  state::Store& store_;
  state::redis::RedisMirror* mirror_;
  std::shared_ptr<http::EventHub> hub_;
  state::redis::PubSub* bus_;
  const std::chrono::milliseconds update_interval_;

  std::mutex mutex_;  // guards dirty_, stopping_
  std::condition_variable cv_;
  // vin -> signals applied since its last vehicle_update, in order (vin left empty)
  std::unordered_map<std::string, std::vector<signal::Signal>> dirty_;
  bool stopping_ = false;
  std::thread coalescer_;

  std::atomic<bool> l2_refresh_requested_{false};  // another replica sent kL2SyncedEvent
  // coalescer thread only
  std::uint64_t seen_subscriptions_ = 0;
  std::uint64_t seen_mirror_connects_ = 0;
  bool l2_refresh_due_ = false;
  bool l2_announce_due_ = false;
};

}  // namespace ts::api

#pragma once
/// Redis pub/sub between API replicas (live events for SSE): publish(channel, payload) and
/// subscribe(channel, handler).
///
/// Threads: two, each with its own hiredis connection: the publisher (start() .. stop()) sends
/// what publish() queued, pipelined; the subscriber holds the SUBSCRIBE connection and calls
/// the handlers. publish() and subscribe() may be called from any thread and never block on
/// Redis; handlers run on the subscriber thread, one message at a time, in arrival order per
/// connection, and must return quickly (post the work elsewhere) and not throw (an exception is
/// caught, logged and counted as an error).
///
/// Delivery is best-effort, as live events are only worth something while fresh: a message
/// published while the publisher's connection is down, or beyond `max_queued`, is dropped and
/// counted (`teslasync_redis_pubsub_dropped_total{reason}`); messages published while a
/// subscriber is disconnected never reach it (Redis keeps no backlog). Consumers that need
/// completeness re-read the state (L1/L2) after a reconnect; subscriptions() tells them when
/// that happened.
///
/// Wire format on the channel: `<origin> <payload>`, origin = 16 lowercase hex digits that
/// identify this PubSub instance, so that an instance can skip its own messages
/// (PubSubOptions::deliver_own = false: the publishing replica has delivered them locally
/// already). A message without that prefix (e.g. from redis-cli) is delivered whole.
///
/// Failure: both threads reconnect forever with back-off (100 ms doubling up to max_backoff);
/// the subscriber subscribes again to every channel after each reconnect; while idle each
/// thread PINGs every health_interval so that a dead connection is noticed. Every Redis call is
/// bounded by RedisConfig's timeouts. `teslasync_redis_up{client="publisher"|"subscriber"}`, a
/// warning once per outage, an info line when it ends.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/metrics.hpp"
#include "state/redis/redis_config.hpp"

namespace ts::state::redis {

struct PubSubOptions {
  /// Messages waiting for the publisher thread; beyond this publish() drops.
  std::size_t max_queued = 10'000;
  /// Deliver this instance's own messages to its subscribers too.
  bool deliver_own = false;
  std::chrono::milliseconds max_backoff{5'000};
  std::chrono::milliseconds health_interval{1'000};
};

struct PubSubStats {
  std::uint64_t published = 0;       ///< messages Redis accepted
  std::uint64_t dropped = 0;         ///< messages not published (down, queue full, connection lost)
  std::uint64_t received = 0;        ///< messages delivered to handlers
  std::uint64_t subscriptions = 0;   ///< SUBSCRIBE confirmations, per channel, over all reconnects
  std::uint64_t handler_errors = 0;  ///< handler calls that threw
};

class PubSub {
 public:
  using Handler = std::function<void(std::string_view channel, std::string_view payload)>;

  /// Registers the metrics; does not connect.
  PubSub(RedisConfig config, PubSubOptions options, core::MetricsRegistry& metrics);
  /// stop().
  ~PubSub();

  PubSub(const PubSub&) = delete;
  PubSub& operator=(const PubSub&) = delete;

  /// Adds a handler for `channel` (exact name, no patterns). Before or after start(); several
  /// handlers per channel are called in the order they were added.
  void subscribe(std::string channel, Handler handler);

  /// Starts both threads. Once.
  void start();

  /// Joins both threads (bounded: one command or connect timeout); queued messages are
  /// dropped. Idempotent; any thread but the PubSub's own (not from a handler).
  void stop();

  /// Queues a message; false when it was dropped (see the class comment). Never blocks.
  bool publish(std::string_view channel, std::string_view payload);

  bool publisher_connected() const;
  /// True while the subscriber connection is up and every channel subscribed so far is confirmed.
  bool subscribed() const;

  /// This instance's origin id (the prefix of its messages).
  const std::string& origin() const;

  PubSubStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ts::state::redis

#pragma once
/// Server-Sent Events: the EventHub that events are published to, and the pieces a Router route
/// needs to become an SSE stream (SseRoute, StreamOptions).
///
/// Flow: any thread calls `EventHub::publish(Event)`. The hub gives the event the next id, encodes
/// its wire bytes once into a shared immutable buffer, keeps it in a bounded replay ring, and hands
/// the same buffer to each io_context (shard) that has streams: one post per shard per batch, never
/// one per client. On its shard, each stream session queues the buffer in its own bounded queue;
/// after each batch the queue goes out with one non-blocking writev (or through the session's
/// writer when the socket is full). A session whose queue overflows is sent a final `disconnect`
/// event (data {"reason":"slow_consumer"}) and closed. Publishing never waits for a client.
///
/// A stream (see `Router::stream`) starts with a `retry:` hint, then either the events missed since
/// `Last-Event-ID` (header, or `last_event_id` query parameter for the first EventSource connect)
/// when they are all still in the ring, or else a fresh snapshot from the route's callback, followed
/// by an `id:` line that positions the browser's lastEventId; then live events, heartbeats while
/// idle, and on server stop an `event: shutdown` before the connection closes.
#include <boost/asio/any_io_executor.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/metrics.hpp"
#include "http/request.hpp"

namespace ts::http {

/// One event as published. `type` must not contain CR or LF (they are replaced by spaces).
struct Event {
  std::string type;  ///< SSE `event:` field; "" = the default "message" type
  std::string data;  ///< payload, usually JSON; each line becomes one `data:` line
  std::string key;   ///< routing key (e.g. a VIN); "" = not keyed (only all-event streams get it)
};

/// An event's wire bytes, shared by every client it is sent to. Immutable once built.
struct EncodedEvent {
  std::uint64_t id = 0;  ///< hub id; 0 for stream-local frames (snapshot, heartbeat, control)
  std::string key;
  std::string bytes;     ///< complete SSE block, ending in a blank line
  bool control = false;  ///< response header, heartbeat, `id:` marker: not counted as sent events
};
using EncodedEventPtr = std::shared_ptr<const EncodedEvent>;

/// The SSE block for `event` (with an `id:` line when `id` is given), e.g.
/// "id: 7\nevent: signal_change\ndata: {…}\n\n". Lines of `data` (split at CRLF, CR or LF) each
/// get their own `data:` line; an empty `data` still sends one `data:` line so the event fires.
std::string encode_event(const Event& event, std::optional<std::uint64_t> id = std::nullopt);
/// encode_event without an id line, appended to `out`.
void append_event(std::string& out, const Event& event);

struct EventHubOptions {
  std::size_t replay_max_events = 4096;       ///< replay ring: at most this many events…
  std::size_t replay_max_bytes = 8u << 20;    ///< …and this many encoded bytes
  /// Id of the first event. 0 = derive from the wall clock (Unix ms × 1000), so the ids of a
  /// restarted process start above those of the previous one and an old Last-Event-ID is never
  /// mistaken for a recent one (it gets a snapshot instead).
  std::uint64_t first_id = 0;
};

/// Per-stream behaviour, set once per Server (ServerOptions::sse).
struct StreamOptions {
  std::chrono::milliseconds heartbeat{15'000};  ///< sent after this long without any write
  /// false: a comment line (": heartbeat"), invisible to EventSource; true: `event: heartbeat`
  /// with data {"time":"<RFC 3339 UTC>"} for clients that watch for it.
  bool heartbeat_event = false;
  std::chrono::milliseconds retry{3'000};  ///< `retry:` reconnect hint; 0 = none sent
  std::size_t client_max_events = 1024;    ///< per-client queue (not yet written) in events…
  std::size_t client_max_bytes = 1u << 20;  ///< …and in bytes; exceeding either = slow consumer
  /// A write that makes no progress for this long ends the stream (dead or stuck peer).
  std::chrono::milliseconds write_timeout{30'000};
  /// How long a closing stream (slow consumer, server stop) may take to write what it still owes
  /// (the final `disconnect`/`shutdown` event) before the socket is closed anyway.
  std::chrono::milliseconds close_grace{2'000};
};

/// Counters of one hub (names in docs/metrics.md). Relaxed atomics; any thread.
struct SseMetrics {
  explicit SseMetrics(core::MetricsRegistry& m);
  core::Gauge& clients;
  core::Counter& published;
  core::Counter& sent;
  core::Counter& slow_disconnects;
  core::Counter& replays;
  core::Counter& resume_misses;
};

/// The fan-out point for one kind of stream (one per process is typical; several are fine).
///
/// Thread-safety: `publish`, `last_id` and `metrics` from any thread. `attach`/`detach` are for
/// http::Server's stream sessions and run on the session's executor. `publish` takes a short
/// internal mutex (never held across I/O, a client, or a callback) and posts at most one drain per
/// shard; it never blocks on a client. Owned by shared_ptr: routes and live sessions keep it alive.
class EventHub {
 public:
  EventHub(core::MetricsRegistry& metrics, EventHubOptions options = {});
  ~EventHub();
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  /// Assigns the next id, stores the event for replay and fans it out. Returns the id.
  std::uint64_t publish(Event event);
  /// publish() for several events at once, with consecutive ids in order: one lock and at most
  /// one wake-up per io_context for the lot (a record's signals), instead of one per event.
  /// Returns the id of the last (last_id() when `events` is empty).
  std::uint64_t publish(std::span<Event> events);
  /// The id of the newest published event (first_id - 1 before the first).
  std::uint64_t last_id() const;
  SseMetrics& metrics() { return metrics_; }

  // ---- For http::Server's stream sessions (not needed by publishers) ----

  /// Receives encoded events on the executor it attached with, in id order. The shard hands
  /// over events in batches: `deliver` for each event (true = "call my flush() after this
  /// batch", at most once per batch), then `flush` for those that asked, so a subscriber can
  /// write a whole batch with one system call. Neither may detach.
  class Subscriber {
   public:
    virtual bool deliver(const EncodedEventPtr& event) = 0;
    virtual void flush() = 0;

   protected:
    ~Subscriber() = default;
  };
  struct Attached {
    bool resumed = false;     ///< Last-Event-ID was honoured; `replay` holds what was missed
    std::uint64_t position = 0;  ///< newest id covered; later deliveries with id <= it are stale
    std::vector<EncodedEventPtr> replay;  ///< missed events matching the key, in order
  };
  /// Registers `subscriber` for events with `key` ("" = all) on `executor` and reports where it
  /// starts: after `last_event_id` if every event after it is still in the ring (or there are
  /// none), else at the newest event with resumed = false (the caller sends a snapshot).
  /// On the executor's thread.
  Attached attach(Subscriber& subscriber, const boost::asio::any_io_executor& executor,
                  const std::string& key, std::optional<std::uint64_t> last_event_id);
  /// Undoes attach; on the same executor's thread. Events already queued for it are discarded.
  void detach(Subscriber& subscriber, const boost::asio::any_io_executor& executor,
              const std::string& key);
  /// Logs a slow-consumer disconnect (rate-limited) and counts it.
  void note_slow_disconnect(const std::string& remote);

 private:
  struct Shard;

  EventHubOptions options_;
  SseMetrics metrics_;
  mutable std::mutex mutex_;  // guards next_id_, ring_, ring_bytes_, shards_, Shard::subscribers
  std::uint64_t next_id_;
  std::deque<EncodedEventPtr> ring_;
  std::size_t ring_bytes_ = 0;
  std::vector<std::shared_ptr<Shard>> shards_;
  std::atomic<std::int64_t> last_slow_log_ms_{0};
  std::atomic<std::uint64_t> slow_unlogged_{0};
};

/// What the route's snapshot callback returns: events describing current state, sent (without
/// ids) to a stream that starts fresh or whose Last-Event-ID is too old to replay.
using Snapshot = std::function<std::vector<Event>(const Request&)>;
/// Chooses a stream's key from the request ("" = all events), e.g. the `{vin}` parameter. May
/// throw http::Error (e.g. errc::not_found for an unknown VIN) to answer with an error instead.
using StreamKey = std::function<std::string(const Request&)>;

/// Makes a GET route an SSE stream (see Router::stream).
struct SseRoute {
  std::shared_ptr<EventHub> hub;  ///< required
  StreamKey key;                  ///< null = every event
  Snapshot snapshot;              ///< null = no snapshot (the stream still gets its `id:` line)
};

/// Parses the Last-Event-ID a client resumes from: the `Last-Event-ID` header (EventSource sets it
/// on reconnects), else the `last_event_id` query parameter (EventSource cannot set headers on
/// its first connect). Non-numeric values count as absent.
std::optional<std::uint64_t> last_event_id(const Request& request);

}  // namespace ts::http

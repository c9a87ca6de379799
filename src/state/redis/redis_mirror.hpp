#pragma once
/// L2: copies L1 changes into Redis, one hash per vehicle (layout in codec.hpp), and reads it
/// all back for a warm start.
///
/// Threads: the mirror owns one thread (start() .. stop()) with its own hiredis connection;
/// enqueue(), pending(), connected(), stats() may be called from any thread and never block on
/// Redis. load_all() runs on the caller's thread with a connection of its own (start-up).
///
/// Writes: enqueued changes go into a pending set that keeps only the latest value per (VIN,
/// signal) by the Store's rule, so while Redis is down memory stays bounded by the size of the
/// state and nothing newer is lost. The thread takes whole vehicles from it and writes them with
/// one pipelined round trip per batch: per vehicle an EVALSHA of a Lua script that sets a field
/// only if the hash does not hold a newer one ((ts, received_at) compared, as in L1), then
/// PEXPIREs the key (RedisMirrorOptions::ttl). Several replicas can write the same vehicle
/// concurrently; the newest value wins in Redis whatever the order of arrival. NOSCRIPT (script
/// cache flushed) loads the script again and retries.
///
/// Failure: Redis down, unreachable or timing out (every call is bounded by RedisConfig's
/// timeouts) never reaches the caller: the batch in flight goes back into the pending set, the
/// thread reconnects with back-off (100 ms doubling up to max_backoff), `teslasync_redis_up`
/// drops to 0, one warning is logged per outage and one info line when Redis is back, and
/// `teslasync_redis_mirror_pending` shows the backlog until it has been written. When it
/// reconnects to a Redis that is not the one it last synced with (another run_id: Redis
/// restarted and may have lost its data, or was down when load_all() ran), it copies the whole
/// of `resync_from` (L1) into it. Error replies that retrying cannot fix (WRONGTYPE, script
/// errors) drop that vehicle's batch, counted in `teslasync_redis_mirror_errors_total`.
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/metrics.hpp"
#include "core/result.hpp"
#include "signal/signal.hpp"
#include "state/mirror.hpp"
#include "state/redis/codec.hpp"
#include "state/redis/redis_config.hpp"
#include "state/store.hpp"

namespace ts::state::redis {

struct RedisMirrorOptions {
  std::string key_prefix{kDefaultKeyPrefix};
  /// A vehicle's hash expires this long after its last landed write; 0 = never.
  std::chrono::milliseconds ttl = std::chrono::hours(24 * 7);
  /// Signals taken from the pending set per pipelined round trip (whole vehicles).
  std::size_t max_batch_signals = 4096;
  /// L1's bound on event times ahead of their receive time (store.hpp), applied by the script.
  std::chrono::microseconds max_future_skew = kDefaultMaxFutureSkew;
  /// Fields per EVALSHA (a vehicle with more is split).
  std::size_t max_fields_per_call = 256;
  /// Reconnect back-off cap.
  std::chrono::milliseconds max_backoff{5'000};
  /// While idle the thread PINGs this often, so teslasync_redis_up follows an outage promptly.
  std::chrono::milliseconds health_interval{1'000};
  /// L1, copied in full into a Redis this mirror has not synced with (see the class comment);
  /// null: never. Must outlive the mirror.
  const Store* resync_from = nullptr;
};

/// Totals since construction (the same numbers as the metrics), readable from any thread.
struct RedisMirrorStats {
  std::uint64_t written = 0;           ///< fields that landed
  std::uint64_t stale = 0;             ///< fields Redis already held newer (not written)
  std::uint64_t errors = 0;            ///< fields dropped on an error reply retrying cannot fix
  std::uint64_t resyncs = 0;           ///< full copies of L1 into a new Redis
  std::uint64_t connects = 0;          ///< connections established
  std::uint64_t connect_failures = 0;  ///< attempts that failed
};

class RedisMirror final : public Mirror {
 public:
  /// Registers the metrics; does not connect. Throws std::invalid_argument for options out of
  /// range (zero batch sizes, more than 1000 fields per call).
  RedisMirror(RedisConfig config, RedisMirrorOptions options, core::MetricsRegistry& metrics);
  /// stop() with the default grace.
  ~RedisMirror() override;

  RedisMirror(const RedisMirror&) = delete;
  RedisMirror& operator=(const RedisMirror&) = delete;

  /// Blocking: every signal stored under the key prefix (SCAN + HGETALL), for Store::load().
  /// Fields that do not parse are skipped and logged. Errors: errc::connect_failed,
  /// auth_failed, io_error, bad_reply; the caller then starts warm from signal_log. Success
  /// marks this Redis (its run_id) as synced, so start() does not copy L1 back into it.
  Result<std::vector<signal::Signal>> load_all();

  /// load_all() without marking this Redis as synced: for re-reading L2 while running (another
  /// replica's changes that this process missed), which must not stop the mirror from copying
  /// L1 into a Redis it has not synced with. Any thread; blocking, on a connection of its own.
  Result<std::vector<signal::Signal>> read_all();

  /// Starts the thread and the first (asynchronous) connection attempt. Once.
  void start();

  /// Stops accepting new work, writes what is pending for up to `grace` while Redis is
  /// reachable, then joins the thread (bounded by grace plus one command timeout). Whatever is
  /// still pending is lost (it is in signal_log). Idempotent; any thread but the mirror's.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(2));

  void enqueue(const signal::Signal& s) override;
  void enqueue(std::span<const signal::Signal> signals) override;
  std::size_t pending() const override;

  /// True while the mirror's connection is up.
  bool connected() const;

  /// Waits (bounded) until nothing is pending; true if that happened before `timeout`.
  bool wait_idle(std::chrono::milliseconds timeout) const;

  RedisMirrorStats stats() const;

 private:
  struct Impl;
  Result<std::vector<signal::Signal>> read(bool mark_synced);

  std::unique_ptr<Impl> impl_;
};

}  // namespace ts::state::redis

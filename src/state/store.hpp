#pragma once
/// L1: the latest value of every signal of every vehicle, in memory (see README.md).
///
/// Ownership and threads: one Store per process, owned by main() (teslasync-api) and shared by
/// reference. Every method may be called from any thread. The state is split into shards by
/// hash(VIN), each guarded by its own mutex; a call locks one shard at a time and never blocks
/// on anything else (no I/O), so it is safe on an event-loop thread.
///
/// Rule for "latest" (the same in apply, apply_batch and load, in the Redis mirror's Lua script,
/// and in signal_log, so that all three agree after a restart):
/// - An event time more than `max_future_skew` (default 5 minutes) ahead of the signal's receive
///   time never becomes "latest" (Applied::Future): a vehicle clock glitch or a forged time would
///   otherwise freeze the live value until that date. signal_log still stores the row with its
///   claimed time; the vehicle's clock() counts it for diagnostics.
/// - Otherwise a signal replaces what is held for its (VIN, name) when its event time `ts` is
///   newer; an older one is rejected (Applied::Older).
/// - At the same event time, an equal value changes nothing (Applied::Same: a replayed or
///   duplicated message) and a different value is rejected (Applied::Conflict, counted): the first
///   value stored for an event time wins, as in signal_log, whose key (series, ts) keeps the first.
/// Values of kind Invalid are stored like any other: the vehicle reported "no value" at `ts`.
///
/// Memory: an entry takes 40 bytes plus its text when the text is longer than 16 bytes and not
/// interned; signal names and enum/doors/tires values are interned per shard (bench/state/).
///
/// Failure: nothing fails; allocation failure throws std::bad_alloc as any container would.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/metrics.hpp"
#include "signal/signal.hpp"

namespace ts::state {

/// The latest value of one signal of one vehicle.
struct Entry {
  signal::Value value;
  signal::Timestamp ts = 0;           ///< event time
  signal::Timestamp received_at = 0;  ///< when teslasync-api received it
  signal::Source source = signal::Source::Stream;

  friend bool operator==(const Entry&, const Entry&) = default;
};

/// What apply() did with a signal.
enum class Applied : std::uint8_t {
  Newer,     ///< stored: a new vehicle or signal, or a newer event time
  Same,      ///< same event time and same value as held: nothing changed
  Older,     ///< rejected: the store holds a newer value
  Future,    ///< rejected: the event time is too far ahead of the receive time
  Conflict,  ///< rejected: same event time as held, different value (the first one stays)
};

/// "newer", "same", "older", "future", "conflict" (the metric label).
std::string_view applied_name(Applied applied) noexcept;

/// The default bound of the rule above.
inline constexpr std::chrono::microseconds kDefaultMaxFutureSkew = std::chrono::minutes(5);

/// Counts of what load() did.
struct LoadResult {
  std::size_t newer = 0;
  std::size_t same = 0;
  std::size_t older = 0;
  std::size_t future = 0;
  std::size_t conflict = 0;
};

/// What the rule above refused for one vehicle since start (its diagnostics show it).
struct VehicleClock {
  std::uint64_t future_signals = 0;        ///< Applied::Future
  signal::Timestamp last_future_ts = 0;    ///< the event time the last one claimed
  signal::Timestamp last_future_received_at = 0;
  std::uint64_t same_time_conflicts = 0;   ///< Applied::Conflict

  friend bool operator==(const VehicleClock&, const VehicleClock&) = default;
};

class Store {
 public:
  static constexpr std::size_t kDefaultShards = 16;

  /// A store without metrics (tests, and the Redis mirror's pending set).
  explicit Store(std::size_t shards = kDefaultShards,
                 std::chrono::microseconds max_future_skew = kDefaultMaxFutureSkew);
  /// A store that keeps `teslasync_state_vehicles`, `teslasync_state_signals` and
  /// `teslasync_state_apply_total{result}` in `metrics`, which must outlive it.
  explicit Store(core::MetricsRegistry& metrics, std::size_t shards = kDefaultShards,
                 std::chrono::microseconds max_future_skew = kDefaultMaxFutureSkew);
  ~Store();

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// Applies one signal by the rule above. Newer means "changed": forward it (Redis, SSE).
  Applied apply(const signal::Signal& s);

  /// apply() for each signal, in order; result i belongs to signals[i]. Locks each shard once
  /// per run of signals that fall into it, so a batch of one vehicle's fields takes one lock.
  std::vector<Applied> apply_batch(std::span<const signal::Signal> signals);

  /// Warm start (from Redis or signal_log): the same rule as apply(), without counting the
  /// signals as ingested updates. May be called while other threads apply().
  LoadResult load(std::span<const signal::Signal> signals);

  /// The entry for one signal of one vehicle.
  std::optional<Entry> get(std::string_view vin, std::string_view name) const;

  /// Every signal held for `vin`, sorted by name (bytewise); empty for an unknown VIN.
  std::vector<std::pair<std::string, Entry>> snapshot(std::string_view vin) const;

  /// Every VIN held, sorted.
  std::vector<std::string> vins() const;

  std::size_t vehicle_count() const noexcept;
  std::size_t signal_count() const noexcept;

  /// What the rule refused for `vin` (future event times, same-time conflicts); zeros for an
  /// unknown VIN.
  VehicleClock clock(std::string_view vin) const;

  /// The newest event time held for `vin`; empty for an unknown VIN.
  std::optional<signal::Timestamp> last_event(std::string_view vin) const;

  /// When a signal for `vin` was last received (whatever apply() made of it: replays count,
  /// they show the pipeline delivers), optionally only signals from `source` (the polling
  /// fallback asks for Source::Stream so that its own results do not hide a silent stream).
  /// Empty for an unknown VIN or when nothing came from that source.
  std::optional<signal::Timestamp> last_received(
      std::string_view vin, std::optional<signal::Source> source = std::nullopt) const;

  /// Calls f with every entry as a Signal. Copies one shard at a time under its lock and calls
  /// f without any lock held, so f may call back into the store; entries applied meanwhile may
  /// or may not be seen.
  void for_each(const std::function<void(const signal::Signal&)>& f) const;

  /// Removes whole vehicles, shard by shard in rotation, until at least `max_signals` signals
  /// (or everything) were taken, and returns their signals grouped by vehicle. The result may
  /// exceed `max_signals` by one vehicle's signals. Used by the Redis mirror's pending set.
  std::vector<signal::Signal> drain(std::size_t max_signals);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ts::state

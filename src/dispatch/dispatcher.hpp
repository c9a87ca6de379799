#pragma once
/// A dispatcher ("producer", spec §8) hands records to one backend.
///
/// Implementations are created once at start-up by main() and shared by every shard; `dispatch`
/// is called from any shard's thread and must be thread-safe. It never throws: failures are
/// counted and logged by the dispatcher and reported as `false`.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <string_view>

#include "pipeline/record.hpp"

namespace ts::dispatch {

class Dispatcher {
 public:
  virtual ~Dispatcher() = default;

  /// The name used in the `records` config (`mqtt`, `logger`, ...).
  virtual std::string_view name() const = 0;

  /// Delivers one record; completes on the caller's executor when the backend confirmed
  /// delivery (true) or it failed or timed out (false). spec §4: the session awaits this before
  /// it acknowledges, as the reference's synchronous producers do; spec §5: with a reliable-ack
  /// source, only `true` from that dispatcher triggers the ACK.
  virtual boost::asio::awaitable<bool> dispatch(const pipeline::Record& record) = 0;

  /// Fire-and-forget delivery for records nobody waits for (server-generated connectivity
  /// events, spec §7.5). Any thread.
  virtual void dispatch_detached(const pipeline::Record& record) = 0;

  /// Two-phase shutdown, second phase: flush what is in flight (bounded by `grace`), then close
  /// the backend connection. Called once, from main(), after the listeners stopped.
  virtual void shutdown(std::chrono::milliseconds grace) = 0;

  /// Whether the backend is currently reachable (for logs, `/status` and readiness).
  virtual bool connected() const = 0;
};

}  // namespace ts::dispatch

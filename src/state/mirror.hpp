#pragma once
/// Mirror: where changes of the in-memory state (L1, state::Store) are copied to, so that other
/// API replicas and the next start see them. Implementation: redis/redis_mirror.hpp (L2).
///
/// Contract for implementations: enqueue never blocks on I/O and never fails (it may be called
/// on an event-loop thread, from any thread); what it accepts is written later, in the
/// background, keeping only the latest value per (VIN, signal) by the store's rule, so that an
/// outage of the backend costs memory bounded by the size of the state and loses nothing newer.
#include <cstddef>
#include <span>

#include "signal/signal.hpp"

namespace ts::state {

class Mirror {
 public:
  virtual ~Mirror() = default;

  /// Queues a change (normally a signal that Store::apply reported as Newer).
  virtual void enqueue(const signal::Signal& s) = 0;
  virtual void enqueue(std::span<const signal::Signal> signals) = 0;

  /// Changes accepted and not yet written (coalesced per VIN and signal).
  virtual std::size_t pending() const = 0;
};

}  // namespace ts::state

#pragma once
/// The simulated fleet: resolves the server once, spreads the vehicles over `threads` shards
/// (vehicle i on shard i % T, one io_context and thread each), runs them until the duration is
/// over, and merges their counters and latency histograms into one `RunReport`. The main thread
/// meanwhile handles SIGINT/SIGTERM (first: stop and close cleanly; second: close sockets now)
/// and logs a progress line every `progress_interval_s`.
///
/// Owned by the `run` command on the main thread. `run()` blocks; it throws std::runtime_error
/// before any vehicle starts if the server name does not resolve.
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "sim/cert_dir.hpp"
#include "sim/report.hpp"
#include "sim/run_config.hpp"
#include "sim/shard.hpp"

namespace ts::vehicle_sim {

struct FleetResult {
  RunReport report;
  std::optional<ConnectError> first_connect_error;  ///< the earliest, over all shards
  std::size_t not_started = 0;  ///< vehicles the ramp had not reached when the run ended
};

class Fleet {
 public:
  Fleet(RunConfig config, CertDir certs, std::vector<VehicleIdentity> identities);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  FleetResult run();

 private:
  /// Builds the plan's TLS contexts with every core, before the clock starts.
  void prepare_tls_contexts();

  RunPlan plan_;
  std::vector<VehicleIdentity> identities_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

/// Sums the shards' counters and histograms (after their threads have joined). `start` is when
/// the first vehicle was due to connect; the duration ends at the latest `stopped_at`.
FleetResult merge_shard_stats(std::span<const ShardStats* const> shards, std::size_t vehicles,
                              Clock::time_point start);

}  // namespace ts::vehicle_sim

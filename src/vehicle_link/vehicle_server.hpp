#pragma once
/// The vehicle-facing mTLS WebSocket server (spec §2): one SO_REUSEPORT acceptor per shard; a
/// connection lives on the shard that accepted it, as one coroutine (no locks, no strands).
///
/// Owned by main(). `start` binds (throws with the address on failure); `shutdown_input` stops
/// accepting; `close_sessions` asks every session to finish its current frame and close, and
/// waits (bounded) until they are gone. Dispatchers are borrowed and must outlive the server.
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/metrics.hpp"
#include "dispatch/dispatcher.hpp"
#include "pipeline/process.hpp"
#include "runtime/shard_pool.hpp"

namespace ts::vehicle_link {

struct RateLimitOptions {
  bool enabled = false;
  std::size_t message_limit = 100;                       ///< spec §6 default when disabled
  std::chrono::steady_clock::duration interval = std::chrono::seconds(60);
};

struct LinkOptions {
  std::string host;  ///< "" = all interfaces
  std::uint16_t port = 0;
  pipeline::PipelineOptions pipeline;
  /// record type -> dispatchers in configured order (spec §8.1)
  std::map<std::string, std::vector<dispatch::Dispatcher*>> routes;
  /// record type -> the dispatcher whose success triggers the ACK (spec §5)
  std::map<std::string, dispatch::Dispatcher*> reliable_ack_sources;
  RateLimitOptions rate_limit;
  std::vector<std::string> tracked_vins;  ///< vins_signal_tracking_enabled
  bool suppress_tls_handshake_error_logging = false;
  std::chrono::seconds handshake_timeout{10};
  std::chrono::seconds write_timeout{10};  ///< spec §2.5: 10 s write deadline per message
  /// After a TLS 1.3 handshake, run the connection on runtime::Tls13Records and free its OpenSSL
  /// SSL object (~23 KB per vehicle); false = OpenSSL for the connection's life.
  bool tls_native_records = true;
  /// Messages larger than this end the connection; up to it, spec §4's 1,000,000-byte rule
  /// answers with ERROR and keeps the connection (docs/compatibility.md). A session buffers at
  /// most wire::kMaxFrameBytes of a message: the rest of a larger one is read and dropped, and
  /// a buffer grown past 64 KiB is freed after its message.
  std::size_t max_message_bytes = 8 * 1024 * 1024;
  /// Open sessions one certificate identity (device_id) may hold; a further connection is
  /// closed after the upgrade with close code 1013 (extension, docs/config.md).
  std::size_t max_connections_per_identity = 4;
};

class VehicleServer {
 public:
  VehicleServer(runtime::ShardPool& shards, boost::asio::ssl::context& tls, LinkOptions options,
                core::MetricsRegistry& metrics);
  ~VehicleServer();

  void start();
  std::uint16_t port() const;
  std::int64_t connections() const;
  /// TLS handshakes started so far (each allocates and frees ~40 KB; see telemetry-server's
  /// memory trim).
  std::uint64_t handshakes() const;
  /// Sum of the sessions' read-buffer capacities (bytes), read on each shard; blocks until
  /// every shard answered, so never call it from a shard thread.
  std::size_t read_buffer_capacity_for_test();

  void shutdown_input();
  /// Returns true when every session ended before the deadline.
  bool close_sessions(std::chrono::milliseconds deadline);

 private:
  struct Shared;
  struct ShardState;
  std::shared_ptr<Shared> shared_;
  std::vector<std::shared_ptr<ShardState>> shards_;
};

}  // namespace ts::vehicle_link

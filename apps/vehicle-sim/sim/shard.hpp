#pragma once
/// One thread of the simulator: an io_context, the vehicles assigned to it and
/// their counters (STYLE.md "Concurrency": a connection lives on one io_context, so nothing inside
/// a shard needs a lock). The `Fleet` owns the shards; each shard's `run()` is the body of its
/// thread. Only `request_stop()` and the atomic counters may be touched from other threads.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/metrics.hpp"
#include "sim/cert_dir.hpp"
#include "sim/latency_histogram.hpp"
#include "sim/run_config.hpp"

namespace ts::vehicle_sim {

class Vehicle;

using Clock = std::chrono::steady_clock;

/// Everything the shards share, fixed before their threads start and never changed after.
struct RunPlan {
  RunConfig config;
  CertDir certs;
  boost::asio::ip::tcp::resolver::results_type endpoints;
  std::string host_header;      ///< Host of the upgrade request: "host:port" ("[v6]:port")
  Clock::time_point start;      ///< vehicle i connects at start + i / connect_rate
  Clock::time_point deadline;   ///< start + duration: vehicles stop sending and close
  Clock::time_point measure_from;  ///< start + warmup: acks of records sent earlier are not timed
  std::uint64_t run_nonce = 0;  ///< makes X-TXID differ between runs
  /// One client context per certificate in use (index = cert index), built before the clock
  /// starts; null where the certificate did not load, with the reason in tls_errors. Shared by
  /// all shards: OpenSSL allows concurrent SSL_new on an SSL_CTX nobody modifies.
  std::vector<std::unique_ptr<boost::asio::ssl::context>> tls_contexts;
  std::vector<std::string> tls_errors;
};

/// Why a vehicle never got connected.
struct ConnectError {
  Clock::time_point at;
  std::size_t vehicle = 0;
  std::string vin;
  std::string message;  ///< "TLS handshake with 127.0.0.1:4443: certificate verify failed …"
};

/// A shard's counters. The atomics are written by the shard thread and read by the progress
/// logger on the main thread; everything else is read only after the shard thread has joined.
struct ShardStats {
  core::Counter sent;
  core::Counter acked;
  core::Counter error_replies;
  core::Counter bad_replies;
  core::Counter connected;
  core::Counter connect_failures;
  core::Counter disconnects;
  core::Counter unacked;
  LatencyHistogram ack_latency;
  std::optional<ConnectError> first_connect_error;
  std::optional<Clock::time_point> stopped_at;  ///< when vehicles were told to stop sending
  std::size_t not_started = 0;  ///< vehicles never launched (the run ended during the ramp)
};

class Shard {
 public:
  Shard(std::size_t index, const RunPlan& plan);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  /// Before run(): gives this shard a vehicle.
  void add_vehicle(const VehicleIdentity& identity);

  /// The thread body: launches the vehicles at their connect times, stops them at the deadline,
  /// gives them `close_grace_s` to close cleanly, then forces what is left closed. Returns when
  /// every vehicle is done. Exceptions escaping a vehicle are logged and counted as disconnects.
  void run();

  /// Any thread: stop sending now and close (a second call forces the sockets closed).
  void request_stop();

  // For the shard's vehicles (shard thread only).
  ShardStats& stats() { return stats_; }
  const RunPlan& plan() const { return plan_; }
  boost::asio::io_context::executor_type executor() { return io_.get_executor(); }
  std::size_t index() const { return index_; }
  /// The TLS client context of a certificate (from the plan); nullptr with `error` set if it did
  /// not load.
  boost::asio::ssl::context* tls_context(std::size_t cert_index, std::string& error) const;
  void record_connect_error(ConnectError error);
  /// Budget for per-event warnings so 10,000 failing vehicles do not flood stderr.
  bool should_log_warning();

 private:
  boost::asio::awaitable<void> launch_vehicles();
  boost::asio::awaitable<void> watch_deadline();
  void begin_stop();
  void on_vehicle_done();

  std::size_t index_;
  const RunPlan& plan_;
  boost::asio::io_context io_{1};  // first member: outlives the sockets and timers below
  ShardStats stats_;
  std::vector<std::unique_ptr<Vehicle>> vehicles_;
  boost::asio::steady_timer launch_timer_{io_};
  boost::asio::steady_timer deadline_timer_{io_};
  std::size_t launched_ = 0;
  std::size_t active_ = 0;
  bool launch_done_ = false;
  bool stopping_ = false;
  int stop_requests_ = 0;
  int warnings_left_ = 20;
};

}  // namespace ts::vehicle_sim

#pragma once
/// One simulated vehicle: one connection to the server, as a car makes it (spec §2.5): TCP
/// connect, TLS with its client certificate, WebSocket upgrade to `wss://HOST:PORT/` with the
/// `X-Network-Interface`, `Version` and `X-TXID` headers, then binary V records (spec §3.2,
/// §7.1) at the configured rate, or closed loop, or none (idle). Every reply is matched to its
/// record by txid: ACKs give the latency, ERRORs are counted (spec §3.3).
///
/// Owned by its `Shard` and run on that shard's thread only: `run()` is the writer and spawns the
/// reader beside it on the same executor, so there is at most one read and one write in flight
/// and Beast's rules hold without a strand. (Not `co_await (read && write)`: with GCC 12.2 the
/// awaitable operators corrupted this member coroutine's frame here.) Network failures are
/// counted in the shard's stats and logged within the shard's warning budget; nothing throws out
/// of `run()` except std::bad_alloc.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <string>

#include "sim/cert_dir.hpp"
#include "sim/pending_acks.hpp"
#include "sim/rng.hpp"
#include "sim/signals.hpp"
#include "wire/envelope.hpp"

namespace ts::vehicle_sim {

class Shard;

class Vehicle {
 public:
  using Stream =
      boost::beast::websocket::stream<boost::beast::ssl_stream<boost::beast::tcp_stream>>;

  Vehicle(Shard& shard, VehicleIdentity identity);
  Vehicle(const Vehicle&) = delete;
  Vehicle& operator=(const Vehicle&) = delete;

  /// Connects, runs until `stop()` (or until the connection fails), closes. Once per vehicle.
  boost::asio::awaitable<void> run();

  /// Stop sending and close the WebSocket cleanly; a vehicle still connecting gives up.
  void stop();
  /// Close the socket now, without a closing handshake (after the grace period).
  void abort();

  const VehicleIdentity& identity() const { return id_; }

 private:
  enum class Phase { Idle, Connecting, Open, Done };

  boost::asio::awaitable<bool> connect();
  boost::asio::awaitable<void> read_loop();
  boost::asio::awaitable<void> write_loop();
  boost::asio::awaitable<void> write_at_rate();
  boost::asio::awaitable<void> write_closed_loop();
  boost::asio::awaitable<void> hold_idle();
  /// After the last record: waits (briefly) for the replies still outstanding.
  boost::asio::awaitable<void> drain();
  /// Builds the next record and writes it; false when the connection failed.
  boost::asio::awaitable<bool> send_record();
  void on_reply(std::span<const std::uint8_t> bytes);
  void fail_connect(std::string_view step, const std::string& detail);
  void on_reader_exception(const std::exception_ptr& e);
  void on_link_error(std::string_view what, const boost::system::error_code& ec);
  bool should_stop() const { return stopping_ || reader_done_ || link_failed_; }

  Shard& shard_;
  VehicleIdentity id_;
  Rng rng_;
  SignalGenerator signals_;
  PendingAcks pending_;
  std::string sender_id_;
  std::optional<Stream> ws_;
  boost::asio::steady_timer wake_;  ///< the writer's only wait: next tick, an ack, or stop
  boost::beast::flat_buffer read_buffer_;
  telemetry::vehicle_data::Payload payload_;  // reused between records
  std::string payload_bytes_;
  std::string txid_;
  wire::Bytes frame_;  ///< the frame being written; alive until the write completes
  std::chrono::steady_clock::time_point last_advance_;
  Phase phase_ = Phase::Idle;
  bool stopping_ = false;
  bool closing_ = false;  ///< we sent the close frame, or abort() closed the socket
  bool reader_done_ = false;
  bool draining_ = false;
  bool link_failed_ = false;       ///< counted as a disconnect already
  std::uint64_t awaited_seq_ = 0;  ///< closed loop: the record the writer waits for
};

/// `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx` (RFC 9562 version 4) from 128 random bits.
std::string format_uuid_v4(std::uint64_t hi, std::uint64_t lo);

}  // namespace ts::vehicle_sim

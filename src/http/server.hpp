#pragma once
/// HTTP/1.1 server on Boost.Beast: operational endpoints (`/metrics`, `/status`) with a single
/// Handler, or a whole API with a Router (routes, auth, blocking handlers, SSE streams).
///
/// Runs on one io_context (a shard); each connection is one coroutine on it, SSE streams included
/// (no thread per client). Keep-alive, header and body limits (431/413 with the JSON error body),
/// an idle timeout between and during requests (not for streams, which have heartbeats and write
/// deadlines instead), a write timeout, a connection limit (503). Routes marked
/// Execution::Blocking run on a worker pool and the connection resumes on its io_context when the
/// handler returns; everything else runs inline and must not block.
///
/// For several shards, run one Server per io_context with `reuse_port = true` on the same port,
/// sharing one Router and one EventHub: the kernel spreads connections over them and the hub
/// posts each event once per shard.
///
/// Owned by main(). `start` binds (throws std::runtime_error naming the address). `stop` may be
/// called from any thread: it stops accepting, closes idle keep-alive connections, lets requests
/// in progress finish (answered with `Connection: close`), and ends SSE streams with
/// `event: shutdown`. The io_context then runs out of work once the last connection is gone, so
/// `io.run()` returning means drained. Destroy the Server before its io_context.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "http/request.hpp"
#include "http/router.hpp"
#include "http/sse.hpp"

namespace ts::http {

struct ServerOptions {
  std::string host = "127.0.0.1";  ///< "" = all interfaces
  std::uint16_t port = 0;          ///< 0 = any free port
  std::size_t header_limit = 8 * 1024;
  std::size_t body_limit = 64 * 1024;  ///< default for routes without their own
  std::chrono::seconds idle_timeout{60};  ///< waiting for (and reading) a request
  std::chrono::seconds write_timeout{30};  ///< writing an ordinary response
  std::size_t max_connections = 10'000;    ///< beyond this, new connections get 503 and close
  bool reuse_port = false;                 ///< SO_REUSEPORT: several Servers on one port
  /// Worker pool for Execution::Blocking routes: borrowed if set (must outlive the Server),
  /// else the Server starts its own with `blocking_threads` threads when the router needs one.
  boost::asio::thread_pool* blocking_pool = nullptr;
  std::size_t blocking_threads = 4;
  /// Blocking requests queued or running at once, per Server; beyond it: 503.
  std::size_t blocking_queue_limit = 256;
  StreamOptions sse;
};

class Server {
 public:
  /// One handler for every request (public, inline; e.g. /metrics and /status).
  Server(boost::asio::io_context& io, ServerOptions options, Handler handler);
  /// A router; it is shared so connections may outlive this object during shutdown.
  Server(boost::asio::io_context& io, ServerOptions options, std::shared_ptr<const Router> router);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds and starts accepting. Throws std::runtime_error naming the address when it cannot.
  void start();
  /// Any thread; see the header comment.
  void stop();
  std::uint16_t port() const { return port_; }
  /// Open connections (SSE streams included); any thread.
  std::size_t connections() const;
  /// Open SSE streams; any thread.
  std::size_t streams() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::uint16_t port_ = 0;
};

/// Resolves a listen host ("" = all interfaces, "localhost", or a literal address).
boost::asio::ip::address listen_address(const std::string& host);

}  // namespace ts::http

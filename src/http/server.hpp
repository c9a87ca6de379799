#pragma once
/// A small HTTP/1.1 server on Boost.Beast for operational endpoints (`/metrics`, `/status`).
///
/// Runs on one io_context (a shard); each connection is a coroutine on it. Keep-alive, request
/// limits (header and body size) and an idle timeout; a handler turns a Request into a Response
/// synchronously and must not block. Not thread-safe: start/stop from the io_context's owner.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ts::http {

struct Request {
  std::string method;
  std::string target;  ///< path and query as sent
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  /// The path without the query string.
  std::string path() const { return target.substr(0, target.find('?')); }
};

struct Response {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

using Handler = std::function<Response(const Request&)>;

struct ServerOptions {
  std::string host = "127.0.0.1";  ///< "" = all interfaces
  std::uint16_t port = 0;          ///< 0 = any free port
  std::size_t header_limit = 8 * 1024;
  std::size_t body_limit = 64 * 1024;
  std::chrono::seconds idle_timeout{60};
};

class Server {
 public:
  Server(boost::asio::io_context& io, ServerOptions options, Handler handler);
  ~Server();
  /// Binds and starts accepting. Throws std::runtime_error naming the address when it cannot.
  void start();
  /// Stops accepting; open connections finish their current request and close.
  void stop();
  std::uint16_t port() const { return port_; }

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::uint16_t port_ = 0;
};

/// Resolves a listen host ("" = all interfaces, "localhost", or a literal address).
boost::asio::ip::address listen_address(const std::string& host);

}  // namespace ts::http

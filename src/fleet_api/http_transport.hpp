#pragma once
/// Blocking HTTP/1.1 client for one origin (scheme, host, port), over TCP or TLS, on Boost.Beast
/// and OpenSSL. Used by fleet_api::Client; also handy for tests that drive vehicle-sim's `/sim/`
/// control endpoints.
///
/// Thread-safe: any thread may call `send`, and concurrent calls use separate connections. Each
/// call blocks its thread until the response is read or `timeout` has passed; every phase
/// (connect, TLS handshake, write, read) runs under that one deadline. Host-name resolution is
/// bounded by the system resolver (IP literals need none). Kept-alive connections are pooled
/// and reused; a request that fails on a reused connection before any response byte arrived (the
/// server closed it while idle) is sent once more on a fresh connection.
///
/// TLS verifies the server certificate (chain against the system store or `ca_file`, and the
/// host name or IP), TLS 1.2 or newer. Plain `http://` is accepted only for loopback hosts unless
/// `allow_insecure_http` is set: tokens and secrets must not cross a network in clear text.
///
/// Failures are values: errc::network with `Error::cause` (Asio, SSL or beast::error::timeout).
/// Construction throws std::invalid_argument (bad URL, http:// to a remote host) or
/// std::runtime_error (unreadable ca_file), naming the option.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fleet_api/errc.hpp"

namespace ts::fleet_api {

/// An origin plus an optional path prefix, from "https://host[:port][/prefix]".
struct BaseUrl {
  bool tls = true;
  std::string host;  ///< without brackets for IPv6
  std::uint16_t port = 443;
  std::string path;  ///< prefix without a trailing '/', often empty

  std::string text() const;  ///< back to "https://host[:port]/prefix"
};

/// Parses an http(s) base URL (no query, no fragment, no user info). Throws std::invalid_argument
/// "<what>: …" on anything else.
BaseUrl parse_base_url(std::string_view url, std::string_view what);

/// True for "localhost", 127.0.0.0/8 and ::1.
bool is_loopback_host(std::string_view host) noexcept;

struct HttpRequest {
  std::string method = "GET";
  std::string target;  ///< path and query, appended to the base URL's prefix
  std::string body;
  std::string content_type;  ///< sent when not empty
  std::vector<std::pair<std::string, std::string>> headers;
};

struct HttpResponse {
  unsigned status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  /// The first header of that name (case-insensitive), or "".
  std::string_view header(std::string_view name) const;
};

struct TransportOptions {
  std::string base_url;  ///< required: "https://host[:port][/prefix]"
  std::string ca_file;   ///< PEM trust anchors instead of the system store (empty = system)
  bool allow_insecure_http = false;                   ///< allow http:// to a non-loopback host
  std::chrono::milliseconds connect_timeout{10'000};  ///< cap on connect + TLS handshake
  std::size_t body_limit = 8 * 1024 * 1024;           ///< larger responses fail (network)
  std::size_t max_idle_connections = 4;
  std::string user_agent = "teslasync-telemetry";
};

class HttpTransport {
 public:
  explicit HttpTransport(TransportOptions options);
  ~HttpTransport();
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  /// Sends `request` and reads the whole response (any status), waiting at most `timeout`.
  Result<HttpResponse> send(const HttpRequest& request, std::chrono::milliseconds timeout);

  const BaseUrl& base_url() const { return base_; }

  struct Connection;  ///< one pooled connection (opaque; defined in the .cpp)

 private:
  struct Tls;

  std::unique_ptr<Connection> take_idle();
  void give_back(std::unique_ptr<Connection> connection);

  TransportOptions options_;
  BaseUrl base_;
  std::unique_ptr<Tls> tls_;  // null for http://
  std::mutex mutex_;          // guards idle_
  std::vector<std::unique_ptr<Connection>> idle_;
};

}  // namespace ts::fleet_api

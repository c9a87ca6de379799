#include "fleet_api/http_transport.hpp"

#include <openssl/ssl.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <optional>
#include <stdexcept>

#include "pki/tls_context.hpp"

namespace ts::fleet_api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

// A server closes idle keep-alive connections after a while (our http::Server after 60 s); do
// not even try one that has been idle longer than this.
constexpr std::chrono::seconds kMaxIdle{30};
constexpr std::uint32_t kHeaderLimit = 64 * 1024;

[[noreturn]] void invalid(std::string_view what, const std::string& why) {
  throw std::invalid_argument(std::string(what) + ": " + why);
}

// What one exchange on one connection produced.
struct Outcome {
  error_code ec;
  const char* phase = "";
  HttpResponse response;
  bool keep_alive = false;
};

// The errors of a kept-alive connection the server already closed: safe to send again, since
// the server never saw the request.
bool stale_connection(const error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == ssl::error::stream_truncated;
}

}  // namespace

struct HttpTransport::Tls {
  ssl::context context{ssl::context::tls_client};
};

struct HttpTransport::Connection {
  asio::io_context io{1};
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  SteadyClock::time_point idle_since;

  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
};

namespace {

template <class Stream>
asio::awaitable<void> talk(Stream& stream, beast::tcp_stream& lowest, beast::flat_buffer& buffer,
                           bhttp::request<bhttp::string_body>& request, std::size_t body_limit,
                           SteadyClock::time_point deadline, Outcome& out) {
  error_code ec;
  lowest.expires_at(deadline);
  co_await bhttp::async_write(stream, request, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    out.ec = ec;
    out.phase = "write";
    co_return;
  }
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(body_limit);
  parser.header_limit(kHeaderLimit);
  co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    out.ec = ec;
    out.phase = "read";
    co_return;
  }
  auto& msg = parser.get();
  out.response.status = msg.result_int();
  out.response.body = std::move(msg.body());
  for (const auto& field : msg)
    out.response.headers.emplace_back(field.name_string(), field.value());
  out.keep_alive = msg.keep_alive();
}

asio::awaitable<void> exchange(HttpTransport::Connection& c, const BaseUrl& base, bool fresh,
                               std::chrono::milliseconds connect_timeout,
                               bhttp::request<bhttp::string_body>& request, std::size_t body_limit,
                               SteadyClock::time_point deadline, Outcome& out) {
  error_code ec;
  if (fresh) {
    tcp::resolver resolver(c.io);
    auto endpoints = co_await resolver.async_resolve(base.host, std::to_string(base.port),
                                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      out.ec = ec;
      out.phase = "resolve";
      co_return;
    }
    beast::tcp_stream& lowest = c.lowest();
    lowest.expires_at(std::min(deadline, SteadyClock::now() + connect_timeout));
    co_await lowest.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      out.ec = ec;
      out.phase = "connect";
      co_return;
    }
    lowest.socket().set_option(tcp::no_delay(true), ec);
    if (c.secure) {
      if (!pki::expect_server_name(c.secure->native_handle(), base.host)) {
        out.ec = asio::error::invalid_argument;
        out.phase = "TLS server name";
        co_return;
      }
      co_await c.secure->async_handshake(ssl::stream_base::client,
                                         asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        out.ec = ec;
        out.phase = "TLS handshake";
        co_return;
      }
    }
  }
  if (c.secure) {
    co_await talk(*c.secure, c.lowest(), c.buffer, request, body_limit, deadline, out);
  } else {
    co_await talk(*c.plain, c.lowest(), c.buffer, request, body_limit, deadline, out);
  }
}

}  // namespace

std::string BaseUrl::text() const {
  std::string out = tls ? "https://" : "http://";
  out += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (tls ? 443 : 80)) out += ":" + std::to_string(port);
  return out + path;
}

BaseUrl parse_base_url(std::string_view url, std::string_view what) {
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) invalid(what, "'" + std::string(url) + "' is not an absolute URL");
  const auto& u = *parsed;
  BaseUrl out;
  const std::string scheme(u.scheme());
  if (scheme == "https") {
    out.tls = true;
  } else if (scheme == "http") {
    out.tls = false;
  } else {
    invalid(what, "scheme must be http or https, not '" + scheme + "'");
  }
  if (u.has_userinfo()) invalid(what, "user info is not supported");
  if (u.has_query()) invalid(what, "a query is not supported");
  out.host = u.host_address();
  if (out.host.empty()) invalid(what, "no host in '" + std::string(url) + "'");
  out.port = out.tls ? 443 : 80;
  if (u.has_port()) {
    if (u.port_number() == 0) invalid(what, "bad port in '" + std::string(url) + "'");
    out.port = u.port_number();
  }
  out.path = std::string(u.encoded_path());
  while (!out.path.empty() && out.path.back() == '/') out.path.pop_back();
  return out;
}

bool is_loopback_host(std::string_view host) noexcept {
  if (host == "localhost") return true;
  error_code ec;
  auto addr = asio::ip::make_address(std::string(host), ec);
  return !ec && addr.is_loopback();
}

std::string_view HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return v;
  }
  return {};
}

HttpTransport::HttpTransport(TransportOptions options) : options_(std::move(options)) {
  base_ = parse_base_url(options_.base_url, "base URL");
  if (!base_.tls && !options_.allow_insecure_http && !is_loopback_host(base_.host)) {
    invalid("base URL", "'" + options_.base_url +
                            "' sends tokens in clear text; use https (plain http is only allowed "
                            "for loopback hosts, e.g. vehicle-sim on 127.0.0.1)");
  }
  if (base_.tls) {
    tls_ = std::make_unique<Tls>();
    SSL_CTX* ctx = tls_->context.native_handle();
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    tls_->context.set_verify_mode(ssl::verify_peer);
    error_code ec;
    if (!options_.ca_file.empty()) {
      tls_->context.load_verify_file(options_.ca_file, ec);
      if (ec) {
        throw std::runtime_error("ca_file '" + options_.ca_file +
                                 "': cannot load trust anchors: " + ec.message());
      }
    } else {
      tls_->context.set_default_verify_paths(ec);
      if (ec) throw std::runtime_error("cannot load the system CA store: " + ec.message());
    }
  }
}

HttpTransport::~HttpTransport() = default;

std::unique_ptr<HttpTransport::Connection> HttpTransport::take_idle() {
  std::lock_guard lock(mutex_);
  const auto now = SteadyClock::now();
  while (!idle_.empty()) {
    std::unique_ptr<Connection> c = std::move(idle_.back());
    idle_.pop_back();
    if (now - c->idle_since < kMaxIdle) return c;
  }
  return nullptr;
}

void HttpTransport::give_back(std::unique_ptr<Connection> connection) {
  connection->idle_since = SteadyClock::now();
  std::lock_guard lock(mutex_);
  if (idle_.size() < options_.max_idle_connections) idle_.push_back(std::move(connection));
}

Result<HttpResponse> HttpTransport::send(const HttpRequest& request,
                                         std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;

  bhttp::request<bhttp::string_body> req;
  req.method_string(request.method);
  req.target(base_.path + request.target);
  req.version(11);
  const bool default_port = base_.port == (base_.tls ? 443 : 80);
  std::string host =
      base_.host.find(':') != std::string::npos ? "[" + base_.host + "]" : base_.host;
  req.set(bhttp::field::host, default_port ? host : host + ":" + std::to_string(base_.port));
  req.set(bhttp::field::user_agent, options_.user_agent);
  req.set(bhttp::field::accept, "application/json");
  if (!request.content_type.empty()) req.set(bhttp::field::content_type, request.content_type);
  for (const auto& [k, v] : request.headers) req.set(k, v);
  req.body() = request.body;
  req.keep_alive(true);
  req.prepare_payload();

  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Connection> c = attempt == 0 ? take_idle() : nullptr;
    const bool reused = c != nullptr;
    if (!c) {
      c = std::make_unique<Connection>();
      if (tls_) {
        c->secure.emplace(c->io, tls_->context);
      } else {
        c->plain.emplace(c->io);
      }
    }
    Outcome out;
    bool done = false;
    c->io.restart();
    asio::co_spawn(c->io,
                   exchange(*c, base_, !reused, options_.connect_timeout, req, options_.body_limit,
                            deadline, out),
                   [&](std::exception_ptr e) {
                     done = true;
                     if (e && !out.ec) {
                       out.ec = boost::system::errc::make_error_code(boost::system::errc::io_error);
                       out.phase = "exchange";
                     }
                   });
    // The streams time out by themselves at the deadline; name resolution does not, hence the
    // guard: close everything and let the coroutine finish with operation_aborted.
    c->io.run_until(deadline + std::chrono::seconds(1));
    if (!done) {
      error_code ignored;
      c->lowest().socket().close(ignored);
      c->io.restart();
      c->io.run();
      out.ec = beast::error::timeout;
      out.phase = "resolve";
    }
    if (out.ec) {
      if (reused && stale_connection(out.ec) && SteadyClock::now() < deadline) continue;
      Error e(errc::network, std::string(out.phase) + " " + base_.text() + ": " + out.ec.message());
      e.cause = out.ec;
      return e;
    }
    if (out.keep_alive) give_back(std::move(c));
    return std::move(out.response);
  }
}

}  // namespace ts::fleet_api

#include "fleet_api/listener.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <fmt/format.h>

#include <stdexcept>

#include "core/log.hpp"

namespace ts::vehicle_sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

namespace {
constexpr std::size_t kHeaderLimit = 16 * 1024;
constexpr std::size_t kBodyLimit = 1024 * 1024;
constexpr std::chrono::seconds kIdleTimeout{60};
constexpr std::chrono::seconds kHandshakeTimeout{10};
}  // namespace

// The TLS twin of http::Server (Beast advanced_server_flex's shape, one io_context).
struct Listener::TlsServer : std::enable_shared_from_this<Listener::TlsServer> {
  asio::io_context& io;
  ssl::context context{ssl::context::tls_server};
  http::Handler handler;
  tcp::acceptor acceptor;
  bool stopped = false;

  TlsServer(asio::io_context& i, http::Handler h) : io(i), handler(std::move(h)), acceptor(i) {}

  asio::awaitable<void> serve(tcp::socket socket) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), context);
    boost::system::error_code ec;
    beast::get_lowest_layer(stream).expires_after(kHandshakeTimeout);
    co_await stream.async_handshake(ssl::stream_base::server,
                                    asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;  // scanners, plain-HTTP clients, untrusting clients
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(kHeaderLimit);
      parser.body_limit(kBodyLimit);
      beast::get_lowest_layer(stream).expires_after(kIdleTimeout);
      co_await bhttp::async_read(stream, buffer, parser,
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      auto& req = parser.get();
      http::Request r;
      r.method = std::string(req.method_string());
      r.target = std::string(req.target());
      r.body = std::move(req.body());
      for (const auto& f : req) r.headers.emplace_back(f.name_string(), f.value());
      http::Response res;
      try {
        res = handler(r);
      } catch (const std::exception& e) {
        ts::log::get("sim")->error("handler failed for {}: {}", r.target, e.what());
        res = http::Response{500, "text/plain; charset=utf-8", "internal error\n", {}};
      }
      bhttp::response<bhttp::string_body> out{static_cast<bhttp::status>(res.status), 11};
      out.set(bhttp::field::content_type, res.content_type);
      for (const auto& [k, v] : res.headers) out.set(k, v);
      out.body() = std::move(res.body);
      out.keep_alive(req.keep_alive() && !stopped);
      out.prepare_payload();
      co_await bhttp::async_write(stream, out, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !out.keep_alive()) break;
    }
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
    co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket =
          co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (stopped || ec == asio::error::operation_aborted) co_return;
        continue;
      }
      asio::co_spawn(io, self->serve(std::move(socket)), asio::detached);
    }
  }
};

Listener::Listener(asio::io_context& io, ListenerOptions options, http::Handler handler)
    : options_(std::move(options)) {
  if (options_.cert_file.empty() != options_.key_file.empty()) {
    throw std::runtime_error("--cert and --key go together");
  }
  if (options_.cert_file.empty()) {
    plain_ = std::make_unique<http::Server>(io,
                                            http::ServerOptions{.host = options_.host,
                                                                .port = options_.port,
                                                                .header_limit = kHeaderLimit,
                                                                .body_limit = kBodyLimit,
                                                                .idle_timeout = kIdleTimeout},
                                            std::move(handler));
  } else {
    secure_ = std::make_shared<TlsServer>(io, std::move(handler));
    boost::system::error_code ec;
    secure_->context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                                 ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                                 ssl::context::no_tlsv1_1);
    secure_->context.use_certificate_chain_file(options_.cert_file, ec);
    if (ec) throw std::runtime_error("--cert " + options_.cert_file + ": " + ec.message());
    secure_->context.use_private_key_file(options_.key_file, ssl::context::pem, ec);
    if (ec) throw std::runtime_error("--key " + options_.key_file + ": " + ec.message());
  }
}

Listener::~Listener() { stop(); }

void Listener::start() {
  if (plain_) {
    plain_->start();
    port_ = plain_->port();
    return;
  }
  tcp::endpoint ep(http::listen_address(options_.host), options_.port);
  boost::system::error_code ec;
  auto& a = secure_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error(
        fmt::format("cannot listen on {}:{}: {}", options_.host, options_.port, ec.message()));
  }
  port_ = a.local_endpoint().port();
  asio::co_spawn(secure_->io, secure_->accept_loop(), asio::detached);
}

void Listener::stop() {
  if (plain_) {
    plain_->stop();
    return;
  }
  if (!secure_) return;
  secure_->stopped = true;
  if (secure_->acceptor.is_open()) {
    asio::post(secure_->io, [s = secure_] {
      boost::system::error_code ignored;
      s->acceptor.close(ignored);
    });
  }
}

std::string Listener::url() const {
  const std::string host = options_.host.empty() ? "0.0.0.0" : options_.host;
  return fmt::format("{}://{}:{}", tls() ? "https" : "http",
                     host.find(':') != std::string::npos ? "[" + host + "]" : host, port());
}

}  // namespace ts::vehicle_sim

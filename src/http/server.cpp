#include "http/server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <fmt/format.h>

#include "core/log.hpp"

namespace ts::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

struct Server::State : std::enable_shared_from_this<Server::State> {
  asio::io_context& io;
  ServerOptions options;
  Handler handler;
  tcp::acceptor acceptor;
  bool stopped = false;

  State(asio::io_context& i, ServerOptions o, Handler h)
      : io(i), options(std::move(o)), handler(std::move(h)), acceptor(i) {}

  asio::awaitable<void> serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    boost::system::error_code ec;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
      parser.body_limit(options.body_limit);
      stream.expires_after(options.idle_timeout);
      co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
      if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout) break;
      Response res;
      bool keep_alive = false;
      if (ec) {
        // Oversize headers or body, or malformed requests: answered, then the connection closes.
        res.status = ec == bhttp::error::body_limit ? 413
                     : ec == bhttp::error::header_limit ? 431
                                                        : 400;
        res.body = fmt::format("{}\n", ec.message());
      } else {
        auto& req = parser.get();
        Request r;
        r.method = std::string(req.method_string());
        r.target = std::string(req.target());
        r.body = std::move(req.body());
        for (const auto& f : req) r.headers.emplace_back(f.name_string(), f.value());
        keep_alive = req.keep_alive();
        try {
          res = handler(r);
        } catch (const std::exception& e) {
          ts::log::get("http")->error("handler failed for {}: {}", r.target, e.what());
          res = Response{500, "text/plain; charset=utf-8", "internal error\n", {}};
        }
      }
      bhttp::response<bhttp::string_body> out{static_cast<bhttp::status>(res.status), 11};
      out.set(bhttp::field::content_type, res.content_type);
      for (const auto& [k, v] : res.headers) out.set(k, v);
      out.body() = std::move(res.body);
      out.keep_alive(keep_alive && !stopped);
      out.prepare_payload();
      co_await bhttp::async_write(stream, out, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !out.keep_alive()) break;
    }
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (stopped || ec == asio::error::operation_aborted) co_return;
        continue;  // e.g. EMFILE: keep serving the connections we have
      }
      asio::co_spawn(io, self->serve(std::move(socket)), asio::detached);
    }
  }
};

asio::ip::address listen_address(const std::string& host) {
  if (host.empty()) return asio::ip::address_v6::any();
  if (host == "localhost") return asio::ip::address_v4::loopback();
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) throw std::runtime_error(fmt::format("'{}' is not an IP address", host));
  return addr;
}

Server::Server(asio::io_context& io, ServerOptions options, Handler handler)
    : state_(std::make_shared<State>(io, std::move(options), std::move(handler))) {}

Server::~Server() { stop(); }

void Server::start() {
  auto& o = state_->options;
  tcp::endpoint ep(listen_address(o.host), o.port);
  boost::system::error_code ec;
  auto& a = state_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec && ep.address().is_v6()) a.set_option(asio::ip::v6_only(false), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error(
        fmt::format("cannot listen on {}:{}: {}", o.host.empty() ? "*" : o.host, o.port, ec.message()));
  port_ = a.local_endpoint().port();
  asio::co_spawn(state_->io, state_->accept_loop(), asio::detached);
}

void Server::stop() {
  if (!state_) return;
  state_->stopped = true;
  boost::system::error_code ec;
  if (state_->acceptor.is_open()) {
    // Closed on the owning io_context: the accept loop may be suspended there.
    asio::post(state_->io, [s = state_] {
      boost::system::error_code ignored;
      s->acceptor.close(ignored);
    });
  }
}

}  // namespace ts::http

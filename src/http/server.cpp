#include "http/server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <fmt/format.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <unordered_set>

#include "core/log.hpp"
#include "http/stream_session.hpp"

namespace ts::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using detail::StreamSession;

namespace {

inline auto use_ec(boost::system::error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

// How often stream write deadlines and closing grace periods are checked.
constexpr std::chrono::milliseconds kSweepInterval{250};

using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

bool peer_left(const boost::system::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
         ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
         ec == asio::error::eof || ec == asio::error::bad_descriptor ||
         ec == asio::error::broken_pipe;
}

Response read_error_response(const boost::system::error_code& ec) {
  if (ec == bhttp::error::body_limit) return error_response(errc::payload_too_large);
  if (ec == bhttp::error::header_limit) return error_response(errc::headers_too_large);
  return error_response(errc::bad_request, ec.message());
}

std::string peer_of(const tcp::socket& s) {
  boost::system::error_code ec;
  auto ep = s.remote_endpoint(ec);
  return ec ? std::string("?") : fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

}  // namespace

// Lives on the io_context; every member except the atomics is touched on its thread only.
struct Server::State : std::enable_shared_from_this<Server::State> {
  // A connection between requests (or reading one), so stop() can close it.
  struct Conn {
    beast::tcp_stream* stream;
    bool idle = false;
  };

  asio::io_context& io;
  ServerOptions options;
  std::shared_ptr<const Router> router;
  tcp::acceptor acceptor;
  asio::steady_timer sweep_timer;
  std::unique_ptr<asio::thread_pool> own_pool;
  asio::thread_pool* pool = nullptr;
  std::shared_ptr<spdlog::logger> log = ts::log::get("http");
  std::atomic<bool> stopped{false};
  std::atomic<std::size_t> connections{0};
  std::atomic<std::size_t> streams{0};
  std::size_t blocking_in_flight = 0;
  std::unordered_set<Conn*> conns;
  std::unordered_set<StreamSession*> sessions;

  State(asio::io_context& i, ServerOptions o, std::shared_ptr<const Router> r)
      : io(i), options(std::move(o)), router(std::move(r)), acceptor(i), sweep_timer(i) {}

  // Runs `f` inline or on the worker pool, as the route says; nullopt when the pool is full.
  template <class F>
  asio::awaitable<std::optional<std::invoke_result_t<F&>>> run(const Router::Route& route, F f) {
    using R = std::invoke_result_t<F&>;
    if (route.options.execution == Execution::Inline || pool == nullptr) co_return f();
    if (blocking_in_flight >= options.blocking_queue_limit) co_return std::nullopt;
    ++blocking_in_flight;
    struct Release {
      std::size_t& n;
      ~Release() { --n; }
    } release{blocking_in_flight};
    // The awaiting coroutine resumes on its own io_context when the pool is done.
    R r = co_await asio::co_spawn(
        pool->get_executor(), [&f]() -> asio::awaitable<R> { co_return f(); }, asio::use_awaitable);
    co_return r;
  }

  asio::awaitable<void> write_response(beast::tcp_stream& stream, Response res, bool head,
                                       bool keep_alive, boost::system::error_code& ec) {
    stream.expires_after(options.write_timeout);
    if (head) {
      bhttp::response<bhttp::empty_body> out{static_cast<bhttp::status>(res.status), 11};
      out.set(bhttp::field::content_type, res.content_type);
      for (const auto& [k, v] : res.headers) out.set(k, v);
      out.content_length(res.body.size());
      out.keep_alive(keep_alive);
      co_await bhttp::async_write(stream, out, use_ec(ec));
      co_return;
    }
    bhttp::response<bhttp::string_body> out{static_cast<bhttp::status>(res.status), 11};
    out.set(bhttp::field::content_type, res.content_type);
    for (const auto& [k, v] : res.headers) out.set(k, v);
    if (res.status / 100 != 1 && res.status != 204 && res.status != 304) out.body() = std::move(res.body);
    out.keep_alive(keep_alive);
    out.prepare_payload();
    co_await bhttp::async_write(stream, out, use_ec(ec));
  }

  // Serves a stream route. Returns the response to send instead when the stream did not start
  // (auth, key or snapshot refused, pool full, stopping); nullopt once the stream was handed to
  // its own coroutine (this connection's HTTP part is then finished).
  asio::awaitable<std::optional<Response>> serve_stream(beast::tcp_stream& stream,
                                                        const Router::Route& route, Request& req) {
    auto opened = co_await run(route, [&] { return router->open_stream(route, req); });
    if (!opened) co_return error_response(errc::unavailable, "too many requests in progress");
    if (auto* refused = std::get_if<Response>(&*opened)) co_return std::move(*refused);
    if (stopped) co_return error_response(errc::unavailable, "server is stopping");

    auto session = std::make_shared<StreamSession>(io.get_executor(), route.sse->hub,
                                                   std::get<std::string>(std::move(*opened)),
                                                   options.sse, req.remote);
    auto attached = session->attach(last_event_id(req));
    // Registered from here on, so stop() reaches it even while its snapshot is being taken.
    sessions.insert(session.get());
    ++streams;
    auto refuse = [&](Response r) {
      session->detach();
      sessions.erase(session.get());
      --streams;
      return r;
    };

    std::vector<EncodedEventPtr> initial;
    if (attached.resumed) {
      initial = std::move(attached.replay);
    } else {
      // After attach, so nothing published meanwhile is lost: it is queued behind the snapshot
      // (and may repeat what the snapshot already shows).
      auto snap = co_await run(route, [&] { return Router::take_snapshot(route, req); });
      if (!snap) co_return refuse(error_response(errc::unavailable, "too many requests in progress"));
      if (auto* refused = std::get_if<Response>(&*snap)) co_return refuse(std::move(*refused));
      initial = StreamSession::snapshot_frames(std::get<std::vector<Event>>(*snap), attached.position);
    }
    // The stream outlives this HTTP coroutine, whose frame (parser, tcp_stream, request) would
    // otherwise stay allocated for as long as the browser keeps the page open.
    ++connections;
    asio::co_spawn(io, run_stream(shared_from_this(), std::move(session), stream.release_socket(),
                                  std::move(initial)),
                   asio::detached);
    co_return std::nullopt;
  }

  static asio::awaitable<void> run_stream(std::shared_ptr<State> self,
                                          std::shared_ptr<StreamSession> session, tcp::socket socket,
                                          std::vector<EncodedEventPtr> initial) {
    struct Unregister {
      State& s;
      StreamSession* session;
      ~Unregister() {
        s.sessions.erase(session);
        --s.streams;
        --s.connections;
      }
    } unregister{*self, session.get()};
    co_await session->run(std::move(socket), std::move(initial));
  }

  asio::awaitable<void> serve(tcp::socket socket) {
    auto self = shared_from_this();
    ++connections;
    struct Count {
      std::atomic<std::size_t>& n;
      ~Count() { --n; }
    } count{connections};
    boost::system::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);  // small SSE writes must not wait for ACKs
    const std::string remote = peer_of(socket);
    beast::tcp_stream stream(std::move(socket));
    if (connections > options.max_connections) {
      co_await write_response(stream, error_response(errc::unavailable, "too many connections"), false,
                              false, ec);
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
    Conn conn{&stream};
    conns.insert(&conn);
    struct Forget {
      State& s;
      Conn* c;
      ~Forget() { s.conns.erase(c); }
    } forget{*this, &conn};

    beast::flat_buffer buffer;
    // In an optional so a request that becomes a long-lived stream can free it (and the buffer).
    std::optional<bhttp::request_parser<bhttp::string_body>> parser_slot;
    while (!stopped) {
      auto& parser = parser_slot.emplace();
      parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
      // The largest limit any route allows; the matched route's own is applied below.
      parser.body_limit(std::max(options.body_limit, router->max_body_limit()));
      stream.expires_after(options.idle_timeout);
      conn.idle = true;
      co_await bhttp::async_read_header(stream, buffer, parser, use_ec(ec));
      conn.idle = false;
      if (peer_left(ec)) break;
      if (ec) {
        // Oversize headers or malformed requests: answered, then the connection closes.
        co_await write_response(stream, read_error_response(ec), false, false, ec);
        break;
      }

      auto& head = parser.get();
      Request req;
      req.method = std::string(head.method_string());
      req.target = std::string(head.target());
      req.remote = remote;
      for (const auto& f : head) req.headers.emplace_back(f.name_string(), f.value());
      const auto match = router->match(req);
      const std::size_t body_limit =
          match.route && match.route->options.body_limit ? match.route->options.body_limit
                                                         : options.body_limit;
      // Beast checks Content-Length when the header completes, against the largest limit; the
      // route's own limit is checked here and applies to chunked bodies below.
      parser.body_limit(body_limit);
      if (auto length = parser.content_length(); length && *length > body_limit) {
        co_await write_response(stream, error_response(errc::payload_too_large), false, false, ec);
        break;
      }
      if (!parser.is_done()) {
        if (iequals(head[bhttp::field::expect], "100-continue")) {
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          co_await asio::async_write(stream, asio::buffer(kContinue), use_ec(ec));
          if (ec) break;
        }
        co_await bhttp::async_read(stream, buffer, parser, use_ec(ec));
        if (peer_left(ec)) break;
        if (ec) {
          co_await write_response(stream, read_error_response(ec), false, false, ec);
          break;
        }
      }
      req.body = std::move(parser.get().body());
      bool keep_alive = parser.get().keep_alive();
      const bool is_head = req.method == "HEAD";

      Response res;
      if (!match.route) {
        res = Router::no_route(match);
      } else if (match.route->sse && is_head) {
        // The same checks as GET (authentication, then the key: 401/404), but no snapshot and
        // no stream: HEAD must not reveal what GET would refuse.
        auto opened = co_await run(*match.route,
                                   [&] { return router->open_stream(*match.route, req); });
        if (!opened) {
          res = error_response(errc::unavailable, "too many requests in progress");
        } else if (auto* refused = std::get_if<Response>(&*opened)) {
          res = std::move(*refused);
        } else {
          res = Response{200, "text/event-stream", {}, {{"Cache-Control", "no-cache"}}};
        }
      } else if (match.route->sse) {
        // A stream keeps this frame alive for hours: drop the parser and read buffer first.
        parser_slot.reset();
        buffer.clear();
        buffer.shrink_to_fit();
        auto refused = co_await serve_stream(stream, *match.route, req);
        if (!refused) co_return;  // the stream runs on; the socket is gone
        res = std::move(*refused);
      } else {
        auto answered = co_await run(*match.route, [&] { return router->call(*match.route, req); });
        res = answered ? std::move(*answered)
                       : error_response(errc::unavailable, "too many requests in progress");
      }
      keep_alive = keep_alive && !stopped;
      co_await write_response(stream, std::move(res), is_head, keep_alive, ec);
      if (ec || !keep_alive) break;
    }
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket = co_await acceptor.async_accept(use_ec(ec));
      if (ec) {
        if (stopped || ec == asio::error::operation_aborted) co_return;
        continue;  // e.g. EMFILE: keep serving the connections we have
      }
      if (stopped) co_return;
      asio::co_spawn(io, self->serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> sweep_loop() {
    auto self = shared_from_this();
    boost::system::error_code ec;
    for (;;) {
      sweep_timer.expires_after(kSweepInterval);
      co_await sweep_timer.async_wait(use_ec(ec));
      if (stopped && sessions.empty()) co_return;
      const auto now = StreamSession::Clock::now();
      for (auto* s : sessions) s->sweep(now);
    }
  }

  void stop_on_io() {
    boost::system::error_code ec;
    acceptor.close(ec);
    for (auto* c : conns)
      if (c->idle) c->stream->close();
    for (auto* s : sessions) s->shutdown();
    sweep_timer.cancel();  // the sweep loop ends at once when no stream is left
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

namespace {

std::shared_ptr<const Router> single_handler_router(Handler handler) {
  auto router = std::make_shared<Router>();
  router->fallback(std::move(handler), kPublic);
  return router;
}

}  // namespace

Server::Server(asio::io_context& io, ServerOptions options, Handler handler)
    : Server(io, std::move(options), single_handler_router(std::move(handler))) {}

Server::Server(asio::io_context& io, ServerOptions options, std::shared_ptr<const Router> router)
    : state_(std::make_shared<State>(io, std::move(options), std::move(router))) {
  if (!state_->router) throw std::invalid_argument("http::Server: no router");
}

Server::~Server() {
  stop();
  // Blocking handlers still running finish first: they may use objects that die after us.
  if (state_->own_pool) state_->own_pool->join();
}

void Server::start() {
  auto& s = *state_;
  auto& o = s.options;
  if (s.router->has_blocking_routes()) {
    if (o.blocking_pool) {
      s.pool = o.blocking_pool;
    } else {
      s.own_pool = std::make_unique<asio::thread_pool>(std::max<std::size_t>(1, o.blocking_threads));
      s.pool = s.own_pool.get();
    }
  }
  tcp::endpoint ep(listen_address(o.host), o.port);
  boost::system::error_code ec;
  auto& a = s.acceptor;
  a.open(ep.protocol(), ec);
  if (!ec && ep.address().is_v6()) a.set_option(asio::ip::v6_only(false), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec && o.reuse_port) a.set_option(reuse_port(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error(
        fmt::format("cannot listen on {}:{}: {}", o.host.empty() ? "*" : o.host, o.port, ec.message()));
  port_ = a.local_endpoint().port();
  asio::co_spawn(s.io, s.accept_loop(), asio::detached);
  asio::co_spawn(s.io, s.sweep_loop(), asio::detached);
}

void Server::stop() {
  if (!state_ || state_->stopped.exchange(true)) return;
  // On the owning io_context: the accept loop, connections and streams live there.
  asio::post(state_->io, [s = state_] { s->stop_on_io(); });
}

std::size_t Server::connections() const { return state_->connections.load(); }

std::size_t Server::streams() const { return state_->streams.load(); }

}  // namespace ts::http

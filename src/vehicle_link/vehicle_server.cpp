#include "vehicle_link/vehicle_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <fmt/format.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "core/log.hpp"
#include "http/server.hpp"
#include "pki/tls_context.hpp"
#include "runtime/tls_stream.hpp"
#include "vehicle_link/link_metrics.hpp"
#include "vehicle_link/rate_limiter.hpp"
#include "vehicle_link/socket_id.hpp"
#include "wire/envelope.hpp"

namespace ts::vehicle_link {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
// OpenSSL straight on the socket: no intermediate TLS buffers per connection (an idle vehicle
// costs a few KiB instead of ~90 KiB with asio::ssl::stream).
using TlsStream = runtime::TlsStream;
using WsStream = websocket::stream<TlsStream>;

namespace {

// Bytes asked of the WebSocket per read: a 1 MB record arrives in 16 reads.
constexpr std::size_t kReadChunkBytes = 64 * 1024;
// After a message that grew the read buffer past this, the buffer is released.
constexpr std::size_t kKeepReadBufferBytes = 64 * 1024;

inline auto use_ec(boost::system::error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t unix_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// spec §2.2: TCP keep-alive is the only dead-peer detection on an idle vehicle socket (Go's
// defaults: 15 s idle, 15 s interval).
void set_keepalive(tcp::socket& s) {
  boost::system::error_code ec;
  s.set_option(asio::socket_base::keep_alive(true), ec);
  const int idle = 15, interval = 15, count = 9;
  ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  s.set_option(tcp::no_delay(true), ec);  // acks are small and latency-bound
}

std::string peer_of(const tcp::socket& s) {
  boost::system::error_code ec;
  auto ep = s.remote_endpoint(ec);
  return ec ? std::string("?") : fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

}  // namespace

// Lives on one shard; touched only by that shard's thread.
struct SessionHandle {
  bool closing = false;
  bool reading = false;  // an async_read is pending and no write is: a close may start now
  WsStream* ws = nullptr;
  runtime::Deadline* deadline = nullptr;
  const beast::flat_buffer* frame = nullptr;  // the read buffer (read_buffer_capacity_for_test)
};

struct VehicleServer::Shared {
  runtime::ShardPool& pool;
  asio::ssl::context& tls;
  LinkOptions opt;
  LinkMetrics metrics;
  std::shared_ptr<spdlog::logger> log = ts::log::get("link");
  std::atomic<std::uint16_t> port{0};
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> handshakes{0};
  std::atomic<std::int64_t> last_handshake_log_ms{0};
  std::atomic<std::uint64_t> handshake_errors_unlogged{0};
  std::atomic<std::int64_t> last_identity_refused_log_ms{0};
  const std::vector<dispatch::Dispatcher*>* connectivity_route = nullptr;
  std::mutex identities_mutex;  // guards open_per_identity (connect and disconnect only)
  std::unordered_map<std::string, std::size_t> open_per_identity;  // device_id -> sessions

  Shared(runtime::ShardPool& p, asio::ssl::context& t, LinkOptions o, core::MetricsRegistry& m)
      : pool(p), tls(t), opt(std::move(o)), metrics(m, opt.pipeline.configured_record_types) {
    auto it = opt.routes.find("connectivity");
    if (it != opt.routes.end()) connectivity_route = &it->second;
  }

  bool tracked(const std::string& vin) const {
    return std::find(opt.tracked_vins.begin(), opt.tracked_vins.end(), vin) !=
           opt.tracked_vins.end();
  }

  // Scanners, browsers and health checks cause handshake failures all day (spec §14.4): log
  // at most one line per 10 s with a count, or none with SUPPRESS_TLS_HANDSHAKE_ERROR_LOGGING.
  void log_handshake_error(const std::string& peer, const boost::system::error_code& ec) {
    if (opt.suppress_tls_handshake_error_logging) return;
    const auto now = unix_ms();
    auto last = last_handshake_log_ms.load();
    if (now - last < 10'000 || !last_handshake_log_ms.compare_exchange_strong(last, now)) {
      handshake_errors_unlogged.fetch_add(1);
      return;
    }
    const auto more = handshake_errors_unlogged.exchange(0);
    log->warn("TLS handshake error from {}: {}{}", peer, ec.message(),
              more ? fmt::format(" (and {} more in the last 10 s)", more) : "");
  }

  // Takes one of the identity's max_connections_per_identity slots; false when all are taken.
  bool acquire_identity(const std::string& device_id) {
    std::lock_guard lock(identities_mutex);
    auto& n = open_per_identity[device_id];
    if (n >= opt.max_connections_per_identity) {
      if (n == 0) open_per_identity.erase(device_id);
      return false;
    }
    ++n;
    return true;
  }

  void release_identity(const std::string& device_id) {
    std::lock_guard lock(identities_mutex);
    auto it = open_per_identity.find(device_id);
    if (it != open_per_identity.end() && --it->second == 0) open_per_identity.erase(it);
  }

  void emit_connectivity(const pipeline::SocketContext& ctx, int status) {
    if (connectivity_route == nullptr) return;
    auto record = pipeline::make_connectivity_record(ctx, status, unix_ns());
    for (auto* d : *connectivity_route) d->dispatch_detached(record);
  }
};

struct VehicleServer::ShardState {
  asio::io_context& io;
  tcp::acceptor acceptor;
  ShardMetricsCache cache;
  std::unordered_set<SessionHandle*> sessions;

  ShardState(asio::io_context& i, LinkMetrics& m) : io(i), acceptor(i), cache(m) {}
};

namespace {


template <class SharedT, class ShardT>
asio::awaitable<bool> handle_frame(SharedT& sh, ShardT& st, WsStream& ws,
                                   const pipeline::SocketContext& ctx, RateLimiter& limiter,
                                   std::span<const std::uint8_t> frame, bool oversize) {
  auto& m = sh.metrics;
  const auto& opt = sh.opt;
  // An oversize message was discarded while it was read (spec §4 step 2 needs only its size).
  auto outcome = oversize ? pipeline::Outcome{.kind = pipeline::OutcomeKind::TooBig}
                          : pipeline::process(frame, ctx, opt.pipeline, unix_ms());

  // spec §4 step 1: the limiter is asked first; a refusal only counts unless limiting is on.
  if (!limiter.allow(RateLimiter::Clock::now())) {
    const bool ok = outcome.kind == pipeline::OutcomeKind::Ok;
    // The topic is the vehicle's text: only known or configured types become label values.
    const std::string& type = m.record_type_label(ok ? outcome.record.tx_type : "");
    const double signals = ok ? outcome.record.signals_count() : 0;
    m.signal_count.with({type}).add(signals);
    if (sh.tracked(ctx.vin)) m.vin_signal_count.with({type, ctx.vin}).add(signals);
    m.rate_limit_exceeded_total.with({ctx.vin, type}).inc();
    if (opt.rate_limit.enabled) co_return true;  // dropped: no reply, no dispatch (spec §6)
  }

  switch (outcome.kind) {
    case pipeline::OutcomeKind::TooBig:
      m.record_too_big_total.inc();
      m.unexpected_record_err_total.inc();
      m.bad_record.with({"too big"}).inc();
      break;
    case pipeline::OutcomeKind::Bad:
      m.unexpected_record_err_total.inc();
      m.bad_record.with({std::string(pipeline::to_string(outcome.reason))}).inc();
      sh.log->debug("[vin={}] unexpected_record txid={}: {}", ctx.vin, outcome.txid,
                    pipeline::to_string(outcome.reason));
      break;
    case pipeline::OutcomeKind::UnknownType:
      m.unknown_message_type_error_total.with({std::to_string(outcome.message_type)}).inc();
      break;
    case pipeline::OutcomeKind::Ok:
      break;
  }

  bool deferred = false;
  bool reliable_ok = false;
  dispatch::Dispatcher* reliable = nullptr;
  if (outcome.kind == pipeline::OutcomeKind::Ok ||
      outcome.kind == pipeline::OutcomeKind::UnknownType) {
    const std::string& type = outcome.record.tx_type;
    auto& c = st.cache.for_type(type);
    c.records->inc();
    c.bytes->inc(outcome.payload_size);
    if (outcome.kind == pipeline::OutcomeKind::Ok) {
      auto rel = opt.reliable_ack_sources.find(type);
      if (rel != opt.reliable_ack_sources.end()) {
        reliable = rel->second;
        deferred = true;
      }
    }
    auto route = opt.routes.find(type);
    if (route != opt.routes.end()) {
      // spec §8.1: producers in configured order; the ACK waits for all of them (§4 step 7).
      for (auto* d : route->second) {
        const bool ok = co_await d->dispatch(outcome.record);
        if (d == reliable) reliable_ok = ok;
      }
    }
    c.dispatched->inc();
  }

  auto replies = pipeline::immediate_replies(outcome, deferred);
  if (deferred && reliable_ok) {
    // spec §9: counted when the ACK is queued to the live socket.
    replies.push_back(wire::build_ack(outcome.txid, outcome.record.tx_type));
    m.reliable_ack.with({m.record_type_label(outcome.record.tx_type), std::string(reliable->name())})
        .inc();
  }
  runtime::Deadline deadline(ws.next_layer());
  for (const auto& reply : replies) {
    boost::system::error_code ec;
    deadline.arm(opt.write_timeout);
    co_await ws.async_write(asio::buffer(reply), use_ec(ec));
    deadline.disarm();
    if (ec) {
      m.socket_err_total.inc();
      if (deferred && reliable_ok)
        m.reliable_ack_miss
            .with({m.record_type_label(outcome.record.tx_type), std::string(reliable->name())})
            .inc();
      co_return false;
    }
  }
  co_return true;
}

template <class SharedT>
asio::awaitable<void> respond_plain(SharedT&, TlsStream& tls, unsigned status, std::string body,
                                    bool websocket_version_header) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
  if (websocket_version_header) res.set("Sec-Websocket-Version", "13");
  res.body() = std::move(body);
  res.keep_alive(false);
  res.prepare_payload();
  boost::system::error_code ec;
  runtime::Deadline deadline(tls);
  deadline.arm(std::chrono::seconds(10));
  co_await bhttp::async_write(tls, res, use_ec(ec));
  if (!ec) co_await tls.async_shutdown(use_ec(ec));
  tls.close(ec);
}

template <class SharedT, class ShardT>
asio::awaitable<void> session(std::shared_ptr<SharedT> sh, std::shared_ptr<ShardT> st,
                              tcp::socket socket) {
  boost::system::error_code ec;
  set_keepalive(socket);
  const std::string peer = peer_of(socket);
  TlsStream tls(std::move(socket), sh->tls.native_handle(), TlsStream::Role::server);
  sh->handshakes.fetch_add(1, std::memory_order_relaxed);
  runtime::Deadline handshake_deadline(tls);  // TLS handshake and upgrade request, together
  handshake_deadline.arm(sh->opt.handshake_timeout);
  co_await tls.async_handshake(use_ec(ec));
  if (ec) {
    sh->metrics.tls_handshake_failed.inc();
    sh->log_handshake_error(peer, ec);
    co_return;
  }
  // spec §2.3: identity from the leaf of the verified chain only. Read now, while OpenSSL still
  // has the chain; acted on after the upgrade, as the reference does.
  auto identity = pki::identity_from_connection(tls.native_handle());
  if (sh->opt.tls_native_records && tls.take_over_records()) sh->metrics.tls_native_records.inc();

  bhttp::request<bhttp::empty_body> req;
  {
    // Scoped: the read buffer and parser must not live as long as the connection.
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::empty_body> parser;
    parser.header_limit(8 * 1024);
    co_await bhttp::async_read(tls, buffer, parser, use_ec(ec));
    if (ec) co_return;
    req = parser.release();
  }
  handshake_deadline.disarm();

  // spec §2.4: /status answers without an upgrade; every other path is the WebSocket endpoint.
  if (req.target() == "/status") {
    sh->metrics.status_requests.inc();
    co_await respond_plain(*sh, tls, 200, "mtls ok", false);
    co_return;
  }
  if (!websocket::is_upgrade(req)) {
    sh->metrics.bad_upgrade.inc();
    const bool get = req.method() == bhttp::verb::get;
    co_await respond_plain(*sh, tls, get ? 400 : 405, get ? "Bad Request" : "Method Not Allowed",
                           true);
    co_return;
  }

  WsStream ws(std::move(tls));
  // spec §2.5: the reference never pings and sets no read deadline (vehicles may idle for
  // hours); TCP keep-alive finds dead peers. Only the handshake is timed here.
  ws.set_option(websocket::stream_base::timeout{sh->opt.handshake_timeout,
                                                websocket::stream_base::none(), false});
  ws.read_message_max(sh->opt.max_message_bytes);
  ws.binary(true);
  ws.auto_fragment(false);
  co_await ws.async_accept(req, use_ec(ec));
  if (ec) {
    sh->metrics.bad_upgrade.inc();
    co_return;
  }

  // spec §2.3: on an identity failure the upgraded socket is closed without a close frame and
  // no connectivity event is emitted.
  if (!identity) {
    sh->metrics.identity_rejected.with({identity.error().message()}).inc();
    sh->log->warn("rejected vehicle certificate from {}: {}", peer, identity.error().message());
    ws.next_layer().close(ec);
    co_return;
  }

  // Per-identity cap (extension, docs/config.md): the new connection is refused, with close
  // code 1013 (try again later), so the vehicle's established sessions keep their data flowing.
  if (!sh->acquire_identity(identity->device_id)) {
    sh->metrics.connections_per_identity_refused.inc();
    // At most one line per 10 s: a vehicle in a reconnect loop must not flood the log.
    const auto now = unix_ms();
    auto last = sh->last_identity_refused_log_ms.load();
    if (now - last >= 10'000 && sh->last_identity_refused_log_ms.compare_exchange_strong(last, now))
      sh->log->warn("[vin={}] refused a connection from {}: {} connections with this certificate "
                    "are open (max_connections_per_identity; see "
                    "teslasync_link_connections_per_identity_refused_total for the count)",
                    identity->device_id, peer, sh->opt.max_connections_per_identity);
    runtime::Deadline refuse_deadline(ws.next_layer());
    refuse_deadline.arm(std::chrono::seconds(2));
    co_await ws.async_close(websocket::close_reason(websocket::close_code::try_again_later),
                            use_ec(ec));
    refuse_deadline.disarm();
    ws.next_layer().close(ec);
    co_return;
  }

  pipeline::SocketContext ctx{
      .vin = identity->device_id,
      .sender_id = identity->sender_id(),
      .client_version = std::string(req["Version"]),
      .socket_id = socket_id_from_header(req["X-TXID"]),
      .network_interface = std::string(req["X-Network-Interface"]),
  };
  runtime::Deadline close_deadline(ws.next_layer());
  req = {};  // the upgrade request is not needed past here; an idle vehicle should not keep it
  SessionHandle handle{.ws = &ws, .deadline = &close_deadline};
  st->sessions.insert(&handle);
  sh->metrics.connections.fetch_add(1);
  sh->metrics.connections_accepted.inc();
  sh->log->debug("[c={} vin={}] connected from {} ({})", ctx.socket_id, ctx.vin, peer,
                 identity->client_type);
  sh->emit_connectivity(ctx, 1);

  RateLimiter limiter(sh->opt.rate_limit.message_limit, sh->opt.rate_limit.interval);
  // Holds at most one record (spec §4 step 2: 1,000,000 bytes) plus one read; the rest of a
  // larger message is read and dropped as it arrives.
  beast::flat_buffer frame(wire::kMaxFrameBytes + kReadChunkBytes);
  handle.frame = &frame;
  while (!handle.closing) {
    handle.reading = true;
    bool oversize = false;
    bool text = false;
    do {
      co_await ws.async_read_some(frame, kReadChunkBytes, use_ec(ec));
      if (ec) break;
      if (!ws.got_binary()) {
        text = true;
        break;
      }
      if (oversize || frame.size() > wire::kMaxFrameBytes) {
        oversize = true;
        frame.consume(frame.size());
      }
    } while (!ws.is_message_done());
    handle.reading = false;
    if (ec) break;
    if (text) {
      // spec §2.5: a TEXT message ends the session: no reply, no close frame.
      sh->metrics.text_frame_closed.inc();
      break;
    }
    if (oversize) sh->metrics.oversize_frames_discarded.inc();
    const auto data = frame.cdata();
    const bool alive = co_await handle_frame(
        *sh, *st, ws, ctx, limiter,
        std::span(static_cast<const std::uint8_t*>(data.data()), data.size()), oversize);
    frame.consume(frame.size());
    // An idle vehicle should not keep the memory of its largest message.
    if (frame.capacity() > kKeepReadBufferBytes) frame.shrink_to_fit();
    if (!alive) break;
  }
  if (handle.closing && ws.is_open()) {
    // Shutdown arrived while this session was busy with a frame: close now that it is done.
    close_deadline.arm(std::chrono::seconds(2));
    co_await ws.async_close(websocket::close_code::going_away, use_ec(ec));
  }
  close_deadline.disarm();
  ws.next_layer().close(ec);
  st->sessions.erase(&handle);
  sh->release_identity(ctx.vin);
  sh->metrics.connections.fetch_sub(1);
  sh->log->debug("[c={} vin={}] disconnected", ctx.socket_id, ctx.vin);
  sh->emit_connectivity(ctx, 2);
}

}  // namespace

VehicleServer::VehicleServer(runtime::ShardPool& shards, asio::ssl::context& tls,
                             LinkOptions options, core::MetricsRegistry& metrics)
    : shared_(std::make_shared<Shared>(shards, tls, std::move(options), metrics)) {
  if (shared_->opt.tls_native_records) runtime::enable_tls13_record_takeover(tls.native_handle());
  for (std::size_t i = 0; i < shards.size(); ++i)
    shards_.push_back(std::make_shared<ShardState>(shards.shard(i), shared_->metrics));
}

VehicleServer::~VehicleServer() { shutdown_input(); }

void VehicleServer::start() {
  const auto& opt = shared_->opt;
  const auto address = http::listen_address(opt.host);
  std::uint16_t port = opt.port;
  for (auto& st : shards_) {
    boost::system::error_code ec;
    tcp::endpoint ep(address, port);
    auto& a = st->acceptor;
    a.open(ep.protocol(), ec);
    if (!ec && ep.address().is_v6()) a.set_option(asio::ip::v6_only(false), ec);
    if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
    // One acceptor per shard on the same port; the kernel spreads connections (STYLE.md).
    if (!ec) a.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true), ec);
    if (!ec) a.bind(ep, ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      throw std::runtime_error(fmt::format("cannot listen on {}:{}: {}",
                                           opt.host.empty() ? "*" : opt.host, port, ec.message()));
    port = a.local_endpoint().port();  // port 0: the others join the port the first one got
  }
  shared_->port = port;
  for (auto& st : shards_) {
    auto sh = shared_;
    asio::co_spawn(
        st->io,
        [sh, st]() -> asio::awaitable<void> {
          for (;;) {
            boost::system::error_code ec;
            tcp::socket s = co_await st->acceptor.async_accept(use_ec(ec));
            if (ec) {
              if (sh->stopping || ec == asio::error::operation_aborted) co_return;
              // EMFILE and friends: keep serving the connections we have, retry shortly.
              sh->log->warn("accept failed: {}", ec.message());
              asio::steady_timer t(st->io, std::chrono::milliseconds(50));
              co_await t.async_wait(use_ec(ec));
              continue;
            }
            asio::co_spawn(st->io, session(sh, st, std::move(s)), [sh](std::exception_ptr e) {
              // Nothing throws past a session (STYLE.md): log and drop that one connection.
              if (!e) return;
              try {
                std::rethrow_exception(e);
              } catch (const std::exception& x) {
                sh->log->error("session ended by an exception: {}", x.what());
              }
            });
          }
        },
        asio::detached);
  }
}

std::uint16_t VehicleServer::port() const { return shared_->port; }

std::int64_t VehicleServer::connections() const { return shared_->metrics.connections.load(); }

std::uint64_t VehicleServer::handshakes() const { return shared_->handshakes.load(); }

std::size_t VehicleServer::read_buffer_capacity_for_test() {
  std::size_t total = 0;
  for (auto& st : shards_) {
    std::promise<std::size_t> done;
    asio::post(st->io, [&st, &done] {
      std::size_t sum = 0;
      for (auto* h : st->sessions)
        if (h->frame != nullptr) sum += h->frame->capacity();
      done.set_value(sum);
    });
    total += done.get_future().get();
  }
  return total;
}

void VehicleServer::shutdown_input() {
  if (shared_->stopping.exchange(true)) return;
  for (auto& st : shards_)
    asio::post(st->io, [st] {
      boost::system::error_code ec;
      st->acceptor.close(ec);
    });
}

bool VehicleServer::close_sessions(std::chrono::milliseconds deadline) {
  for (auto& st : shards_)
    asio::post(st->io, [st] {
      for (auto* h : st->sessions) {
        h->closing = true;
        if (!h->reading) continue;  // mid-frame: the session closes after its replies
        // Idle in a read: start the close handshake beside it (one read and one close may be
        // pending together); the read then ends with `closed`. Bounded if the peer is silent.
        h->deadline->arm(std::chrono::seconds(2));
        h->ws->async_close(websocket::close_code::going_away, [](boost::system::error_code) {});
      }
    });
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (connections() > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return connections() == 0;
}

}  // namespace ts::vehicle_link

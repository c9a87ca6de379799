#include "dispatch/mqtt/mqtt_client.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cstring>
#include <future>
#include <stdexcept>

#include "core/log.hpp"
#include "mqtt/codec.hpp"
#include "mqtt/transport.hpp"

namespace ts::dispatch {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kFirstBackoff{250};
constexpr std::chrono::seconds kLogInterval{10};
constexpr std::size_t kReadBufferBytes = 16 * 1024;

/// Lets one log line through per interval, from any thread; counts what it held back.
class RateLimiter {
 public:
  explicit RateLimiter(std::chrono::steady_clock::duration interval) : interval_(interval) {}
  /// True if the caller should log now; `suppressed` then holds the lines skipped since.
  bool allow(std::uint64_t& suppressed) {
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    auto last = last_.load(std::memory_order_relaxed);
    if (last != 0 && now - last < interval_.count()) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    if (!last_.compare_exchange_strong(last, now)) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    suppressed = skipped_.exchange(0);
    return true;
  }

 private:
  std::chrono::steady_clock::duration interval_;
  std::atomic<std::chrono::steady_clock::rep> last_{0};
  std::atomic<std::uint64_t> skipped_{0};
};

void invoke(MqttClient::Callback& done, bool ok, spdlog::logger& log) {
  if (!done) return;
  try {
    done(ok);
  } catch (const std::exception& e) {
    log.error("publish completion callback threw: {}", e.what());
  } catch (...) {
    log.error("publish completion callback threw");
  }
}

}  // namespace

struct MqttClient::Impl {
  using BatchIt = std::list<Batch>::iterator;

  // A packet identifier in use by an unconfirmed QoS 1/2 PUBLISH.
  struct Slot {
    BatchIt batch{};
    std::uint8_t qos = 0;
    bool used = false;
  };

  MqttClient& c;
  const MqttClientOptions& opt;
  std::shared_ptr<spdlog::logger> log = ts::log::get("mqtt");
  RateLimiter connect_log{kLogInterval}, reject_log{kLogInterval}, lost_log{kLogInterval};

  asio::io_context io{1};
  ssl::context tls_ctx{ssl::context::tls_client};
  std::unique_ptr<ssl::stream<tcp::socket>> stream;
  asio::steady_timer backoff_timer{io}, deadline{io}, wake{io}, ping_timer{io}, tasks_done{io};
  std::promise<void> finished;

  // Everything below: client thread only.
  bool stopping = false;
  bool session_up = false;
  bool disconnect_requested = false;
  bool writer_idle = false;
  bool ping_outstanding = false;
  bool stalled = false;  // the writer ran out of packet identifiers
  int tasks_running = 0;
  std::uint64_t attempt = 0;  // connection attempt number; stale deadline handlers compare it
  error_code close_reason;    // why the session was closed by us (ping timeout, stop, ...)

  std::list<Batch> live;  // taken from pending_, not yet completed, in arrival order
  BatchIt cursor;         // first batch with messages not yet encoded, or live.end()
  std::vector<Slot> slots = std::vector<Slot>(65536);
  std::uint16_t last_id = 0;
  std::size_t ids_in_use = 0;

  std::string control;  // PUBREL / PINGREQ waiting for the writer
  std::string out;      // the write being encoded or in flight
  std::vector<std::pair<BatchIt, std::size_t>> written_qos0;  // QoS 0 messages in `out`
  std::size_t publishes_in_out = 0;
  std::string in = std::string(kReadBufferBytes, '\0');
  std::size_t in_begin = 0, in_end = 0;

  Impl(MqttClient& client, const MqttClientOptions& options)
      : c(client), opt(options), cursor(live.end()) {
    out.reserve(opt.max_write_bytes + 64 * 1024);
    configure_tls();
  }

  void configure_tls() {
    mqtt::configure_client_tls(
        tls_ctx, {.tls = opt.tls, .ca_file = opt.ca_file, .cert_file = opt.cert_file, .key_file = opt.key_file},
        "mqtt");
  }


  // ---- socket helpers -------------------------------------------------------------------

  template <class Buffers>
  asio::awaitable<std::size_t> write(const Buffers& buffers, error_code& ec) {
    return mqtt::write(*stream, opt.tls, buffers, ec);
  }

  asio::awaitable<std::size_t> read_some(asio::mutable_buffer buffer, error_code& ec) {
    return mqtt::read_some(*stream, opt.tls, buffer, ec);
  }

  void close_socket(error_code reason) {
    if (!close_reason) close_reason = reason;
    if (stream) {
      error_code ignored;
      stream->next_layer().close(ignored);
    }
  }

  // The next packet from the broker; bytes after it stay buffered.
  asio::awaitable<error_code> next_packet(mqtt::Packet& packet) {
    for (;;) {
      auto r = mqtt::decode_packet(std::string_view(in.data() + in_begin, in_end - in_begin));
      if (r.status == mqtt::DecodeStatus::Ok) {
        packet = r.packet;
        in_begin += r.consumed;
        if (in_begin == in_end) in_begin = in_end = 0;
        co_return error_code{};
      }
      if (r.status == mqtt::DecodeStatus::Malformed) co_return mqtt::errc::malformed_packet;
      if (in_begin > 0) {  // compact: the incomplete packet moves to the front
        std::memmove(in.data(), in.data() + in_begin, in_end - in_begin);
        in_end -= in_begin;
        in_begin = 0;
      }
      error_code ec;
      const std::size_t n =
          co_await read_some(asio::buffer(in.data() + in_end, in.size() - in_end), ec);
      if (ec) co_return ec;
      in_end += n;
      // While QoS 1/2 acks are expected, acknowledge the broker's segments at once: a delayed
      // TCP ACK would hold back its next small PUBACK behind Nagle for ~40 ms.
      if (ids_in_use > 0) {
        const int one = 1;
        ::setsockopt(stream->next_layer().native_handle(), IPPROTO_TCP, TCP_QUICKACK, &one,
                     sizeof one);
      }
    }
  }

  // ---- batches ---------------------------------------------------------------------------

  void complete(BatchIt it, bool ok) {
    c.unconfirmed_.fetch_sub(it->messages.size(), std::memory_order_relaxed);
    Callback done = std::move(it->done);
    if (cursor == it) cursor = std::next(it);
    live.erase(it);
    if (!ok) c.stats_.failed_batches.inc();
    invoke(done, ok, *log);
  }

  void confirm(BatchIt it, std::size_t n) {
    it->outstanding -= n;
    if (it->outstanding == 0 && it->next == it->messages.size()) complete(it, true);
  }

  // Moves what callers queued to `live` (one lock, O(1) splice).
  void take_pending() {
    std::lock_guard lock(c.mutex_);
    if (c.pending_.empty()) return;
    const BatchIt first = c.pending_.begin();
    live.splice(live.end(), c.pending_);
    if (cursor == live.end()) cursor = first;
  }

  // Fails every batch that is not yet confirmed: queued, encoded, written or awaiting acks.
  void fail_all() {
    {
      std::lock_guard lock(c.mutex_);
      c.accepting_ = false;
      c.scheduled_ = false;
      live.splice(live.end(), c.pending_);
    }
    std::fill(slots.begin(), slots.end(), Slot{});
    ids_in_use = 0;
    stalled = false;
    control.clear();
    written_qos0.clear();
    std::list<Batch> failed = std::move(live);
    live.clear();
    cursor = live.end();
    for (auto& b : failed) {
      c.unconfirmed_.fetch_sub(b.messages.size(), std::memory_order_relaxed);
      c.stats_.failed_batches.inc();
      invoke(b.done, false, *log);
    }
  }

  std::uint16_t allocate_id() {
    if (ids_in_use >= 65535) return 0;
    do {
      last_id = last_id == 65535 ? 1 : static_cast<std::uint16_t>(last_id + 1);
    } while (slots[last_id].used);
    ++ids_in_use;
    return last_id;
  }

  void release_id(std::uint16_t id) {
    slots[id] = Slot{};
    --ids_in_use;
    if (stalled) {  // the writer waits for room in the in-flight window
      stalled = false;
      wake_writer();
    }
  }

  // Encodes control packets, then pending publishes, into `out` until it reaches the cap.
  void fill() {
    out.clear();
    publishes_in_out = 0;
    out += control;
    control.clear();
    while (cursor != live.end() && out.size() < opt.max_write_bytes) {
      Batch& b = *cursor;
      if (b.next == b.messages.size()) {
        ++cursor;
        continue;
      }
      Message& m = b.messages[b.next];
      const int qos = std::min<int>(m.qos, 2);
      std::uint16_t id = 0;
      if (qos > 0 && ids_in_use >= opt.max_inflight) {  // the broker's receive window
        stalled = true;
        break;
      }
      if (qos > 0) {
        id = allocate_id();
        if (id == 0) {
          stalled = true;
          break;
        }
        slots[id] = Slot{cursor, static_cast<std::uint8_t>(qos), true};
      }
      mqtt::encode_publish(out, m.topic, m.payload, qos, m.retain, id);
      ++b.next;
      ++publishes_in_out;
      if (qos == 0) {
        if (!written_qos0.empty() && written_qos0.back().first == cursor)
          ++written_qos0.back().second;
        else
          written_qos0.emplace_back(cursor, 1);
      }
    }
  }

  void wake_writer() {
    if (writer_idle) wake.cancel();
  }

  // ---- per-session tasks -------------------------------------------------------------------

  asio::awaitable<void> writer() {
    while (session_up) {
      if (disconnect_requested) {  // stop(): DISCONNECT, then close (spec 3.14)
        out.clear();
        mqtt::encode_disconnect(out);
        error_code ec;
        co_await write(asio::buffer(out), ec);
        close_socket(mqtt::errc::shutting_down);
        co_return;
      }
      take_pending();
      fill();
      if (out.empty()) {
        bool idle = false;
        {
          std::lock_guard lock(c.mutex_);
          if (c.pending_.empty()) {
            c.scheduled_ = false;  // the next publish_batch posts a wake-up
            idle = true;
          }
        }
        if (!idle) continue;
        writer_idle = true;
        wake.expires_at(asio::steady_timer::time_point::max());
        error_code ignored;
        co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        writer_idle = false;
        continue;
      }
      error_code ec;
      co_await write(asio::buffer(out), ec);
      if (ec) {
        close_socket(ec);
        co_return;
      }
      c.stats_.writes.inc();
      c.stats_.bytes_written.inc(out.size());
      c.stats_.messages.inc(publishes_in_out);
      // QoS 0 is done once written. Completing may erase batches, never ones still listed
      // later in written_qos0 (each batch appears at most once per write).
      for (auto& [it, n] : written_qos0) confirm(it, n);
      written_qos0.clear();
    }
  }

  asio::awaitable<void> pinger() {
    const auto interval = std::chrono::seconds(opt.keep_alive_seconds);
    while (session_up) {
      ping_timer.expires_after(interval);
      error_code ec;
      co_await ping_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (!session_up) break;
      if (ping_outstanding) {  // the previous PINGREQ got no answer within keep-alive
        close_socket(mqtt::errc::ping_timeout);
        break;
      }
      ping_outstanding = true;
      mqtt::encode_pingreq(control);
      wake_writer();
    }
  }

  asio::awaitable<error_code> reader() {
    for (;;) {
      mqtt::Packet p;
      error_code ec = co_await next_packet(p);
      if (ec) co_return ec;
      switch (p.type) {
        case mqtt::PacketType::Puback: {
          Slot& s = slots[p.packet_id];
          if (s.used && s.qos == 1) {
            const BatchIt it = s.batch;
            release_id(p.packet_id);
            confirm(it, 1);
          } else {
            log->debug("PUBACK for unknown packet id {}", p.packet_id);
          }
          break;
        }
        case mqtt::PacketType::Pubrec:
          // spec 4.3.3: answer every PUBREC with PUBREL, even for an id we no longer track.
          mqtt::encode_pubrel(control, p.packet_id);
          wake_writer();
          break;
        case mqtt::PacketType::Pubcomp: {
          Slot& s = slots[p.packet_id];
          if (s.used && s.qos == 2) {
            const BatchIt it = s.batch;
            release_id(p.packet_id);
            confirm(it, 1);
          } else {
            log->debug("PUBCOMP for unknown packet id {}", p.packet_id);
          }
          break;
        }
        case mqtt::PacketType::Pingresp:
          ping_outstanding = false;
          break;
        default:  // CONNACK again, PUBREL (we never receive PUBLISH)
          co_return mqtt::errc::protocol_violation;
      }
    }
  }

  void task_finished(std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log->error("mqtt session task failed: {}", ex.what());
      }
      close_socket(mqtt::errc::protocol_violation);
    }
    --tasks_running;
    tasks_done.cancel();
  }

  template <class F>
  void spawn_task(F&& make) {
    ++tasks_running;
    asio::co_spawn(io, make(), [this](std::exception_ptr e) { task_finished(e); });
  }

  // ---- connection ----------------------------------------------------------------------------

  asio::awaitable<error_code> connect_once() {
    const std::uint64_t id = ++attempt;
    close_reason = {};
    in_begin = in_end = 0;
    stream = std::make_unique<ssl::stream<tcp::socket>>(io, tls_ctx);
    deadline.expires_after(opt.connect_timeout);
    deadline.async_wait([this, id](error_code ec) {
      if (!ec && id == attempt && !session_up) close_socket(asio::error::timed_out);
    });

    error_code ec;
    tcp::resolver resolver(io);
    auto endpoints = co_await resolver.async_resolve(opt.host, std::to_string(opt.port),
                                                     asio::redirect_error(asio::use_awaitable, ec));
    if (!ec && !stopping)
      co_await asio::async_connect(stream->next_layer(), endpoints,
                                   asio::redirect_error(asio::use_awaitable, ec));
    if (stopping) ec = mqtt::errc::shutting_down;
    if (!ec) stream->next_layer().set_option(tcp::no_delay(true), ec);
    if (!ec && opt.tls) {
      SSL* handle = stream->native_handle();
      error_code not_ip;
      asio::ip::make_address(opt.host, not_ip);
      if (not_ip) SSL_set_tlsext_host_name(handle, opt.host.c_str());
      if (opt.verify_hostname) {
        X509_VERIFY_PARAM* param = SSL_get0_param(handle);
        if (not_ip)
          X509_VERIFY_PARAM_set1_host(param, opt.host.c_str(), opt.host.size());
        else
          X509_VERIFY_PARAM_set1_ip_asc(param, opt.host.c_str());
      }
      co_await stream->async_handshake(ssl::stream_base::client,
                                       asio::redirect_error(asio::use_awaitable, ec));
    }
    if (!ec) {  // spec 3.1: CONNECT, then the broker's first packet must be CONNACK
      mqtt::ConnectFields f;
      f.client_id = opt.client_id;
      f.clean_session = true;
      f.keep_alive_seconds =
          static_cast<std::uint16_t>(std::clamp(opt.keep_alive_seconds, 0, 65535));
      f.has_username = !opt.username.empty();
      f.username = opt.username;
      f.has_password = f.has_username && !opt.password.empty();
      f.password = opt.password;
      out.clear();
      mqtt::encode_connect(out, f);
      co_await write(asio::buffer(out), ec);
    }
    if (!ec) {
      mqtt::Packet p;
      ec = co_await next_packet(p);
      if (!ec && p.type != mqtt::PacketType::Connack) ec = mqtt::errc::protocol_violation;
      if (!ec) ec = mqtt::connack_error(p.connack_code);
    }
    deadline.cancel();
    if (ec && close_reason) ec = close_reason;  // e.g. timed_out rather than "aborted"
    if (ec) close_socket(ec);
    co_return ec;
  }

  asio::awaitable<void> session() {
    {
      std::lock_guard lock(c.mutex_);
      c.accepting_ = true;
      c.scheduled_ = true;  // the writer looks at pending_ first
    }
    session_up = true;
    ping_outstanding = false;
    disconnect_requested = false;
    c.connected_.store(true);
    c.stats_.connects.inc();
    log->info("connected to broker {}:{}{}", opt.host, opt.port, opt.tls ? " (TLS)" : "");

    spawn_task([this] { return writer(); });
    if (opt.keep_alive_seconds > 0) spawn_task([this] { return pinger(); });
    error_code ec = co_await reader();

    // Tear down: stop accepting, abort the other tasks, wait for them, fail what is left.
    {
      std::lock_guard lock(c.mutex_);
      c.accepting_ = false;
    }
    c.connected_.store(false);
    session_up = false;
    close_socket(ec);
    wake.cancel();
    ping_timer.cancel();
    while (tasks_running > 0) {
      tasks_done.expires_at(asio::steady_timer::time_point::max());
      error_code ignored;
      co_await tasks_done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    const error_code reason = close_reason ? close_reason : ec;
    if (reason != mqtt::errc::shutting_down) {
      c.stats_.disconnects.inc();
      std::uint64_t suppressed = 0;
      if (lost_log.allow(suppressed))
        log->warn(
            "lost the connection to broker {}:{} ({}); {} unconfirmed messages fail; "
            "reconnecting{}",
            opt.host, opt.port, reason.message(), c.unconfirmed(),
            suppressed ? fmt::format(" ({} similar lines suppressed)", suppressed) : "");
    } else {
      log->info("disconnected from broker {}:{}", opt.host, opt.port);
    }
    fail_all();
  }

  asio::awaitable<void> run() {
    auto backoff = kFirstBackoff;
    const auto max_backoff = std::max(opt.max_backoff, kFirstBackoff);
    while (!stopping) {
      try {
        error_code ec = co_await connect_once();
        if (!ec) {
          backoff = kFirstBackoff;
          co_await session();
        } else if (!stopping) {
          c.stats_.connect_failures.inc();
          std::uint64_t suppressed = 0;
          if (connect_log.allow(suppressed))
            log->warn("cannot connect to broker {}:{}: {}; retrying with back-off up to {} ms{}",
                      opt.host, opt.port, ec.message(), max_backoff.count(),
                      suppressed ? fmt::format(" ({} similar lines suppressed)", suppressed) : "");
        }
      } catch (const std::exception& e) {
        log->error("mqtt connection failed unexpectedly: {}", e.what());
        c.connected_.store(false);
        session_up = false;
        close_socket(mqtt::errc::protocol_violation);
        fail_all();
      }
      if (stopping) break;
      backoff_timer.expires_after(backoff);
      error_code ignored;
      co_await backoff_timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      backoff = std::min(backoff * 2, max_backoff);
    }
    fail_all();
  }

  void request_stop() {
    stopping = true;
    backoff_timer.cancel();
    if (session_up) {
      disconnect_requested = true;
      wake.cancel();
    } else {
      close_socket(mqtt::errc::shutting_down);  // aborts a connection attempt
    }
  }
};

MqttClient::MqttClient(MqttClientOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>(*this, options_)) {}

MqttClient::~MqttClient() { stop(); }

void MqttClient::start() {
  std::call_once(started_, [this] {
    asio::co_spawn(impl_->io, impl_->run(), [this](std::exception_ptr e) {
      if (e) impl_->log->error("mqtt client loop ended with an exception");
      impl_->finished.set_value();
    });
    thread_ = std::thread([this] {
      try {
        impl_->io.run();
      } catch (const std::exception& e) {
        impl_->log->error("mqtt client thread: {}", e.what());
      }
    });
  });
}

void MqttClient::stop() {
  std::call_once(stopped_, [this] {
    if (thread_.joinable()) {
      asio::post(impl_->io, [this] { impl_->request_stop(); });
      // DISCONNECT and teardown take a round trip at most; never hang shutdown on the broker.
      if (impl_->finished.get_future().wait_for(2s) != std::future_status::ready) {
        impl_->log->warn("mqtt client did not stop within 2 s; abandoning the connection");
        impl_->io.stop();
      }
      thread_.join();
    }
    // The client thread is gone: whatever is left is ours to fail.
    impl_->fail_all();
  });
}

void MqttClient::publish_batch(std::vector<Message>&& messages, Callback done) {
  auto refuse = [&](core::Counter& why, Callback& cb) {
    why.inc();
    stats_.failed_batches.inc();
    invoke(cb, false, *impl_->log);
  };
  if (messages.empty()) {
    invoke(done, true, *impl_->log);
    return;
  }
  for (const auto& m : messages) {
    const bool topic_ok = mqtt::valid_topic_name(m.topic);
    if (!topic_ok || mqtt::publish_size(m.topic, m.payload.size(), m.qos) == 0) {
      std::uint64_t suppressed = 0;
      if (impl_->reject_log.allow(suppressed))
        impl_->log->warn(
            "not publishing a batch: {} (topic '{}', {} payload bytes){}",
            topic_ok ? "message too large" : "invalid topic name", m.topic, m.payload.size(),
            suppressed ? fmt::format(" ({} similar lines suppressed)", suppressed) : "");
      refuse(stats_.rejected_messages, done);
      return;
    }
  }
  const std::size_t n = messages.size();
  // The list node is allocated here, on the caller's thread, outside the lock.
  std::list<Batch> node;
  node.push_back(Batch{std::move(messages), std::move(done), 0, n});
  bool post = false;
  enum { Accepted, NotConnected, Overloaded } verdict = Accepted;
  {
    std::lock_guard lock(mutex_);
    if (!accepting_) {
      verdict = NotConnected;
    } else if (unconfirmed_.load(std::memory_order_relaxed) + n > options_.max_unconfirmed) {
      verdict = Overloaded;
    } else {
      unconfirmed_.fetch_add(n, std::memory_order_relaxed);
      pending_.splice(pending_.end(), node);
      post = !scheduled_;
      scheduled_ = true;
    }
  }
  if (verdict == NotConnected) return refuse(stats_.not_connected_rejected, node.front().done);
  if (verdict == Overloaded) return refuse(stats_.overload_rejected, node.front().done);
  if (post) asio::post(impl_->io, [impl = impl_.get()] { impl->wake.cancel(); });
}

}  // namespace ts::dispatch

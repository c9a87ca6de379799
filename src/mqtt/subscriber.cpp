#include "mqtt/subscriber.hpp"

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
#include <cstdlib>
#include <cstring>
#include <future>
#include <numeric>
#include <stdexcept>
#include <unordered_set>

#include "core/log.hpp"
#include "mqtt/codec.hpp"
#include "mqtt/transport.hpp"

namespace ts::mqtt {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kFirstBackoff{250};
constexpr std::chrono::milliseconds kFirstResubscribe{1'000};
// A session that lasted this long was not flapping: the next reconnect starts at kFirstBackoff.
constexpr std::chrono::seconds kStableSession{10};
constexpr std::chrono::seconds kLogInterval{10};
constexpr std::size_t kInitialReadBuffer = 64 * 1024;

/// Lets one log line through per interval; counts what it held back. Subscriber thread only.
class RateLimiter {
 public:
  explicit RateLimiter(std::chrono::steady_clock::duration interval) : interval_(interval) {}
  /// True if the caller should log now; `suppressed` then holds the lines skipped since.
  bool allow(std::uint64_t& suppressed) {
    const auto now = std::chrono::steady_clock::now();
    if (logged_ && now - last_ < interval_) {
      ++skipped_;
      return false;
    }
    logged_ = true;
    last_ = now;
    suppressed = skipped_;
    skipped_ = 0;
    return true;
  }

 private:
  std::chrono::steady_clock::duration interval_;
  std::chrono::steady_clock::time_point last_{};
  bool logged_ = false;
  std::uint64_t skipped_ = 0;
};

std::string suppressed_note(std::uint64_t n) {
  return n ? fmt::format(" ({} similar lines suppressed)", n) : std::string();
}

void validate(const SubscriberOptions& o) {
  if (o.client_id.empty())
    throw std::invalid_argument(
        "mqtt subscriber: client_id is required (the broker keeps the session under it)");
  if (o.client_id.size() > kMaxStringLength || o.client_id.find('\0') != std::string::npos)
    throw std::invalid_argument("mqtt subscriber: client_id is too long or contains U+0000");
  if (o.filters.empty())
    throw std::invalid_argument("mqtt subscriber: at least one topic filter is required");
  for (const std::string& f : o.filters) {
    if (!valid_topic_filter(f))
      throw std::invalid_argument("mqtt subscriber: invalid topic filter '" + f + "'");
  }
  std::vector<Subscription> subs;
  for (const std::string& f : o.filters) subs.push_back({f, 1});
  if (subscribe_size(subs) == 0)
    throw std::invalid_argument("mqtt subscriber: the topic filters do not fit in one SUBSCRIBE");
  if (o.qos > 2) throw std::invalid_argument("mqtt subscriber: qos must be 0, 1 or 2");
  if (o.keep_alive_seconds < 0 || o.keep_alive_seconds > 65'535)
    throw std::invalid_argument("mqtt subscriber: keep_alive_seconds must be 0..65535");
  if (o.max_packet_bytes == 0)
    throw std::invalid_argument("mqtt subscriber: max_packet_bytes must be > 0");
  if (o.connect_timeout <= 0ms || o.subscribe_timeout <= 0ms)
    throw std::invalid_argument("mqtt subscriber: timeouts must be > 0");
}

}  // namespace

struct Subscriber::Shared {
  SubscriberStats stats;
  std::atomic<bool> connected{false};
  std::atomic<bool> subscribed{false};
  std::atomic<bool> session_resumed{false};  // connected, and the CONNACK said session present
  std::atomic<bool> read_paused{false};  // the reader is holding the next packet back
  std::atomic<bool> user_paused{false};  // pause() .. resume()
  std::atomic<std::size_t> unacked{0};
  std::atomic<std::int64_t> last_message_ns{0};  // system_clock, since the epoch
  // teslasync_mqtt_subscription_attempts_total{result} children, set by register_metrics().
  std::atomic<core::Counter*> attempts_ok{nullptr};
  std::atomic<core::Counter*> attempts_refused{nullptr};
  std::atomic<core::Counter*> attempts_timeout{nullptr};
  std::atomic<core::Counter*> attempts_lost{nullptr};
};

struct Subscriber::Impl {
  // What we know about an inbound packet identifier (the broker's id space).
  enum class Slot : std::uint8_t {
    Free,
    Qos1Delivered,  // handed to on_message, waiting for ack()
    Qos2Delivered,  // likewise; ack() sends PUBREC
    Qos2Received,   // PUBREC sent, waiting for the broker's PUBREL
  };
  struct Inbound {
    std::uint64_t delivery = 0;
    Slot state = Slot::Free;
  };

  Subscriber& s;
  const SubscriberOptions& opt;
  Shared& sh;
  SubscriberStats& stats;
  std::shared_ptr<spdlog::logger> log = ts::log::get("mqtt");
  RateLimiter connect_log{kLogInterval}, lost_log{kLogInterval}, refused_log{kLogInterval},
      pause_log{kLogInterval}, drop_log{kLogInterval}, handler_log{kLogInterval};

  asio::io_context io{1};
  ssl::context tls_ctx{ssl::context::tls_client};
  std::unique_ptr<ssl::stream<tcp::socket>> stream;
  asio::steady_timer backoff_timer{io}, deadline{io}, wake{io}, ping_timer{io}, tasks_done{io},
      resume_timer{io}, suback_timer{io}, resubscribe_timer{io};
  std::promise<void> finished;

  // Everything below: subscriber thread only.
  bool stopping = false;
  bool session_up = false;
  bool disconnect_requested = false;
  bool writer_idle = false;
  bool ping_outstanding = false;
  bool reader_waiting = false;  // the reader holds the next packet back (back-pressure)
  bool had_session = false;     // a CONNACK was accepted before
  std::uint64_t pause_epoch = 0;  // +1 whenever the reader starts or stops waiting
  int tasks_running = 0;
  std::uint64_t attempt = 0;  // connection attempt number; stale deadline handlers compare it
  error_code close_reason;    // why the connection was closed by us (ping timeout, stop, ...)

  std::uint32_t generation = 0;    // accepted CONNACKs so far
  std::uint64_t next_delivery = 1;
  std::vector<Inbound> inbound = std::vector<Inbound>(65536);
  std::size_t delivered_unacked = 0;        // slots in Qos1Delivered or Qos2Delivered
  std::unordered_set<std::uint64_t> stale;  // deliveries of lost connections not yet acked
  std::vector<AckToken> taken_acks;         // drain buffer, swapped with s.acks_

  std::uint16_t last_subscribe_id = 0;
  std::uint16_t awaited_suback = 0;  // 0: no SUBSCRIBE outstanding
  std::size_t awaited_codes = 0;
  bool suback_arrived = false;
  std::string suback_codes;

  std::string control;  // packets waiting for the writer
  std::string out;      // the write in flight
  std::string in = std::string(kInitialReadBuffer, '\0');
  std::size_t in_begin = 0, in_end = 0;
  std::size_t discard = 0;  // payload bytes of an oversized PUBLISH still to skip
  const std::size_t max_buffer;

  Impl(Subscriber& subscriber, const SubscriberOptions& options, Shared& shared)
      : s(subscriber),
        opt(options),
        sh(shared),
        stats(shared.stats),
        max_buffer(std::max(options.max_packet_bytes + 5, kMaxPublishHeadBytes)) {
    configure_tls();
  }

  void configure_tls() {
    mqtt::configure_client_tls(
        tls_ctx, {.tls = opt.tls, .ca_file = opt.ca_file, .cert_file = opt.cert_file, .key_file = opt.key_file},
        "mqtt subscriber");
  }


  // ---- state helpers ------------------------------------------------------------------------

  std::size_t unacked() const { return delivered_unacked + stale.size(); }
  void publish_unacked() { sh.unacked.store(unacked(), std::memory_order_relaxed); }

  bool must_pause() const {
    return sh.user_paused.load(std::memory_order_relaxed) ||
           (opt.max_unacked > 0 && unacked() >= opt.max_unacked);
  }

  // Lets a waiting reader look again (after an ack, resume() or the end of the connection).
  void poke_reader() {
    if (reader_waiting) resume_timer.cancel();
  }

  void wake_writer() {
    if (writer_idle) wake.cancel();
  }

  static void count(core::Counter& c, const std::atomic<core::Counter*>& family) {
    c.inc();
    if (core::Counter* f = family.load(std::memory_order_acquire)) f->inc();
  }

  // ---- socket helpers -----------------------------------------------------------------------

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
    // Waits that are not on the socket end too.
    resume_timer.cancel();
    suback_timer.cancel();
    resubscribe_timer.cancel();
  }

  // Reads more bytes behind the unconsumed ones, growing the buffer for a large packet.
  asio::awaitable<error_code> fill_buffer() {
    if (in_begin == in_end) {
      in_begin = in_end = 0;
      if (in.size() > 4 * kInitialReadBuffer) {  // give back what one large packet took
        in.resize(kInitialReadBuffer);
        in.shrink_to_fit();
      }
    } else if (in_begin > 0) {  // compact: the incomplete packet moves to the front
      std::memmove(in.data(), in.data() + in_begin, in_end - in_begin);
      in_end -= in_begin;
      in_begin = 0;
    }
    if (in_end == in.size()) {
      // The decoder needs at most max_buffer bytes to finish any packet it accepts.
      if (in.size() >= max_buffer) co_return errc::malformed_packet;
      in.resize(std::min(in.size() * 2, max_buffer));
    }
    error_code ec;
    const std::size_t n =
        co_await read_some(asio::buffer(in.data() + in_end, in.size() - in_end), ec);
    if (ec) co_return ec;
    in_end += n;
    stats.bytes_read.inc(n);
    co_return error_code{};
  }

  std::string_view buffered() const {
    return std::string_view(in.data() + in_begin, in_end - in_begin);
  }

  void consume(std::size_t n) {
    in_begin += n;
    if (in_begin == in_end) in_begin = in_end = 0;
  }

  // ---- inbound messages ---------------------------------------------------------------------

  /// Hands a PUBLISH to on_message with a token that acknowledges it. `oversized_bytes` != 0:
  /// its payload was read past (Message::oversized_bytes), it is delivered without it.
  void deliver(const Packet& p, std::size_t oversized_bytes = 0) {
    sh.last_message_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count(),
                             std::memory_order_relaxed);
    Message m{p.topic, oversized_bytes != 0 ? std::string_view{} : p.payload, p.qos, p.retain,
              p.dup, AckToken{}};
    m.oversized_bytes = oversized_bytes;
    if (p.qos > 0) {
      Inbound& slot = inbound[p.packet_id];
      if (p.qos == 2 && slot.state == Slot::Qos2Received) {
        // spec 4.3.3: until PUBREL, the same id is the same message: answer, do not deliver.
        encode_pubrec(control, p.packet_id);
        wake_writer();
        stats.duplicates_suppressed.inc();
        return;
      }
      if (p.qos == 2 && slot.state == Slot::Qos2Delivered) {
        stats.duplicates_suppressed.inc();  // PUBREC follows when the first delivery is acked
        return;
      }
      if (slot.state == Slot::Qos1Delivered || slot.state == Slot::Qos2Delivered) {
        // The broker reused an id we have not acknowledged. The earlier delivery's token must
        // not acknowledge this message: it is kept as stale, like a lost connection's.
        stale.insert(slot.delivery);
        --delivered_unacked;
      }
      slot.delivery = next_delivery++;
      slot.state = p.qos == 1 ? Slot::Qos1Delivered : Slot::Qos2Delivered;
      ++delivered_unacked;
      publish_unacked();
      m.token.delivery_ = slot.delivery;
      m.token.generation_ = generation;
      m.token.packet_id_ = p.packet_id;
      m.token.qos_ = p.qos;
    }
    stats.messages_received.inc();
    const char* what = nullptr;
    std::string detail;
    try {
      s.on_message_(m);
    } catch (const std::exception& e) {
      what = "threw";
      detail = e.what();
    } catch (...) {
      what = "threw a non-standard exception";
    }
    if (what == nullptr) return;
    stats.handler_errors.inc();
    std::uint64_t suppressed = 0;
    if (handler_log.allow(suppressed))
      log->error("on_message {} for topic '{}'{}{}; the message stays unacknowledged{}", what,
                 m.topic, detail.empty() ? "" : ": ", detail, suppressed_note(suppressed));
    if (p.qos > 0) {  // not counted as unacked: nobody will ack it
      Inbound& slot = inbound[p.packet_id];
      if (slot.delivery == m.token.delivery_ &&
          (slot.state == Slot::Qos1Delivered || slot.state == Slot::Qos2Delivered)) {
        slot.state = Slot::Free;
        --delivered_unacked;
        publish_unacked();
      }
    }
  }

  // A PUBLISH over max_packet_bytes: its payload is read past (never buffered), and it is
  // delivered without it, with a token like any other: the application keeps a record of it
  // (a dead letter) and acknowledges it once that is durable. Loud, because the payload is lost.
  void drop_oversized(const Packet& p) {
    stats.oversized_dropped.inc();
    std::uint64_t suppressed = 0;
    if (drop_log.allow(suppressed))
      log->error(
          "dropping the payload of a {}-byte message on '{}': larger than max_packet_bytes ({}); "
          "it is delivered without its payload{}",
          p.remaining_length, p.topic, opt.max_packet_bytes, suppressed_note(suppressed));
    deliver(p, std::max<std::size_t>(p.remaining_length, 1));
  }

  void process_ack(const AckToken& t) {
    if (t.delivery_ == 0 || t.qos_ == 0) return;
    if (session_up && t.generation_ == generation) {
      Inbound& slot = inbound[t.packet_id_];
      if (slot.delivery == t.delivery_) {
        if (slot.state == Slot::Qos1Delivered) {
          encode_puback(control, t.packet_id_);
          slot.state = Slot::Free;
          --delivered_unacked;
          stats.acks_sent.inc();
          return;
        }
        if (slot.state == Slot::Qos2Delivered) {  // spec 4.3.3: PUBREC, then wait for PUBREL
          encode_pubrec(control, t.packet_id_);
          slot.state = Slot::Qos2Received;
          --delivered_unacked;
          stats.acks_sent.inc();
          return;
        }
      }
    }
    // A delivery of a lost connection: the broker will deliver it again, nothing to send.
    // Anything else was acked before.
    if (stale.erase(t.delivery_) > 0) stats.stale_acks.inc();
  }

  void drain_acks() {
    {
      std::lock_guard lock(s.acks_mutex_);
      taken_acks.swap(s.acks_);
      s.acks_scheduled_ = false;
    }
    for (const AckToken& t : taken_acks) process_ack(t);
    taken_acks.clear();
    publish_unacked();
    if (!control.empty()) wake_writer();
    if (!must_pause()) poke_reader();
  }

  // ---- per-session tasks --------------------------------------------------------------------

  asio::awaitable<void> writer() {
    while (session_up) {
      if (control.empty()) {
        if (disconnect_requested) {  // stop(): acks first, then DISCONNECT (spec 3.14)
          out.clear();
          encode_disconnect(out);
          error_code ec;
          co_await write(asio::buffer(out), ec);
          close_socket(errc::shutting_down);
          co_return;
        }
        writer_idle = true;
        wake.expires_at(asio::steady_timer::time_point::max());
        error_code ignored;
        co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        writer_idle = false;
        continue;
      }
      out.clear();
      out.swap(control);
      error_code ec;
      co_await write(asio::buffer(out), ec);
      if (ec) {
        close_socket(ec);
        co_return;
      }
    }
  }

  // While the reader holds packets back it cannot see PINGRESP or SUBACK: a timeout is judged
  // only over an interval in which it read all along.
  bool read_throughout(std::uint64_t epoch) const {
    return !reader_waiting && epoch == pause_epoch;
  }

  asio::awaitable<void> pinger() {
    const auto interval = std::chrono::seconds(opt.keep_alive_seconds);
    std::uint64_t epoch = pause_epoch;
    while (session_up) {
      ping_timer.expires_after(interval);
      error_code ec;
      co_await ping_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (!session_up || close_reason) break;
      if (ping_outstanding && read_throughout(epoch)) {
        close_socket(errc::ping_timeout);
        break;
      }
      epoch = pause_epoch;
      ping_outstanding = true;
      encode_pingreq(control);
      wake_writer();
    }
  }

  std::uint16_t next_subscribe_id() {
    last_subscribe_id =
        last_subscribe_id == 65535 ? 1 : static_cast<std::uint16_t>(last_subscribe_id + 1);
    return last_subscribe_id;
  }

  // After every CONNACK: SUBSCRIBE every filter, check the SUBACK, retry refused filters.
  asio::awaitable<void> subscribe_all() {
    std::vector<std::size_t> pending(opt.filters.size());
    std::iota(pending.begin(), pending.end(), std::size_t{0});
    auto retry = kFirstResubscribe;
    const auto max_retry = std::max(opt.max_backoff, kFirstResubscribe);
    while (session_up && !close_reason) {
      std::vector<Subscription> subs;
      for (const std::size_t i : pending) subs.push_back({opt.filters[i], opt.qos});
      awaited_suback = next_subscribe_id();
      awaited_codes = subs.size();
      suback_arrived = false;
      encode_subscribe(control, awaited_suback, subs);
      wake_writer();
      stats.subscribe_attempts.inc();

      std::uint64_t epoch = pause_epoch;
      suback_timer.expires_after(opt.subscribe_timeout);
      for (;;) {
        error_code ec;
        co_await suback_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (suback_arrived) break;
        if (!session_up || close_reason) {
          awaited_suback = 0;
          count(stats.subscribe_lost, sh.attempts_lost);
          co_return;
        }
        if (suback_timer.expiry() > asio::steady_timer::clock_type::now()) continue;
        if (!read_throughout(epoch)) {  // suspended while reading is paused
          epoch = pause_epoch;
          suback_timer.expires_after(opt.subscribe_timeout);
          continue;
        }
        awaited_suback = 0;
        count(stats.subscribe_timeouts, sh.attempts_timeout);
        log->warn("no SUBACK from broker {}:{} within {} ms; reconnecting", opt.host, opt.port,
                  opt.subscribe_timeout.count());
        close_socket(errc::subscribe_timeout);
        co_return;
      }

      std::vector<std::size_t> refused;
      for (std::size_t i = 0; i < pending.size(); ++i) {
        const auto code = static_cast<std::uint8_t>(suback_codes[i]);
        const std::string& filter = opt.filters[pending[i]];
        if (code == kSubackFailure) {
          refused.push_back(pending[i]);
        } else if (code < opt.qos) {
          log->warn("broker granted QoS {} instead of {} for '{}': its messages are not "
                    "acknowledged and can be lost",
                    code, opt.qos, filter);
        }
      }
      if (refused.empty()) {
        count(stats.subscribe_ok, sh.attempts_ok);
        sh.subscribed.store(true);
        log->info("subscribed to {} topic filter(s) at QoS {} on broker {}:{}",
                  opt.filters.size(), opt.qos, opt.host, opt.port);
        co_return;
      }
      count(stats.subscribe_refused, sh.attempts_refused);
      std::string names;
      for (const std::size_t i : refused) names += (names.empty() ? "'" : ", '") + opt.filters[i] + "'";
      std::uint64_t suppressed = 0;
      if (refused_log.allow(suppressed))
        log->error("broker {}:{} refused the subscription to {} (not authorized?); no messages "
                   "arrive for it; retrying in {} ms{}",
                   opt.host, opt.port, names, retry.count(), suppressed_note(suppressed));
      pending = std::move(refused);
      resubscribe_timer.expires_after(retry);
      error_code ignored;
      co_await resubscribe_timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      retry = std::min(retry * 2, max_retry);
    }
  }

  // Holds the next packet back until must_pause() is false or the connection ends.
  asio::awaitable<error_code> wait_until_resumed() {
    sh.read_paused.store(true);
    stats.read_pauses.inc();
    std::uint64_t suppressed = 0;
    if (pause_log.allow(suppressed))
      log->info("reading from broker paused: {} messages unacknowledged (max {}){}{}", unacked(),
                opt.max_unacked, sh.user_paused.load() ? ", paused by ingest" : "",
                suppressed_note(suppressed));
    reader_waiting = true;
    ++pause_epoch;
    while (must_pause() && !close_reason) {
      resume_timer.expires_at(asio::steady_timer::time_point::max());
      error_code ignored;
      co_await resume_timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    reader_waiting = false;
    ++pause_epoch;
    sh.read_paused.store(false);
    co_return close_reason;
  }

  error_code handle(const Packet& p) {
    switch (p.type) {
      case PacketType::Publish:
        deliver(p);
        return {};
      case PacketType::Pubrel: {
        // spec 4.3.3: answer every PUBREL with PUBCOMP, even for an id we no longer track.
        Inbound& slot = inbound[p.packet_id];
        if (slot.state == Slot::Qos2Received) slot = Inbound{};
        encode_pubcomp(control, p.packet_id);
        wake_writer();
        return {};
      }
      case PacketType::Suback:
        if (awaited_suback == 0 || p.packet_id != awaited_suback ||
            p.return_codes.size() != awaited_codes) {
          return errc::protocol_violation;
        }
        suback_codes.assign(p.return_codes);
        suback_arrived = true;
        awaited_suback = 0;
        suback_timer.cancel();
        return {};
      case PacketType::Pingresp:
        ping_outstanding = false;
        stats.pingresps.inc();
        return {};
      default:  // CONNACK again; PUBACK, PUBREC, PUBCOMP, UNSUBACK: we never publish or unsubscribe
        return errc::protocol_violation;
    }
  }

  asio::awaitable<error_code> reader() {
    for (;;) {
      if (close_reason) co_return close_reason;
      if (must_pause()) {
        const error_code ec = co_await wait_until_resumed();
        if (ec) co_return ec;
      }
      if (discard > 0) {  // the rest of an oversized PUBLISH
        const std::size_t n = std::min(discard, in_end - in_begin);
        consume(n);
        discard -= n;
        if (discard > 0) {
          const error_code ec = co_await fill_buffer();
          if (ec) co_return ec;
        }
        continue;
      }
      const DecodeResult r = decode_packet(buffered(), ClientKind::Subscriber, opt.max_packet_bytes);
      switch (r.status) {
        case DecodeStatus::Ok: {
          const error_code ec = handle(r.packet);  // views into `in` stay valid meanwhile
          consume(r.consumed);
          if (ec) co_return ec;
          break;
        }
        case DecodeStatus::TooLarge:
          drop_oversized(r.packet);
          consume(r.consumed);
          discard = r.skip;
          break;
        case DecodeStatus::Malformed:
          co_return errc::malformed_packet;
        case DecodeStatus::NeedMore: {
          const error_code ec = co_await fill_buffer();
          if (ec) co_return ec;
          break;
        }
      }
    }
  }

  void task_finished(std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log->error("mqtt subscriber task failed: {}", ex.what());
      }
      close_socket(errc::protocol_violation);
    }
    --tasks_running;
    tasks_done.cancel();
  }

  template <class F>
  void spawn_task(F&& make) {
    ++tasks_running;
    asio::co_spawn(io, make(), [this](std::exception_ptr e) { task_finished(e); });
  }

  // ---- connection ---------------------------------------------------------------------------

  asio::awaitable<error_code> connect_once(bool& session_present) {
    const std::uint64_t id = ++attempt;
    close_reason = {};
    in_begin = in_end = 0;
    discard = 0;
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
    if (stopping) ec = errc::shutting_down;
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
      ConnectFields f;
      f.client_id = opt.client_id;
      f.clean_session = false;  // spec 3.1.2.4: the broker keeps subscriptions and messages
      f.keep_alive_seconds = static_cast<std::uint16_t>(opt.keep_alive_seconds);
      f.has_username = !opt.username.empty();
      f.username = opt.username;
      f.has_password = f.has_username && !opt.password.empty();
      f.password = opt.password;
      out.clear();
      encode_connect(out, f);
      co_await write(asio::buffer(out), ec);
    }
    while (!ec) {
      const DecodeResult r = decode_packet(buffered(), ClientKind::Subscriber, opt.max_packet_bytes);
      if (r.status == DecodeStatus::NeedMore) {
        ec = co_await fill_buffer();
        continue;
      }
      if (r.status != DecodeStatus::Ok || r.packet.type != PacketType::Connack) {
        ec = r.status == DecodeStatus::Malformed ? errc::malformed_packet : errc::protocol_violation;
        break;
      }
      ec = connack_error(r.packet.connack_code);
      session_present = r.packet.session_present;
      consume(r.consumed);  // queued messages may follow at once: they stay for the reader
      break;
    }
    deadline.cancel();
    if (ec && close_reason) ec = close_reason;  // e.g. timed_out rather than "aborted"
    if (ec) close_socket(ec);
    co_return ec;
  }

  asio::awaitable<void> session(bool session_present) {
    ++generation;
    session_up = true;
    ping_outstanding = false;
    disconnect_requested = false;
    awaited_suback = 0;
    control.clear();
    if (!session_present) {
      // The broker has no state of ours: ids between PUBREC and PUBREL mean nothing now.
      for (Inbound& slot : inbound) {
        if (slot.state == Slot::Qos2Received) slot = Inbound{};
      }
      if (had_session) {
        stats.session_resets.inc();
        log->warn(
            "broker {}:{} has no session for client id '{}' (restarted without persistence, or "
            "the session expired): messages published while we were away are lost",
            opt.host, opt.port, opt.client_id);
      }
    }
    had_session = true;
    sh.session_resumed.store(session_present);
    sh.connected.store(true);
    stats.connects.inc();
    log->info("connected to broker {}:{}{} as '{}' ({})", opt.host, opt.port,
              opt.tls ? " (TLS)" : "", opt.client_id,
              session_present ? "session resumed" : "new session");

    spawn_task([this] { return writer(); });
    if (opt.keep_alive_seconds > 0) spawn_task([this] { return pinger(); });
    spawn_task([this] { return subscribe_all(); });
    const error_code ec = co_await reader();

    // Tear down: stop the other tasks, wait for them, retire this connection's deliveries.
    sh.connected.store(false);
    sh.session_resumed.store(false);
    sh.subscribed.store(false);
    session_up = false;
    close_socket(ec ? ec : make_error_code(errc::connection_lost));
    wake.cancel();
    ping_timer.cancel();
    while (tasks_running > 0) {
      tasks_done.expires_at(asio::steady_timer::time_point::max());
      error_code ignored;
      co_await tasks_done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    // The broker redelivers what it has no PUBACK for; tokens handed out stay counted (the
    // application still holds the messages) until acked, and then send nothing.
    for (Inbound& slot : inbound) {
      if (slot.state == Slot::Qos1Delivered || slot.state == Slot::Qos2Delivered) {
        stale.insert(slot.delivery);
        slot = Inbound{};
      }
    }
    delivered_unacked = 0;
    publish_unacked();
    control.clear();
    const error_code reason = close_reason ? close_reason : ec;
    if (reason != errc::shutting_down) {
      stats.disconnects.inc();
      std::uint64_t suppressed = 0;
      if (lost_log.allow(suppressed))
        log->warn("lost the connection to broker {}:{} ({}); {} delivered messages unacknowledged; "
                  "reconnecting{}",
                  opt.host, opt.port, reason.message(), unacked(), suppressed_note(suppressed));
    } else {
      log->info("disconnected from broker {}:{}; the session stays on the broker", opt.host,
                opt.port);
    }
  }

  asio::awaitable<void> run() {
    auto backoff = kFirstBackoff;
    const auto max_backoff = std::max(opt.max_backoff, kFirstBackoff);
    while (!stopping) {
      try {
        bool session_present = false;
        const error_code ec = co_await connect_once(session_present);
        if (!ec) {
          const auto began = std::chrono::steady_clock::now();
          co_await session(session_present);
          if (std::chrono::steady_clock::now() - began >= kStableSession) backoff = kFirstBackoff;
        } else if (!stopping) {
          stats.connect_failures.inc();
          std::uint64_t suppressed = 0;
          if (connect_log.allow(suppressed))
            log->warn("cannot connect to broker {}:{}: {}; retrying with back-off up to {} ms{}",
                      opt.host, opt.port, ec.message(), max_backoff.count(),
                      suppressed_note(suppressed));
        }
      } catch (const std::exception& e) {
        log->error("mqtt subscriber connection failed unexpectedly: {}", e.what());
        sh.connected.store(false);
        sh.subscribed.store(false);
        session_up = false;
        close_socket(errc::protocol_violation);
      }
      if (stopping) break;
      backoff_timer.expires_after(backoff);
      error_code ignored;
      co_await backoff_timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      backoff = std::min(backoff * 2, max_backoff);
    }
  }

  void request_stop() {
    stopping = true;
    backoff_timer.cancel();
    resubscribe_timer.cancel();
    drain_acks();  // acks queued before stop() still go out, before DISCONNECT
    if (session_up) {
      disconnect_requested = true;
      wake.cancel();
    } else {
      close_socket(errc::shutting_down);  // aborts a connection attempt
    }
  }
};

Subscriber::Subscriber(SubscriberOptions options, MessageHandler on_message)
    : options_(std::move(options)),
      on_message_(std::move(on_message)),
      shared_(std::make_shared<Shared>()) {
  validate(options_);
  if (!on_message_) throw std::invalid_argument("mqtt subscriber: on_message is required");
  impl_ = std::make_unique<Impl>(*this, options_, *shared_);
}

Subscriber::~Subscriber() { stop(); }

void Subscriber::start() {
  std::call_once(started_, [this] {
    asio::co_spawn(impl_->io, impl_->run(), [this](std::exception_ptr e) {
      if (e) impl_->log->error("mqtt subscriber loop ended with an exception");
      impl_->finished.set_value();
    });
    thread_ = std::thread([this] {
      try {
        impl_->io.run();
      } catch (const std::exception& e) {
        impl_->log->error("mqtt subscriber thread: {}", e.what());
      }
    });
  });
}

void Subscriber::stop() {
  std::call_once(stopped_once_, [this] {
    if (thread_.joinable()) {
      if (std::this_thread::get_id() == thread_.get_id()) {
        impl_->log->critical("Subscriber::stop() called from on_message: it would never return");
        std::abort();
      }
      asio::post(impl_->io, [this] { impl_->request_stop(); });
      // Acks, DISCONNECT and teardown take a round trip at most; never hang shutdown on it.
      if (impl_->finished.get_future().wait_for(2s) != std::future_status::ready) {
        impl_->log->warn("mqtt subscriber did not stop within 2 s; abandoning the connection");
        impl_->io.stop();
      }
      thread_.join();
    }
    stopped_.store(true);
  });
}

void Subscriber::ack(const AckToken& token) { ack(std::span<const AckToken>(&token, 1)); }

void Subscriber::ack(std::span<const AckToken> tokens) {
  if (stopped_.load(std::memory_order_relaxed)) return;
  bool post = false;
  {
    std::lock_guard lock(acks_mutex_);
    for (const AckToken& t : tokens) {
      if (t.delivery_ != 0 && t.qos_ > 0) acks_.push_back(t);
    }
    if (!acks_.empty() && !acks_scheduled_) {
      acks_scheduled_ = true;
      post = true;
    }
  }
  if (post) asio::post(impl_->io, [impl = impl_.get()] { impl->drain_acks(); });
}

void Subscriber::pause() { shared_->user_paused.store(true); }

void Subscriber::resume() {
  shared_->user_paused.store(false);
  if (!stopped_.load(std::memory_order_relaxed))
    asio::post(impl_->io, [impl = impl_.get()] {
      if (!impl->must_pause()) impl->poke_reader();
    });
}

bool Subscriber::connected() const { return shared_->connected.load(std::memory_order_relaxed); }
bool Subscriber::subscribed() const { return shared_->subscribed.load(std::memory_order_relaxed); }
bool Subscriber::session_resumed() const {
  return shared_->session_resumed.load(std::memory_order_relaxed);
}
bool Subscriber::paused() const {
  return shared_->user_paused.load(std::memory_order_relaxed) ||
         shared_->read_paused.load(std::memory_order_relaxed);
}
std::size_t Subscriber::unacked() const { return shared_->unacked.load(std::memory_order_relaxed); }
std::chrono::system_clock::time_point Subscriber::last_message_time() const {
  return std::chrono::system_clock::time_point(std::chrono::duration_cast<
                                               std::chrono::system_clock::duration>(
      std::chrono::nanoseconds(shared_->last_message_ns.load(std::memory_order_relaxed))));
}
const SubscriberStats& Subscriber::stats() const { return shared_->stats; }

void Subscriber::register_metrics(core::MetricsRegistry& registry) {
  const std::shared_ptr<const Shared> sh = shared_;
  auto add = [&](const std::string& name, const char* help, auto read) {
    auto fn = [sh, read] { return static_cast<double>(read(*sh)); };
    if (name.ends_with("_total")) {
      registry.callback_counter(name, help, fn);
    } else {
      registry.callback_gauge(name, help, fn);
    }
  };
  add("teslasync_mqtt_connected", "1 while connected to the broker.",
      [](const Shared& s) { return s.connected.load() ? 1 : 0; });
  add("teslasync_mqtt_subscribed", "1 while every topic filter is granted on the connection.",
      [](const Shared& s) { return s.subscribed.load() ? 1 : 0; });
  add("teslasync_mqtt_paused", "1 while reading from the broker is paused (back-pressure).",
      [](const Shared& s) { return s.read_paused.load() || s.user_paused.load() ? 1 : 0; });
  add("teslasync_mqtt_unacked", "Messages delivered to ingest and not yet acknowledged.",
      [](const Shared& s) { return s.unacked.load(); });
  add("teslasync_mqtt_last_message_timestamp_seconds",
      "Unix time of the last message received from the broker (0: none yet).",
      [](const Shared& s) { return static_cast<double>(s.last_message_ns.load()) / 1e9; });
  add("teslasync_mqtt_connects_total", "Successful broker connections.",
      [](const Shared& s) { return s.stats.connects.value(); });
  add("teslasync_mqtt_disconnects_total", "Broker connections lost.",
      [](const Shared& s) { return s.stats.disconnects.value(); });
  add("teslasync_mqtt_connect_failures_total", "Broker connection attempts that failed.",
      [](const Shared& s) { return s.stats.connect_failures.value(); });
  add("teslasync_mqtt_session_resets_total",
      "Reconnects where the broker had lost our session (queued messages lost).",
      [](const Shared& s) { return s.stats.session_resets.value(); });
  add("teslasync_mqtt_messages_received_total", "Messages received from the broker.",
      [](const Shared& s) { return s.stats.messages_received.value(); });
  add("teslasync_mqtt_duplicates_suppressed_total",
      "QoS 2 messages received again before their PUBREL, not delivered twice.",
      [](const Shared& s) { return s.stats.duplicates_suppressed.value(); });
  add("teslasync_mqtt_acks_sent_total", "Acknowledgements (PUBACK/PUBREC) sent to the broker.",
      [](const Shared& s) { return s.stats.acks_sent.value(); });
  add("teslasync_mqtt_stale_acks_total",
      "Acks for messages of a lost connection (the broker redelivers them).",
      [](const Shared& s) { return s.stats.stale_acks.value(); });
  add("teslasync_mqtt_oversized_dropped_total",
      "Messages larger than max_packet_bytes, acknowledged and dropped.",
      [](const Shared& s) { return s.stats.oversized_dropped.value(); });
  add("teslasync_mqtt_handler_errors_total", "Messages whose ingest handler threw.",
      [](const Shared& s) { return s.stats.handler_errors.value(); });
  add("teslasync_mqtt_read_pauses_total", "Times reading from the broker paused (back-pressure).",
      [](const Shared& s) { return s.stats.read_pauses.value(); });
  add("teslasync_mqtt_read_bytes_total", "Bytes read from the broker connection.",
      [](const Shared& s) { return s.stats.bytes_read.value(); });

  auto& attempts = registry.counter("teslasync_mqtt_subscription_attempts_total",
                                    "SUBSCRIBE packets sent, by what became of them.", {"result"});
  const auto bind = [&](const char* result, const core::Counter& so_far,
                        std::atomic<core::Counter*>& slot) {
    core::Counter& child = attempts.with({result});
    child.inc(so_far.value());
    slot.store(&child, std::memory_order_release);
  };
  bind("ok", shared_->stats.subscribe_ok, shared_->attempts_ok);
  bind("refused", shared_->stats.subscribe_refused, shared_->attempts_refused);
  bind("timeout", shared_->stats.subscribe_timeouts, shared_->attempts_timeout);
  bind("lost", shared_->stats.subscribe_lost, shared_->attempts_lost);
}

}  // namespace ts::mqtt

#include "sim/vehicle.hpp"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <algorithm>
#include <iterator>

#include "core/log.hpp"
#include "pki/tls_context.hpp"
#include "sim/shard.hpp"

namespace ts::vehicle_sim {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using asio::redirect_error;
using asio::use_awaitable;

constexpr std::size_t kMaxReplyBytes = 64 * 1024;  // replies are ~100 bytes (spec §3.3)
constexpr double kMaxDrainS = 5.0;  // at the end, wait at most this long for the last replies

spdlog::logger& logger() {
  static const auto log = ts::log::get("sim");
  return *log;
}

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

std::uint64_t signal_seed(const VehicleIdentity& id, std::uint64_t run_seed) {
  // Seeded by VIN so a run is reproducible; copies made by --reuse-certs differ from each other.
  std::uint64_t base = SignalGenerator::seed_for(id.vin, run_seed);
  return id.copy == 0 ? base : mix_seed(base, id.copy);
}

// The error of a failed TLS handshake with what OpenSSL knows about the server certificate.
std::string describe_tls_failure(const boost::system::error_code& ec, SSL* ssl) {
  std::string text = ec.message();
  long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    text += fmt::format(" (server certificate: {})", X509_verify_cert_error_string(verify));
  }
  return text;
}

// With TLS 1.3 the server judges the client certificate after the client's handshake is done,
// so its refusal shows up as an alert on the first read: say what it most likely means.
std::string with_alert_hint(std::string text) {
  if (text.find("alert") != std::string::npos) {
    text +=
        " (the server refused the TLS session: is the vehicle certificate issued by a CA in the "
        "server's tls.ca_file?)";
  }
  return text;
}

}  // namespace

std::string format_uuid_v4(std::uint64_t hi, std::uint64_t lo) {
  hi = (hi & ~std::uint64_t{0xF000}) | 0x4000;                           // version 4
  lo = (lo & ~(std::uint64_t{0xC} << 60)) | (std::uint64_t{0x8} << 60);  // variant 10
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32, (hi >> 16) & 0xFFFF,
                     hi & 0xFFFF, lo >> 48, lo & 0xFFFF'FFFF'FFFFULL);
}

Vehicle::Vehicle(Shard& shard, VehicleIdentity identity)
    : shard_(shard),
      id_(std::move(identity)),
      rng_(mix_seed(signal_seed(id_, shard.plan().config.seed), 0x7e57)),
      signals_(id_.vin, signal_seed(id_, shard.plan().config.seed)),
      pending_(shard.plan().config.max_in_flight),
      sender_id_("vehicle_device." + id_.vin),
      wake_(shard.executor()) {}

asio::awaitable<void> Vehicle::run() {
  if (stopping_) co_return;
  if (!co_await connect()) co_return;
  shard_.stats().connected.inc();
  last_advance_ = Clock::now();
  // The reader runs beside the writer on the same thread; the writer waits for it at the end.
  asio::co_spawn(shard_.executor(), read_loop(), [this](std::exception_ptr e) {
    if (e) on_reader_exception(e);
  });
  co_await write_loop();
  boost::system::error_code ec;
  while (!reader_done_) {
    wake_.expires_at(Clock::time_point::max());
    co_await wake_.async_wait(redirect_error(use_awaitable, ec));
  }
  shard_.stats().unacked.inc(pending_.outstanding());
  ws_.reset();  // frees the TLS session now rather than at the end of the run
  phase_ = Phase::Done;
}

asio::awaitable<bool> Vehicle::connect() {
  const RunPlan& plan = shard_.plan();
  const RunConfig& cfg = plan.config;
  phase_ = Phase::Connecting;

  std::string tls_error;
  asio::ssl::context* tls = shard_.tls_context(id_.cert_index, tls_error);
  if (tls == nullptr) {
    fail_connect("loading the vehicle certificate for", tls_error);
    co_return false;
  }
  ws_.emplace(shard_.executor(), *tls);
  auto& tcp = beast::get_lowest_layer(*ws_);
  boost::system::error_code ec;

  tcp.expires_after(seconds(cfg.connect_timeout_s));
  co_await tcp.async_connect(plan.endpoints, redirect_error(use_awaitable, ec));
  if (ec) {
    fail_connect("TCP connect to", ec.message());
    co_return false;
  }
  tcp.socket().set_option(asio::ip::tcp::no_delay(true), ec);

  SSL* ssl = ws_->next_layer().native_handle();
  // Idle connections keep no TLS buffers (~33 KiB each); busy ones keep them, since freeing and
  // reallocating them for every record costs more CPU than the memory is worth.
  if (cfg.idle) SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
  if (!ts::pki::expect_server_name(ssl, cfg.tls_name())) {
    fail_connect("TLS setup for",
                 fmt::format("OpenSSL refused the server name '{}'", cfg.tls_name()));
    co_return false;
  }
  co_await ws_->next_layer().async_handshake(asio::ssl::stream_base::client,
                                             redirect_error(use_awaitable, ec));
  if (ec) {
    fail_connect("TLS handshake with", with_alert_hint(describe_tls_failure(ec, ssl)));
    co_return false;
  }
  tcp.expires_never();

  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = seconds(cfg.connect_timeout_s);  // also bounds the close
  timeouts.idle_timeout = websocket::stream_base::none();  // the server never pings (spec §2.5)
  timeouts.keep_alive_pings = false;
  ws_->set_option(timeouts);
  ws_->set_option(websocket::stream_base::decorator(
      [interface = cfg.network_interface, version = cfg.client_version,
       txid = format_uuid_v4(rng_.next_u64() ^ plan.run_nonce, rng_.next_u64())](
          websocket::request_type& req) {
        req.set(beast::http::field::user_agent, "teslasync-vehicle-sim");
        req.set("X-Network-Interface", interface);
        req.set("Version", version);
        req.set("X-TXID", txid);
      }));
  ws_->binary(true);
  ws_->read_message_max(kMaxReplyBytes);

  websocket::response_type response;
  co_await ws_->async_handshake(response, plan.host_header, "/", redirect_error(use_awaitable, ec));
  if (ec) {
    std::string detail = ec.message();
    if (ec == websocket::error::upgrade_declined) {
      detail += fmt::format(" (HTTP {} {})", response.result_int(), std::string(response.reason()));
    }
    fail_connect("WebSocket upgrade with", with_alert_hint(std::move(detail)));
    co_return false;
  }
  phase_ = Phase::Open;
  co_return true;
}

void Vehicle::fail_connect(std::string_view step, const std::string& detail) {
  const RunPlan& plan = shard_.plan();
  std::string message = stopping_
                            ? fmt::format("{} {}: the run ended before the vehicle was connected",
                                          step, plan.host_header)
                            : fmt::format("{} {}: {}", step, plan.host_header, detail);
  phase_ = Phase::Done;
  ws_.reset();
  shard_.stats().connect_failures.inc();
  if (shard_.should_log_warning()) {
    logger().warn("[vehicle={} vin={}] {}", id_.index, id_.vin, message);
  }
  shard_.record_connect_error(ConnectError{Clock::now(), id_.index, id_.vin, std::move(message)});
}

void Vehicle::on_reader_exception(const std::exception_ptr& e) {
  // Network errors are values; an exception here is a bug or an allocation failure.
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    what = ex.what();
  } catch (...) {
  }
  logger().error("[vehicle={} vin={}] reader stopped by an unexpected error: {}", id_.index,
                 id_.vin, what);
  if (!link_failed_ && !closing_) {
    link_failed_ = true;
    shard_.stats().disconnects.inc();
  }
  reader_done_ = true;
  if (ws_) beast::get_lowest_layer(*ws_).close();
  wake_.cancel();
}

void Vehicle::on_link_error(std::string_view what, const boost::system::error_code& ec) {
  if (link_failed_ || closing_) return;
  link_failed_ = true;
  shard_.stats().disconnects.inc();
  if (shard_.should_log_warning()) {
    logger().warn("[vehicle={} vin={}] connection lost ({}): {}", id_.index, id_.vin, what,
                  ec.message());
  }
}

asio::awaitable<void> Vehicle::read_loop() {
  boost::system::error_code ec;
  for (;;) {
    co_await ws_->async_read(read_buffer_, redirect_error(use_awaitable, ec));
    if (ec) break;
    auto data = read_buffer_.cdata();
    on_reply({static_cast<const std::uint8_t*>(data.data()), data.size()});
    read_buffer_.consume(read_buffer_.size());
  }
  reader_done_ = true;
  if (ec == websocket::error::closed && !closing_ && !link_failed_) {
    // The server sent a close frame; Beast has answered it.
    link_failed_ = true;
    shard_.stats().disconnects.inc();
    if (shard_.should_log_warning()) {
      const websocket::close_reason& why = ws_->reason();
      logger().warn("[vehicle={} vin={}] the server closed the WebSocket (code {}{}{})", id_.index,
                    id_.vin, static_cast<int>(why.code), why.reason.empty() ? "" : ": ",
                    std::string_view(why.reason.data(), why.reason.size()));
    }
  } else {
    on_link_error("read", ec);
  }
  wake_.cancel();
}

void Vehicle::on_reply(std::span<const std::uint8_t> bytes) {
  ShardStats& stats = shard_.stats();
  auto reply = wire::decode_reply(bytes);
  if (!reply) {
    stats.bad_replies.inc();
    if (shard_.should_log_warning()) {
      logger().warn("[vehicle={} vin={}] unreadable reply of {} bytes", id_.index, id_.vin,
                    bytes.size());
    }
    return;
  }
  std::optional<Clock::time_point> sent_at;
  if (auto seq = PendingAcks::parse_seq(reply->txid, id_.txid_prefix)) {
    sent_at = pending_.take(*seq);
  }
  if (reply->message_type == wire::kMessageTypeStreamAck && sent_at) {
    stats.acked.inc();
    if (*sent_at >= shard_.plan().measure_from) stats.ack_latency.record(Clock::now() - *sent_at);
  } else if (reply->message_type == wire::kMessageTypeStream) {
    stats.error_replies.inc();
    if (shard_.should_log_warning()) {
      logger().warn("[vehicle={} vin={}] ERROR reply to txid '{}': {}", id_.index, id_.vin,
                    reply->txid, reply->error_text);
    }
  } else {
    stats.bad_replies.inc();
    if (shard_.should_log_warning()) {
      logger().warn("[vehicle={} vin={}] reply type {} for txid '{}' that is not outstanding",
                    id_.index, id_.vin, reply->message_type, reply->txid);
    }
  }
  if ((awaited_seq_ != 0 && !pending_.is_outstanding(awaited_seq_)) ||
      (draining_ && pending_.outstanding() == 0)) {
    wake_.cancel();
  }
}

asio::awaitable<void> Vehicle::write_loop() {
  const RunConfig& cfg = shard_.plan().config;
  if (cfg.idle) {
    co_await hold_idle();
  } else if (cfg.rate_hz > 0) {
    co_await write_at_rate();
  } else {
    co_await write_closed_loop();
  }
  if (!link_failed_ && !reader_done_ && pending_.outstanding() > 0) co_await drain();
  if (link_failed_ || reader_done_) {
    // Nothing to close cleanly; make sure the reader ends too.
    if (!reader_done_) beast::get_lowest_layer(*ws_).close();
    co_return;
  }
  closing_ = true;
  boost::system::error_code ec;
  co_await ws_->async_close(websocket::close_code::normal, redirect_error(use_awaitable, ec));
  if (ec && ec != asio::error::operation_aborted) {
    logger().debug("[vehicle={} vin={}] close: {}", id_.index, id_.vin, ec.message());
  }
}

asio::awaitable<void> Vehicle::drain() {
  // Replies to the last records are still on their way: give them a moment so that a clean stop
  // does not count them as unacked.
  draining_ = true;
  const Clock::time_point until =
      Clock::now() + seconds(std::min(shard_.plan().config.ack_timeout_s, kMaxDrainS));
  boost::system::error_code ec;
  while (pending_.outstanding() > 0 && !reader_done_ && !link_failed_ && !closing_ &&
         Clock::now() < until) {
    wake_.expires_at(until);
    co_await wake_.async_wait(redirect_error(use_awaitable, ec));
  }
  draining_ = false;
}

asio::awaitable<void> Vehicle::hold_idle() {
  boost::system::error_code ec;
  while (!should_stop()) {
    wake_.expires_at(Clock::time_point::max());
    co_await wake_.async_wait(redirect_error(use_awaitable, ec));
  }
}

asio::awaitable<void> Vehicle::write_at_rate() {
  const double period_s = 1.0 / shard_.plan().config.rate_hz;
  const Clock::duration period = seconds(period_s);
  // A random phase per vehicle spreads the fleet's records over the period.
  Clock::time_point next = Clock::now() + seconds(rng_.uniform(0, period_s));
  boost::system::error_code ec;
  while (!should_stop()) {
    wake_.expires_at(next);
    co_await wake_.async_wait(redirect_error(use_awaitable, ec));
    if (should_stop()) break;
    if (Clock::now() < next) continue;
    if (!co_await send_record()) break;
    next += period;
    // Behind schedule (slow writes): carry on from now instead of sending a burst.
    next = std::max(next, Clock::now());
  }
}

asio::awaitable<void> Vehicle::write_closed_loop() {
  const Clock::duration ack_timeout = seconds(shard_.plan().config.ack_timeout_s);
  boost::system::error_code ec;
  while (!should_stop()) {
    const std::uint64_t seq = pending_.next_seq();
    if (!co_await send_record()) break;
    awaited_seq_ = seq;
    const Clock::time_point give_up = Clock::now() + ack_timeout;
    while (pending_.is_outstanding(seq) && !should_stop()) {
      wake_.expires_at(give_up);
      co_await wake_.async_wait(redirect_error(use_awaitable, ec));
      if (pending_.is_outstanding(seq) && Clock::now() >= give_up) {
        if (shard_.should_log_warning()) {
          logger().warn("[vehicle={} vin={}] no reply to record {} within {} s; sending the next",
                        id_.index, id_.vin, seq, shard_.plan().config.ack_timeout_s);
        }
        break;
      }
    }
    awaited_seq_ = 0;
  }
}

asio::awaitable<bool> Vehicle::send_record() {
  const RunConfig& cfg = shard_.plan().config;
  const Clock::time_point now = Clock::now();
  signals_.advance(std::chrono::duration<double>(now - last_advance_).count() * cfg.time_scale);
  last_advance_ = now;

  const auto wall = std::chrono::system_clock::now();
  signals_.fill_payload(payload_, cfg.datums, wall);
  payload_bytes_.clear();
  payload_.SerializeToString(&payload_bytes_);

  const std::uint64_t seq = pending_.next_seq();
  txid_.clear();
  fmt::format_to(std::back_inserter(txid_), "{}-{}", id_.txid_prefix, seq);
  frame_ = wire::build_stream_frame(wire::StreamFrame{
      .txid = txid_,
      .topic = "V",
      .sender_id = sender_id_,
      .payload = payload_bytes_,
      .device_type = "vehicle_device",
      .device_id = id_.vin,
      .created_at = static_cast<std::uint32_t>(
          std::chrono::floor<std::chrono::seconds>(wall.time_since_epoch()).count()),
  });

  if (pending_.add(Clock::now()) > 0) shard_.stats().unacked.inc();  // window full: gave up one
  boost::system::error_code ec;
  co_await ws_->async_write(asio::buffer(frame_), redirect_error(use_awaitable, ec));
  if (ec) {
    pending_.take(seq);  // never sent
    on_link_error("write", ec);
    co_return false;
  }
  shard_.stats().sent.inc();
  co_return true;
}

void Vehicle::stop() {
  stopping_ = true;
  wake_.cancel();
  if (phase_ == Phase::Connecting && ws_) beast::get_lowest_layer(*ws_).close();
}

void Vehicle::abort() {
  stopping_ = true;
  closing_ = true;  // what fails from here on is our doing, not the server's
  wake_.cancel();
  if (ws_ && phase_ != Phase::Done) beast::get_lowest_layer(*ws_).close();
}

}  // namespace ts::vehicle_sim

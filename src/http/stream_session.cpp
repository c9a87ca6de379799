#include "http/stream_session.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace ts::http::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// One write carries at most this much; the rest waits for the next round so a fast client's
// batches stay bounded (asio sends up to 64 buffers per writev anyway).
constexpr std::size_t kMaxBatchFrames = 64;
constexpr std::size_t kMaxBatchBytes = 256 * 1024;

EncodedEventPtr control_frame(std::string bytes) {
  auto f = std::make_shared<EncodedEvent>();
  f->bytes = std::move(bytes);
  f->control = true;
  return f;
}

EncodedEventPtr header_frame(std::chrono::milliseconds retry) {
  // Close-delimited body (RFC 9112 §6.3): no chunk framing per write; proxies and EventSource
  // accept it. X-Accel-Buffering stops nginx from buffering the stream.
  std::string h =
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: text/event-stream\r\n"
      "Cache-Control: no-cache\r\n"
      "X-Accel-Buffering: no\r\n"
      "Connection: close\r\n"
      "\r\n";
  if (retry.count() > 0) h += fmt::format("retry: {}\n\n", retry.count());
  return control_frame(std::move(h));
}

const EncodedEventPtr& comment_heartbeat() {
  static const EncodedEventPtr frame = control_frame(": heartbeat\n\n");
  return frame;
}

EncodedEventPtr event_heartbeat() {
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  return control_frame(
      encode_event(Event{"heartbeat", fmt::format(R"({{"time":"{:%Y-%m-%dT%H:%M:%SZ}"}})", now), {}}));
}

const EncodedEventPtr& slow_consumer_frame() {
  static const EncodedEventPtr frame = control_frame(
      encode_event(Event{"disconnect", R"({"reason":"slow_consumer"})", {}}));
  return frame;
}

const EncodedEventPtr& shutdown_frame() {
  static const EncodedEventPtr frame =
      control_frame(encode_event(Event{"shutdown", R"({"reason":"draining"})", {}}));
  return frame;
}

}  // namespace

StreamSession::StreamSession(asio::any_io_executor executor, std::shared_ptr<EventHub> hub,
                             std::string key, const StreamOptions& options, std::string remote)
    : executor_(executor),
      hub_(std::move(hub)),
      key_(std::move(key)),
      options_(options),
      remote_(std::move(remote)),
      socket_(executor),
      wake_(executor) {}

StreamSession::~StreamSession() { detach(); }

EventHub::Attached StreamSession::attach(std::optional<std::uint64_t> last_event_id) {
  auto a = hub_->attach(*this, executor_, key_, last_event_id);
  attached_ = true;
  position_ = a.position;
  return a;
}

void StreamSession::detach() {
  if (!attached_) return;
  attached_ = false;
  hub_->detach(*this, executor_, key_);
}

std::vector<EncodedEventPtr> StreamSession::snapshot_frames(const std::vector<Event>& snapshot,
                                                            std::uint64_t position) {
  std::vector<EncodedEventPtr> out;
  out.reserve(snapshot.size() + 1);
  for (std::size_t i = 0; i < snapshot.size(); ++i) {
    auto f = std::make_shared<EncodedEvent>();
    const bool last = i + 1 == snapshot.size();
    f->bytes = encode_event(snapshot[i], last ? std::optional(position) : std::nullopt);
    out.push_back(std::move(f));
  }
  // WHATWG SSE: a block with only an `id:` field sets lastEventId without firing an event.
  if (snapshot.empty()) out.push_back(control_frame(fmt::format("id: {}\n\n", position)));
  return out;
}

bool StreamSession::deliver(const EncodedEventPtr& event) {
  if (phase_ != Phase::Open || event->id <= position_) return false;
  if (live_count() + 1 > options_.client_max_events ||
      live_bytes_ + event->bytes.size() > options_.client_max_bytes) {
    overflow();
    return false;
  }
  live_bytes_ += event->bytes.size();
  live_.push_back(event);
  if (flush_requested_) return false;
  flush_requested_ = true;
  return true;
}

void StreamSession::flush() {
  flush_requested_ = false;
  if (phase_ != Phase::Open || live_count() == 0) return;
  if (!waiting_) return;  // the writer is busy (or not started) and takes the queue next
  // The writer is parked: send what the drain queued right here with one non-blocking writev
  // instead of waking it (no timer cancel, no coroutine resume). What the socket does not take
  // is left for the writer.
  buffers_.clear();
  std::size_t bytes = 0;
  for (std::size_t i = live_head_; i < live_.size() && buffers_.size() < kMaxBatchFrames && bytes < kMaxBatchBytes; ++i) {
    buffers_.emplace_back(asio::buffer(live_[i]->bytes));
    bytes += live_[i]->bytes.size();
  }
  boost::system::error_code ec;
  std::size_t n = socket_.write_some(buffers_, ec);
  buffers_.clear();
  if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
    phase_ = Phase::Closed;  // the peer is gone
    close_socket();
    return;
  }
  std::uint64_t events = 0;
  while (n > 0) {
    auto& f = live_[live_head_];
    if (n < f->bytes.size()) {
      // Partly sent: the rest goes first next time.
      auto rest = std::make_shared<EncodedEvent>();
      rest->id = f->id;
      rest->control = true;  // counted below, with the part that was sent
      rest->bytes = f->bytes.substr(n);
      live_bytes_ -= n;
      events += f->control ? 0 : 1;
      f = std::move(rest);
      break;
    }
    n -= f->bytes.size();
    live_bytes_ -= f->bytes.size();
    events += f->control ? 0 : 1;
    f.reset();
    ++live_head_;
  }
  if (events) hub_->metrics().sent.inc(events);
  if (live_count() == 0) {
    clear_live();
    last_write_ = Clock::now();
  } else {
    wake();
  }
}

void StreamSession::overflow() {
  // The client cannot keep up: drop what it has not been sent, tell it why (if the socket takes
  // it within close_grace) and close. It reconnects with Last-Event-ID and catches up from the
  // ring or a snapshot.
  phase_ = Phase::Closing;
  clear_live();
  final_ = slow_consumer_frame();
  close_deadline_ = Clock::now() + options_.close_grace;
  hub_->note_slow_disconnect(remote_);
  wake();
}

void StreamSession::shutdown() {
  if (phase_ != Phase::Open) return;
  phase_ = Phase::Closing;
  final_ = shutdown_frame();
  close_deadline_ = Clock::now() + options_.close_grace;
  wake();
}

void StreamSession::sweep(Clock::time_point now) {
  if (phase_ == Phase::Closed || !running_) return;
  if (phase_ == Phase::Closing && now >= close_deadline_) {
    phase_ = Phase::Closed;
    close_socket();
  } else if (phase_ == Phase::Open && writing_ && now - write_started_ >= options_.write_timeout) {
    hub_->note_slow_disconnect(remote_);
    phase_ = Phase::Closed;
    close_socket();
  }
}

void StreamSession::wake() {
  if (!waiting_) return;
  waiting_ = false;
  wake_.cancel();
}

void StreamSession::close_socket() {
  boost::system::error_code ec;
  if (socket_.is_open()) {
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }
  wake();
}

void StreamSession::start_read() {
  // EventSource sends nothing after its request: a completed read means the peer went away (or
  // sent something we ignore). This is how a closed tab is noticed without waiting for a write.
  socket_.async_read_some(asio::buffer(read_buffer_),
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                            if (!ec) {
                              self->start_read();
                              return;
                            }
                            if (self->phase_ != Phase::Closed) {
                              self->phase_ = Phase::Closed;
                              self->close_socket();
                            }
                          });
}

void StreamSession::clear_live() {
  live_.clear();
  live_head_ = 0;
  live_bytes_ = 0;
  // Bursts leave capacity behind; an idle stream should not keep it.
  if (live_.capacity() > 64) live_.shrink_to_fit();
}

bool StreamSession::gather() {
  std::size_t bytes = 0;
  for (auto& f : initial_) {
    bytes += f->bytes.size();
    inflight_.push_back(std::move(f));
  }
  initial_.clear();
  while (live_head_ < live_.size() && inflight_.size() < kMaxBatchFrames && bytes < kMaxBatchBytes) {
    auto& f = live_[live_head_++];
    bytes += f->bytes.size();
    live_bytes_ -= f->bytes.size();
    inflight_.push_back(std::move(f));
  }
  if (live_head_ == live_.size()) clear_live();
  if (heartbeat_due_) {
    heartbeat_due_ = false;
    if (inflight_.empty()) inflight_.push_back(options_.heartbeat_event ? event_heartbeat() : comment_heartbeat());
  }
  if (final_ && live_count() == 0 && inflight_.size() < kMaxBatchFrames) {
    inflight_.push_back(std::move(final_));
    final_.reset();
    final_in_batch_ = true;
  }
  buffers_.clear();
  for (const auto& f : inflight_) buffers_.emplace_back(asio::buffer(f->bytes));
  return !inflight_.empty();
}

asio::awaitable<void> StreamSession::run(tcp::socket socket, std::vector<EncodedEventPtr> initial) {
  auto self = shared_from_this();
  socket_ = std::move(socket);
  boost::system::error_code nb;
  socket_.non_blocking(true, nb);  // synchronous sends from deliver() must never block
  running_ = true;
  initial_.reserve(initial.size() + 1);
  initial_.push_back(header_frame(options_.retry));
  for (auto& f : initial) initial_.push_back(std::move(f));
  if (phase_ == Phase::Closing) close_deadline_ = Clock::now() + options_.close_grace;
  start_read();
  last_write_ = Clock::now();
  boost::system::error_code ec;
  auto& sent = hub_->metrics().sent;
  while (phase_ != Phase::Closed) {
    if (gather()) {
      writing_ = true;
      write_started_ = Clock::now();
      co_await asio::async_write(socket_, buffers_, asio::redirect_error(asio::use_awaitable, ec));
      writing_ = false;
      std::uint64_t events = 0;
      for (const auto& f : inflight_) events += f->control ? 0 : 1;
      if (!ec) sent.inc(events);
      inflight_.clear();
      buffers_.clear();
      if (ec || final_in_batch_) break;
      last_write_ = Clock::now();
      continue;
    }
    if (phase_ != Phase::Open) break;
    if (inflight_.capacity() > 8) {
      // Idle from here on, perhaps for long: give back what the last burst's batch needed.
      inflight_.shrink_to_fit();
      buffers_.shrink_to_fit();
    }
    waiting_ = true;
    wake_.expires_at(last_write_ + options_.heartbeat);
    co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    waiting_ = false;
    if (!ec && phase_ == Phase::Open && live_count() == 0 &&
        Clock::now() >= last_write_ + options_.heartbeat)
      heartbeat_due_ = true;
  }
  phase_ = Phase::Closed;
  close_socket();
  detach();
  running_ = false;
  clear_live();
}

}  // namespace ts::http::detail

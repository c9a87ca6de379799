#pragma once
// Blocking loopback clients for the http tests. Every read has a deadline (SO_RCVTIMEO), so a
// server that never answers fails the test instead of hanging it.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace ts::http::testing {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

class RawClient {
 public:
  explicit RawClient(std::uint16_t port, int rcvbuf = 0) : socket_(io_) {
    socket_.open(boost::asio::ip::tcp::v4());
    if (rcvbuf > 0) ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  }

  void send(const std::string& raw) { boost::asio::write(socket_, boost::asio::buffer(raw)); }

  /// Reads what arrives before `deadline`; false on EOF/error (sets eof()), true if data came.
  bool read_some(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
    if (left <= 0us) return false;
    timeval tv{static_cast<time_t>(left.count() / 1'000'000),
               static_cast<suseconds_t>(left.count() % 1'000'000)};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[16384];
    boost::system::error_code ec;
    const auto n = socket_.read_some(boost::asio::buffer(buf), ec);
    if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) return false;
    if (ec) {
      eof_ = true;
      return false;
    }
    data_.append(buf, n);
    return true;
  }

  /// Reads until the peer closes (true) or the deadline passes (false).
  bool read_to_eof(std::chrono::milliseconds timeout = 10s) {
    const auto deadline = Clock::now() + timeout;
    while (!eof_ && Clock::now() < deadline) read_some(deadline);
    return eof_;
  }

  /// Reads until `data()` contains `needle` (true) or EOF/deadline (false).
  bool read_until(const std::string& needle, std::chrono::milliseconds timeout = 10s) {
    const auto deadline = Clock::now() + timeout;
    while (data_.find(needle) == std::string::npos) {
      if (eof_ || Clock::now() >= deadline) return false;
      read_some(deadline);
    }
    return true;
  }

  std::string& data() { return data_; }
  bool eof() const { return eof_; }
  boost::asio::ip::tcp::socket& socket() { return socket_; }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  std::string data_;
  bool eof_ = false;
};

/// Sends `raw` and returns everything until the server closes (or 10 s pass).
inline std::string roundtrip(std::uint16_t port, const std::string& raw) {
  RawClient c(port);
  c.send(raw);
  c.read_to_eof();
  return c.data();
}

/// One SSE block as a browser's parser would see it.
struct Block {
  std::optional<std::string> id;
  std::string event;  // "" = message
  std::optional<std::string> data;
  std::optional<std::string> retry;
  std::string comment;
};

inline Block parse_block(const std::string& text) {
  Block b;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.empty()) continue;
    if (line[0] == ':') {
      b.comment += line.substr(1);
      continue;
    }
    const auto colon = line.find(':');
    std::string field = line.substr(0, colon), value;
    if (colon != std::string::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    }
    if (field == "id") b.id = value;
    else if (field == "event") b.event = value;
    else if (field == "retry") b.retry = value;
    else if (field == "data") b.data = b.data ? *b.data + "\n" + value : value;
  }
  return b;
}

/// An EventSource-like reader: sends the GET, checks the response head, then yields blocks.
class SseClient {
 public:
  SseClient(std::uint16_t port, const std::string& target, const std::string& extra_headers = "",
            int rcvbuf = 0)
      : raw_(port, rcvbuf) {
    raw_.send("GET " + target + " HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n" +
              extra_headers + "\r\n");
  }

  /// The response head (status line and headers), read on first use.
  const std::string& head() {
    if (head_.empty()) {
      if (!raw_.read_until("\r\n\r\n")) return head_;
      const auto end = raw_.data().find("\r\n\r\n");
      head_ = raw_.data().substr(0, end + 4);
      raw_.data().erase(0, end + 4);
    }
    return head_;
  }

  /// The next complete block, or nullopt on EOF/timeout.
  std::optional<Block> next(std::chrono::milliseconds timeout = 10s) {
    if (head().empty()) return std::nullopt;
    if (!raw_.read_until("\n\n", timeout)) return std::nullopt;
    const auto end = raw_.data().find("\n\n");
    auto block = parse_block(raw_.data().substr(0, end + 1));
    raw_.data().erase(0, end + 2);
    return block;
  }

  /// The next block that carries data (skips retry hints, comments and bare `id:` lines).
  std::optional<Block> next_event(std::chrono::milliseconds timeout = 10s) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left <= 0ms) return std::nullopt;
      auto b = next(left);
      if (!b || b->data) return b;
    }
  }

  RawClient& raw() { return raw_; }

 private:
  RawClient raw_;
  std::string head_;
};

}  // namespace ts::http::testing

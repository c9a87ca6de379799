#include "support/http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ts::testsupport {
namespace {

using Clock = std::chrono::steady_clock;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

int connect_loopback(std::uint16_t port, std::string& error) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    error = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string request_text(const std::string& method, const std::string& target,
                         const std::string& body, const Headers& headers) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") {
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  return req;
}

bool send_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    auto n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

/// Reads what is available within the remaining time; false at EOF, error or timeout.
bool read_some(int fd, std::string& into, Clock::time_point until) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
  if (left <= 0) return false;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
  char buf[16384];
  auto n = ::recv(fd, buf, sizeof buf, 0);
  if (n <= 0) return false;
  into.append(buf, static_cast<std::size_t>(n));
  return true;
}

/// Parses the status line and headers of `raw` up to the blank line; returns the body offset or
/// npos when incomplete.
std::size_t parse_head(const std::string& raw, HttpResponse& out) {
  auto end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return std::string::npos;
  auto line_end = raw.find("\r\n");
  auto status_line = raw.substr(0, line_end);
  auto sp = status_line.find(' ');
  out.status = sp == std::string::npos ? 0 : static_cast<unsigned>(std::atoi(status_line.c_str() + sp + 1));
  std::size_t pos = line_end + 2;
  while (pos < end) {
    auto eol = raw.find("\r\n", pos);
    auto line = raw.substr(pos, eol - pos);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      auto value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      out.headers.emplace_back(line.substr(0, colon), value);
    }
    pos = eol + 2;
  }
  return end + 4;
}

std::string dechunk(const std::string& body) {
  std::string out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    auto eol = body.find("\r\n", pos);
    if (eol == std::string::npos) break;
    auto size = std::stoul(body.substr(pos, eol - pos), nullptr, 16);
    if (size == 0) break;
    out += body.substr(eol + 2, size);
    pos = eol + 2 + size + 2;
  }
  return out;
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return {};
}

HttpResponse http_request(std::uint16_t port, const std::string& method, const std::string& target,
                          const std::string& body, const Headers& headers,
                          std::chrono::milliseconds timeout) {
  HttpResponse out;
  const auto until = Clock::now() + timeout;
  std::string error;
  int fd = connect_loopback(port, error);
  if (fd < 0) {
    out.body = error;
    return out;
  }
  std::string raw;
  if (send_all(fd, request_text(method, target, body, headers))) {
    while (read_some(fd, raw, until)) {
    }
  }
  ::close(fd);
  auto body_at = parse_head(raw, out);
  if (body_at == std::string::npos) {
    out.status = 0;
    out.body = "no complete response within the timeout";
    return out;
  }
  out.body = raw.substr(body_at);
  if (iequals(out.header("Transfer-Encoding"), "chunked")) out.body = dechunk(out.body);
  return out;
}

SseClient::SseClient(std::uint16_t port, std::string target, Headers headers, OnEvent on_event)
    : on_event_(std::move(on_event)) {
  std::string error;
  fd_ = connect_loopback(port, error);
  if (fd_ < 0) {
    closed_ = true;
    return;
  }
  headers.emplace_back("Accept", "text/event-stream");
  if (!send_all(fd_, request_text("GET", target, {}, headers))) {
    closed_ = true;
    return;
  }
  reader_ = std::thread([this] { run(); });
}

SseClient::~SseClient() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
  if (reader_.joinable()) reader_.join();
  if (fd_ >= 0) ::close(fd_);
}

void SseClient::run() {
  std::string raw;
  std::size_t body_at = std::string::npos;
  bool chunked = false;
  std::string stream;  // de-chunked body
  std::size_t chunk_pos = 0;
  SseEvent current;
  std::size_t consumed = 0;  // of `stream`: erased once per read, not once per event
  auto deliver = [&] {
    // Parse complete events out of `stream`.
    for (;;) {
      auto end = stream.find("\n\n", consumed);
      if (end == std::string::npos) {
        stream.erase(0, consumed);
        consumed = 0;
        return;
      }
      std::string block = stream.substr(consumed, end - consumed);
      consumed = end + 2;
      SseEvent ev;
      bool any = false;
      int data_lines = 0;
      std::size_t pos = 0;
      while (pos <= block.size()) {
        auto eol = block.find('\n', pos);
        std::string line = block.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
        pos = eol == std::string::npos ? block.size() + 1 : eol + 1;
        if (line.empty() || line[0] == ':') continue;
        auto colon = line.find(':');
        std::string field = line.substr(0, colon);
        std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
        if (!value.empty() && value[0] == ' ') value.erase(0, 1);
        if (field == "id") ev.id = value, any = true;
        if (field == "event") ev.event = value, any = true;
        if (field == "data") {
          if (data_lines++ > 0) ev.data += '\n';
          ev.data += value;
          any = true;
        }
      }
      if (!any) continue;
      if (ev.event.empty()) ev.event = "message";
      if (on_event_) {
        on_event_(std::move(ev));
        continue;
      }
      {
        std::lock_guard lock(mutex_);
        events_.push_back(std::move(ev));
      }
      cv_.notify_all();
    }
  };
  const auto forever = Clock::now() + std::chrono::hours(24);
  while (read_some(fd_, raw, forever)) {
    if (body_at == std::string::npos) {
      HttpResponse head;
      body_at = parse_head(raw, head);
      if (body_at == std::string::npos) continue;
      chunked = iequals(head.header("Transfer-Encoding"), "chunked");
      chunk_pos = body_at;
      {
        std::lock_guard lock(mutex_);
        status_ = head.status;
      }
      cv_.notify_all();
    }
    if (chunked) {
      for (;;) {
        auto eol = raw.find("\r\n", chunk_pos);
        if (eol == std::string::npos) break;
        auto size = std::stoul(raw.substr(chunk_pos, eol - chunk_pos), nullptr, 16);
        if (raw.size() < eol + 2 + size + 2) break;
        stream += raw.substr(eol + 2, size);
        chunk_pos = eol + 2 + size + 2;
      }
    } else {
      stream += raw.substr(chunk_pos);
      chunk_pos = raw.size();
    }
    raw.erase(0, chunk_pos);  // keep only an incomplete chunk: long streams stay small
    chunk_pos = 0;
    deliver();
  }
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  cv_.notify_all();
}

unsigned SseClient::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

bool SseClient::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

std::vector<SseEvent> SseClient::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

bool SseClient::wait(const std::function<bool(const std::vector<SseEvent>&)>& pred,
                     std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  cv_.wait_for(lock, timeout, [&] { return closed_ || pred(events_); });
  return pred(events_);
}

}  // namespace ts::testsupport

#pragma once
/// Blocking HTTP/1.1 and Server-Sent Events clients for integration tests (plain TCP, 127.0.0.1).
///
/// `http_request` opens one connection per call, bounded by `timeout`; it never throws for a
/// network error: status 0 and the error text in `body`. `SseClient` reads one event stream on its
/// own thread and keeps every event; methods are thread-safe.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ts::testsupport {

struct HttpResponse {
  unsigned status = 0;  ///< 0: no response (connection failed or timed out; see body)
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string header(std::string_view name) const;  ///< first match, case-insensitive; "" if none
};

using Headers = std::vector<std::pair<std::string, std::string>>;

HttpResponse http_request(std::uint16_t port, const std::string& method, const std::string& target,
                          const std::string& body = {}, const Headers& headers = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(10));

/// One SSE event as received.
struct SseEvent {
  std::string id;
  std::string event;  ///< "message" when the stream did not name it
  std::string data;   ///< data lines joined with '\n'
};

class SseClient {
 public:
  /// Called on the reader thread for each event instead of keeping it (events() stays empty):
  /// for long streams, e.g. a benchmark timing every event.
  using OnEvent = std::function<void(SseEvent&&)>;

  /// Connects and sends the request; the response status is available from status() once read.
  SseClient(std::uint16_t port, std::string target, Headers headers = {}, OnEvent on_event = {});
  ~SseClient();  ///< closes the connection and joins the reader
  SseClient(const SseClient&) = delete;
  SseClient& operator=(const SseClient&) = delete;

  unsigned status() const;
  bool closed() const;  ///< the server ended the stream (or the connection failed)
  std::vector<SseEvent> events() const;
  /// Waits (bounded) until `pred(events)` holds. Returns whether it did.
  bool wait(const std::function<bool(const std::vector<SseEvent>&)>& pred,
            std::chrono::milliseconds timeout) const;

 private:
  void run();

  mutable std::mutex mutex_;  // guards status_, closed_, events_
  mutable std::condition_variable cv_;
  unsigned status_ = 0;
  bool closed_ = false;
  std::vector<SseEvent> events_;
  OnEvent on_event_;
  int fd_ = -1;
  std::thread reader_;
};

}  // namespace ts::testsupport

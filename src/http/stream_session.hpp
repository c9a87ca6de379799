#pragma once
/// One SSE client connection after its request was accepted (internal to http::Server).
///
/// Lives on one io_context and is touched only by its thread (no locks). The Server's connection
/// coroutine runs `run()`; a read chain on the same socket notices the peer leaving; the Server's
/// sweep calls `sweep()` to enforce write deadlines. Holds its hub subscription from `attach` to
/// the end of `run()`.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http/sse.hpp"

namespace ts::http::detail {

class StreamSession final : public EventHub::Subscriber,
                            public std::enable_shared_from_this<StreamSession> {
 public:
  using Clock = std::chrono::steady_clock;

  StreamSession(boost::asio::any_io_executor executor, std::shared_ptr<EventHub> hub,
                std::string key, const StreamOptions& options, std::string remote);
  ~StreamSession();

  /// Subscribes to the hub (see EventHub::attach); live events queue from here on.
  EventHub::Attached attach(std::optional<std::uint64_t> last_event_id);
  /// Gives up the subscription before run() (the request was answered with an error instead).
  void detach();
  /// Writes the response header, `initial` (replay or snapshot + position), then live events
  /// until the peer leaves, the queue overflows, a write stalls, or shutdown() was called.
  boost::asio::awaitable<void> run(boost::asio::ip::tcp::socket socket,
                                   std::vector<EncodedEventPtr> initial);
  /// Server stop: flush what is queued, send `event: shutdown`, close (within close_grace).
  void shutdown();
  /// Closes the socket if a write has stalled past its deadline.
  void sweep(Clock::time_point now);

  bool deliver(const EncodedEventPtr& event) override;
  void flush() override;

  /// The frames a fresh stream starts with: `snapshot` (without ids) with `id: position` on the
  /// last one (or alone), so the browser resumes after `position` when it reconnects.
  static std::vector<EncodedEventPtr> snapshot_frames(const std::vector<Event>& snapshot,
                                                      std::uint64_t position);

 private:
  enum class Phase { Open, Closing, Closed };

  bool gather();
  void wake();
  void close_socket();
  void start_read();
  void overflow();
  std::size_t live_count() const { return live_.size() - live_head_; }
  void clear_live();

  boost::asio::any_io_executor executor_;
  std::shared_ptr<EventHub> hub_;
  std::string key_;
  StreamOptions options_;
  std::string remote_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer wake_;

  Phase phase_ = Phase::Open;
  bool attached_ = false;
  bool running_ = false;
  bool waiting_ = false;  // run() is parked on wake_
  bool writing_ = false;
  bool final_in_batch_ = false;
  bool heartbeat_due_ = false;
  bool flush_requested_ = false;
  std::uint64_t position_ = 0;
  Clock::time_point write_started_{};
  Clock::time_point last_write_{};
  Clock::time_point close_deadline_{};

  std::vector<EncodedEventPtr> initial_;  // header + replay/snapshot, written before live events
  // Live queue: live_[live_head_..] not yet written. A vector (not a deque) so an idle stream
  // holds no queue memory at all.
  std::vector<EncodedEventPtr> live_;
  std::size_t live_head_ = 0;
  std::size_t live_bytes_ = 0;
  EncodedEventPtr final_;  // disconnect/shutdown, written last

  std::vector<EncodedEventPtr> inflight_;
  std::vector<boost::asio::const_buffer> buffers_;
  std::array<char, 64> read_buffer_{};  // EventSource sends nothing; just notice EOF
};

}  // namespace ts::http::detail

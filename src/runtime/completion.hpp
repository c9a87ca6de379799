#pragma once
/// A one-shot result (bool) completed from any thread and awaited by one coroutine on its shard
/// with a deadline. Created by the awaiting side with its executor; shared with the completer by
/// shared_ptr so a late completion after a timeout is harmless.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>

namespace ts::runtime {

class Completion : public std::enable_shared_from_this<Completion> {
 public:
  explicit Completion(boost::asio::any_io_executor executor) : timer_(executor) {}

  /// Any thread, at most once effective: records the result and wakes the waiter on its shard.
  void complete(bool ok) {
    bool expected = false;
    if (!done_.compare_exchange_strong(expected, true)) return;
    ok_.store(ok);
    boost::asio::post(timer_.get_executor(), [self = shared_from_this()] { self->timer_.cancel(); });
  }

  bool done() const { return done_.load(); }

  /// On the owning shard: the result, or nullopt when the deadline passed first.
  boost::asio::awaitable<std::optional<bool>> wait(std::chrono::steady_clock::duration timeout) {
    if (done_.load()) co_return ok_.load();
    timer_.expires_after(timeout);
    boost::system::error_code ec;
    co_await timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    if (done_.load()) co_return ok_.load();
    co_return std::nullopt;
  }

 private:
  boost::asio::steady_timer timer_;
  std::atomic<bool> done_{false};
  std::atomic<bool> ok_{false};
};

}  // namespace ts::runtime

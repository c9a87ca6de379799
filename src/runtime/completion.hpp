#pragma once
/// A one-shot result (bool) completed from any thread and awaited by one coroutine on its shard
/// with a deadline.
///
/// Shared (shared_ptr) between the waiter and the completer, and safe to destroy on either
/// thread: it holds no Asio I/O object. The waiter's timer lives in the waiting coroutine's frame
/// and is only touched on the waiter's executor (the completer posts its wake-up there).
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
  explicit Completion(boost::asio::any_io_executor executor) : executor_(std::move(executor)) {}

  /// Any thread, at most once effective: records the result and wakes the waiter on its shard.
  void complete(bool ok) {
    bool expected = false;
    if (!done_.compare_exchange_strong(expected, true)) return;
    ok_.store(ok);
    boost::asio::post(executor_, [self = shared_from_this()] {
      if (self->timer_ != nullptr) self->timer_->cancel();  // on the waiter's thread
    });
  }

  bool done() const { return done_.load(); }

  /// On the owning shard: the result, or nullopt when the deadline passed first.
  boost::asio::awaitable<std::optional<bool>> wait(std::chrono::steady_clock::duration timeout) {
    if (done_.load()) co_return ok_.load();
    boost::asio::steady_timer timer(executor_, timeout);
    timer_ = &timer;
    boost::system::error_code ec;
    // A completion that lands between the check above and here has posted its cancel, which
    // runs after this wait started: the timer is cancelled, not missed.
    co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    timer_ = nullptr;
    if (done_.load()) co_return ok_.load();
    co_return std::nullopt;
  }

 private:
  boost::asio::any_io_executor executor_;
  boost::asio::steady_timer* timer_ = nullptr;  // the waiter's; set and read on executor_ only
  std::atomic<bool> done_{false};
  std::atomic<bool> ok_{false};
};

}  // namespace ts::runtime

#include "runtime/completion.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <thread>

namespace ts::runtime {
namespace {

using namespace std::chrono_literals;

std::optional<bool> await_on(boost::asio::io_context& io, std::shared_ptr<Completion> c,
                             std::chrono::milliseconds timeout) {
  std::optional<bool> result;
  bool finished = false;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        result = co_await c->wait(timeout);
        finished = true;
      },
      boost::asio::detached);
  io.run_for(5s);
  EXPECT_TRUE(finished);
  return result;
}

TEST(Completion, CompletedFromAnotherThread) {
  boost::asio::io_context io;
  auto c = std::make_shared<Completion>(io.get_executor());
  std::thread t([c] { c->complete(true); });
  auto r = await_on(io, c, 5s);
  t.join();
  ASSERT_TRUE(r);
  EXPECT_TRUE(*r);
}

TEST(Completion, AlreadyCompletedReturnsAtOnce) {
  boost::asio::io_context io;
  auto c = std::make_shared<Completion>(io.get_executor());
  c->complete(false);
  c->complete(true);  // ignored: one-shot
  auto r = await_on(io, c, 5s);
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
}

TEST(Completion, DeadlinePassesWithoutCompletion) {
  boost::asio::io_context io;
  auto c = std::make_shared<Completion>(io.get_executor());
  EXPECT_FALSE(await_on(io, c, 20ms));
}

}  // namespace
}  // namespace ts::runtime

namespace ts::runtime {
namespace {
// The completer may hold the last reference after the waiter and its io_context are gone (a
// C library's callback thread releasing its bookkeeping late): releasing it there must be safe.
// With a timer inside the shared state this was a use-after-free (found by ASan).
TEST(Completion, LastReferenceMayDieOnAnotherThreadAfterTheWaiter) {
  std::shared_ptr<Completion> held_by_completer;
  {
    boost::asio::io_context io;
    auto c = std::make_shared<Completion>(io.get_executor());
    held_by_completer = c;
    std::thread t([c] { c->complete(true); });
    t.join();
    auto r = await_on(io, c, std::chrono::seconds(5));
    ASSERT_TRUE(r);
    EXPECT_TRUE(*r);
  }
  std::thread t([c = std::move(held_by_completer)]() mutable { c.reset(); });
  t.join();
}
}  // namespace
}  // namespace ts::runtime

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

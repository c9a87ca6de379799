#include "runtime/shard_pool.hpp"

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>

#include <atomic>
#include <future>

namespace ts::runtime {
namespace {

TEST(ShardPool, EachShardRunsOnItsOwnThread) {
  ShardPool pool(2);
  pool.start();
  std::promise<std::size_t> a, b;
  boost::asio::post(pool.shard(0), [&] { a.set_value(pool.current()); });
  boost::asio::post(pool.shard(1), [&] { b.set_value(pool.current()); });
  EXPECT_EQ(a.get_future().get(), 0u);
  EXPECT_EQ(b.get_future().get(), 1u);
  EXPECT_EQ(pool.current(), 2u);  // the test thread is no shard
  pool.stop();
}

TEST(ShardPool, ZeroWorkersMeansHardwareThreads) {
  ShardPool pool(0);
  EXPECT_GE(pool.size(), 1u);
}

}  // namespace
}  // namespace ts::runtime

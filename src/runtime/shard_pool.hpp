#pragma once
/// Thread-per-core execution: N shards, each an io_context run by exactly one thread.
///
/// Owned by main(). `start` launches the threads; `stop` stops every io_context and joins.
/// Work posted to a shard runs on that shard's thread only, so objects owned by a shard need no
/// locks. `shard(i)` and `size()` may be called from any thread.
#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

namespace ts::runtime {

class ShardPool {
 public:
  /// `workers` = 0 means one shard per hardware thread.
  explicit ShardPool(std::size_t workers);
  ~ShardPool();
  ShardPool(const ShardPool&) = delete;
  ShardPool& operator=(const ShardPool&) = delete;

  std::size_t size() const { return shards_.size(); }
  boost::asio::io_context& shard(std::size_t i) { return *shards_[i]->io; }

  void start();
  /// Stops accepting new work and joins the threads (pending handlers are dropped).
  void stop();
  /// Index of the shard whose thread is the caller, or size() when it is none of them.
  std::size_t current() const;

 private:
  struct Shard {
    std::unique_ptr<boost::asio::io_context> io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard;
    std::thread thread;
  };
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace ts::runtime

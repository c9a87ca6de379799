#include "runtime/shard_pool.hpp"

namespace ts::runtime {
namespace {
thread_local std::size_t t_shard_index = static_cast<std::size_t>(-1);
}

ShardPool::ShardPool(std::size_t workers) {
  if (workers == 0) workers = std::max(1u, std::thread::hardware_concurrency());
  for (std::size_t i = 0; i < workers; ++i) {
    // concurrency hint 1: each io_context is run by one thread, so Asio may skip its locking.
    auto io = std::make_unique<boost::asio::io_context>(1);
    auto guard = boost::asio::make_work_guard(*io);
    shards_.push_back(std::make_unique<Shard>(Shard{std::move(io), std::move(guard), {}}));
  }
}

ShardPool::~ShardPool() { stop(); }

void ShardPool::start() {
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    auto* s = shards_[i].get();
    s->thread = std::thread([s, i] {
      t_shard_index = i;
      s->io->run();
    });
  }
}

void ShardPool::stop() {
  for (auto& s : shards_) {
    s->guard.reset();
    s->io->stop();
  }
  for (auto& s : shards_)
    if (s->thread.joinable()) s->thread.join();
}

std::size_t ShardPool::current() const {
  return t_shard_index < shards_.size() ? t_shard_index : shards_.size();
}

}  // namespace ts::runtime

#include "state/redis/connection.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#include <string>
#include <vector>

#include <fmt/format.h>

#include "state/redis/errc.hpp"

namespace ts::state::redis {
namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  if (ms.count() <= 0) ms = std::chrono::milliseconds(1);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

/// Blocks SIGPIPE on the calling thread while it lives. hiredis writes with write(2), which
/// raises SIGPIPE (default action: end the process) when Redis has closed the connection; with
/// the signal blocked the write fails with EPIPE instead and the connection is reconnected. A
/// SIGPIPE raised meanwhile is consumed before the previous mask is restored, so it never fires.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &old_);
    was_blocked_ = sigismember(&old_, SIGPIPE) == 1;
  }
  ~SigpipeGuard() {
    if (was_blocked_) return;
    sigset_t pending;
    sigemptyset(&pending);
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      const timespec zero{};
      while (sigtimedwait(&pipe, nullptr, &zero) == SIGPIPE) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t old_{};
  bool was_blocked_ = false;
};

// Boost's error_category has a protected non-virtual destructor by design.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class RedisCategory final : public boost::system::error_category {
 public:
  constexpr RedisCategory() noexcept : error_category(0x7473726564697331ULL) {}
  const char* name() const noexcept override { return "ts.redis"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::connect_failed:
        return "cannot connect to Redis";
      case errc::auth_failed:
        return "Redis refused AUTH or SELECT";
      case errc::io_error:
        return "Redis connection broken or timed out";
      case errc::server_error:
        return "Redis answered with an error";
      case errc::bad_reply:
        return "unexpected reply from Redis";
      case errc::bad_value:
        return "stored value is not in our format";
      case errc::not_connected:
        return "not connected to Redis";
    }
    return "unknown Redis error " + std::to_string(ev);
  }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& category() noexcept {
  static const RedisCategory c;
  return c;
}

std::string_view reply_text(const redisReply& r) noexcept {
  if (r.type == REDIS_REPLY_ERROR || r.type == REDIS_REPLY_STATUS || r.type == REDIS_REPLY_STRING) {
    return {r.str, r.len};
  }
  return {};
}

bool is_error(const redisReply& r) noexcept { return r.type == REDIS_REPLY_ERROR; }

Connection::Connection(RedisConfig config) : config_(std::move(config)) {}

Connection::~Connection() { close(); }

void Connection::close() noexcept {
  if (ctx_ != nullptr) redisFree(ctx_);
  ctx_ = nullptr;
}

boost::system::error_code Connection::fail(std::string text) {
  error_ = std::move(text);
  close();
  return errc::io_error;
}

boost::system::error_code Connection::connect() {
  close();
  const timeval connect_tv = to_timeval(config_.connect_timeout);
  redisContext* c = config_.unix_path.empty()
                        ? redisConnectWithTimeout(config_.host.c_str(), config_.port, connect_tv)
                        : redisConnectUnixWithTimeout(config_.unix_path.c_str(), connect_tv);
  if (c == nullptr) {
    error_ = "out of memory";
    return errc::connect_failed;
  }
  if (c->err != 0) {
    error_ = c->errstr;
    redisFree(c);
    return errc::connect_failed;
  }
  ctx_ = c;
  if (redisSetTimeout(ctx_, to_timeval(config_.command_timeout)) != REDIS_OK) {
    fail(fmt::format("cannot set socket timeouts: {}", ctx_->errstr));
    return errc::connect_failed;
  }
  if (config_.unix_path.empty()) redisEnableKeepAlive(ctx_);
  auto check = [&](Result<Reply> r, std::string_view what) -> boost::system::error_code {
    if (!r) return r.error();
    if (is_error(**r)) {
      error_ = fmt::format("{} refused: {}", what, reply_text(**r));
      close();
      return errc::auth_failed;
    }
    return {};
  };
  if (!config_.password.empty()) {
    auto r = config_.username.empty() ? command({"AUTH", config_.password})
                                      : command({"AUTH", config_.username, config_.password});
    if (auto ec = check(std::move(r), "AUTH")) return ec;
  }
  if (config_.db != 0) {
    const std::string db = std::to_string(config_.db);
    if (auto ec = check(command({"SELECT", db}), "SELECT " + db)) return ec;
  }
  error_.clear();
  return {};
}

void Connection::append(std::span<const std::string_view> args) {
  if (ctx_ == nullptr) return;
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (std::string_view a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()) !=
      REDIS_OK) {
    fail(fmt::format("cannot queue a command: {}", ctx_->errstr));
  }
}

boost::system::error_code Connection::flush() {
  if (ctx_ == nullptr) return errc::not_connected;
  if (sdslen(ctx_->obuf) == 0) return {};
  SigpipeGuard guard;  // the only place that writes to the socket
  int done = 0;
  while (done == 0) {
    if (redisBufferWrite(ctx_, &done) != REDIS_OK) return fail(ctx_->errstr);
  }
  return {};
}

Result<Reply> Connection::read_reply() {
  if (ctx_ == nullptr) return make_error_code(errc::not_connected);
  if (auto ec = flush()) return ec;  // so that redisGetReply only reads
  void* raw = nullptr;
  if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) return fail(ctx_->errstr);
  return Reply(static_cast<redisReply*>(raw));
}

Result<Reply> Connection::command(std::span<const std::string_view> args) {
  if (ctx_ == nullptr) return make_error_code(errc::not_connected);
  append(args);
  return read_reply();
}

boost::system::error_code Connection::read_available() {
  if (ctx_ == nullptr) return errc::not_connected;
  if (redisBufferRead(ctx_) != REDIS_OK) return fail(ctx_->errstr);
  return {};
}

Result<Reply> Connection::next_buffered_reply() {
  if (ctx_ == nullptr) return make_error_code(errc::not_connected);
  void* raw = nullptr;
  if (redisGetReplyFromReader(ctx_, &raw) != REDIS_OK) return fail(ctx_->errstr);
  return Reply(static_cast<redisReply*>(raw));
}

}  // namespace ts::state::redis

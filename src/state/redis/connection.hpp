#pragma once
/// One blocking hiredis connection with timeouts on everything (internal to state/redis: its
/// header includes hiredis, which only the state library links).
///
/// Owner: one thread (RedisMirror's, or one of PubSub's); not thread-safe. Every call is bounded:
/// connecting by RedisConfig::connect_timeout, each socket read/write by command_timeout. A failed
/// call leaves the connection closed (connected() false); the owner reconnects. error_text() says
/// why the last call failed (hiredis' errstr or the server's error), never with credentials.
#include <hiredis/hiredis.h>

#include <boost/system/error_code.hpp>

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "state/redis/redis_config.hpp"

namespace ts::state::redis {

struct ReplyDeleter {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

/// The text of an error or status reply, else "".
std::string_view reply_text(const redisReply& r) noexcept;
bool is_error(const redisReply& r) noexcept;

class Connection {
 public:
  explicit Connection(RedisConfig config);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// (Re)connects: TCP or unix socket, keep-alive, AUTH, SELECT. Errors: connect_failed,
  /// auth_failed, io_error.
  boost::system::error_code connect();
  void close() noexcept;
  bool connected() const noexcept { return ctx_ != nullptr; }

  /// Sends one command and reads its reply. An error reply is a value (check is_error); errors
  /// are io_error (connection closed) and not_connected.
  Result<Reply> command(std::span<const std::string_view> args);
  Result<Reply> command(std::initializer_list<std::string_view> args) {
    return command(std::span<const std::string_view>(args.begin(), args.size()));
  }

  /// Pipelining: append commands, then flush() or read_reply() (which flushes) once per command.
  void append(std::span<const std::string_view> args);
  void append(std::initializer_list<std::string_view> args) {
    append(std::span<const std::string_view>(args.begin(), args.size()));
  }
  boost::system::error_code flush();
  Result<Reply> read_reply();

  /// For a reader that polls the socket itself (PubSub): the socket, one read of what is
  /// available (call only when poll() says readable), and the next complete reply already read
  /// (nullptr when none).
  int fd() const noexcept { return ctx_ ? ctx_->fd : -1; }
  boost::system::error_code read_available();
  Result<Reply> next_buffered_reply();

  const std::string& error_text() const noexcept { return error_; }
  const RedisConfig& config() const noexcept { return config_; }

 private:
  boost::system::error_code fail(std::string text);

  RedisConfig config_;
  redisContext* ctx_ = nullptr;
  std::string error_;
};

}  // namespace ts::state::redis

#pragma once
/// A real redis-server on 127.0.0.1 for integration tests.
///
/// Owner: the test or fixture that creates it; not thread-safe, except port(), url() and
/// command(), which may be called from any thread. Each server has its own TempDir holding
/// redis.conf and redis.log (the server log, kept across restarts). Persistence is off (no RDB,
/// no AOF), so stop() + start() simulates an outage on the SAME port that also loses the data,
/// and the restarted server has a new run_id.
///
/// Failure: the constructor and start() throw std::runtime_error if redis-server is missing,
/// exits during start-up, or does not accept connections within `start_timeout`; the message
/// carries the server log. command() throws std::runtime_error if it cannot connect or the
/// connection breaks (an error reply is a value). The destructor stops the server.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace ts::testsupport {

struct RedisServerOptions {
  /// Non-empty: `requirepass` (clients AUTH with this password, user "default").
  std::string password;
  /// Lines appended verbatim to redis.conf (e.g. "maxmemory 1mb").
  std::vector<std::string> extra_config;
  std::filesystem::path binary = "/usr/bin/redis-server";
  std::chrono::milliseconds start_timeout{10'000};
};

/// A reply as plain values, for assertions.
struct RedisReply {
  enum class Type { Nil, Status, Error, Integer, String, Array };
  Type type = Type::Nil;
  std::string str;                   ///< Status, Error, String
  long long integer = 0;             ///< Integer
  std::vector<RedisReply> elements;  ///< Array

  bool is_error() const { return type == Type::Error; }
  bool is_nil() const { return type == Type::Nil; }
};

class RedisServer {
 public:
  /// Writes the config and starts the server; returns once it accepts connections.
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();

  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::uint16_t port() const { return port_; }
  /// "redis://[:password@]127.0.0.1:<port>/<db>".
  std::string url(int db = 0) const;

  /// True while the server process is alive.
  bool running();

  /// SIGTERM (then SIGKILL after 5 s); clients see their connections closed. The data is gone.
  /// Idempotent.
  void stop();

  /// Starts the server again with the same config on the same port; returns once it accepts.
  /// Throws std::logic_error if it is already running, std::runtime_error as the constructor.
  void start();

  /// Runs one command on a fresh connection (AUTH with the password, SELECT `db`), with a 5 s
  /// timeout, and returns the reply.
  RedisReply command(const std::vector<std::string>& args, int db = 0) const;

  /// The server log of every run so far.
  std::string log_text() const;

  const std::filesystem::path& dir() const { return dir_.path(); }

 private:
  void write_config() const;
  /// Starts the process and waits until it accepts. False if it exited because the port was
  /// taken meanwhile; throws for another failure.
  bool launch();

  RedisServerOptions options_;
  TempDir dir_;
  std::uint16_t port_ = 0;
  std::optional<Process> process_;
};

}  // namespace ts::testsupport

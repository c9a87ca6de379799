#include "support/redis_server.hpp"

#include <hiredis/hiredis.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "support/ports.hpp"
#include "support/wait_for.hpp"

namespace ts::testsupport {
namespace {

constexpr int kLaunchAttempts = 3;
constexpr std::chrono::milliseconds kStopGrace{5'000};
constexpr timeval kCommandTimeout{5, 0};

struct ContextDeleter {
  void operator()(redisContext* c) const noexcept { redisFree(c); }
};
struct ReplyDeleter {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

RedisReply convert(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::Status;
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::Error;
      break;
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::String;
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::Integer;
      out.integer = r.integer;
      return out;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::Array;
      for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(convert(*r.element[i]));
      return out;
    default:
      return out;  // nil
  }
  out.str.assign(r.str, r.len);
  return out;
}

ReplyPtr run(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  void* raw = redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data());
  if (raw == nullptr) {
    throw std::runtime_error(
        fmt::format("RedisServer::command {}: {}", args.empty() ? "" : args[0], c->errstr));
  }
  return ReplyPtr(static_cast<redisReply*>(raw));
}

}  // namespace

RedisServer::RedisServer(RedisServerOptions options)
    : options_(std::move(options)), dir_("ts-redis") {
  if (::access(options_.binary.c_str(), X_OK) != 0) {
    throw std::runtime_error(
        fmt::format("RedisServer: {} is not an executable ({}); install the 'redis-server' package",
                    options_.binary.string(), std::strerror(errno)));
  }
  // free_port() only finds a port that is free right now; if another process takes it before
  // redis-server binds, it exits and we try again with a fresh port.
  for (int attempt = 1; attempt <= kLaunchAttempts; ++attempt) {
    port_ = free_port();
    write_config();
    if (launch()) return;
  }
  throw std::runtime_error(
      fmt::format("RedisServer: port taken {} times in a row during start-up; log:\n{}",
                  kLaunchAttempts, log_text()));
}

RedisServer::~RedisServer() {
  try {
    stop();
  } catch (const std::exception& e) {
    std::cerr << "RedisServer: " << e.what() << '\n';
  }
}

std::string RedisServer::url(int db) const {
  return fmt::format("redis://{}127.0.0.1:{}/{}",
                     options_.password.empty() ? "" : ":" + options_.password + "@", port_, db);
}

void RedisServer::write_config() const {
  std::string conf;
  conf += fmt::format("port {}\n", port_);
  conf += "bind 127.0.0.1\n";
  conf += "daemonize no\n";
  conf += "save \"\"\n";
  conf += "appendonly no\n";
  conf += fmt::format("dir {}\n", dir_.path().string());
  conf += "logfile \"\"\n";  // stdout, which Process writes to redis-server.stdout
  conf += "loglevel notice\n";
  if (!options_.password.empty()) conf += fmt::format("requirepass {}\n", options_.password);
  for (const std::string& line : options_.extra_config) conf += line + "\n";
  dir_.write_file("redis.conf", conf);
}

bool RedisServer::launch() {
  const std::size_t log_offset = log_text().size();
  process_.emplace(
      Process::start({.argv = {options_.binary.string(), dir_.file("redis.conf").string()},
                      .output_dir = dir_.path(),
                      .name = "redis-server",
                      .append_output = true}));
  const auto listening = [&] {
    return log_text().find("Ready to accept connections", log_offset) != std::string::npos &&
           tcp_connectable(port_);
  };
  const ::testing::AssertionResult ready =
      wait_for([&] { return !process_->running() || listening(); }, options_.start_timeout,
               fmt::format("redis-server to accept on 127.0.0.1:{}", port_));
  if (!process_->running()) {
    const std::string log = log_text().substr(log_offset);
    if (log.find("Address already in use") != std::string::npos) return false;
    throw std::runtime_error(
        fmt::format("RedisServer: redis-server exited with status {} during start-up; log:\n{}",
                    *process_->exit_status(), log));
  }
  if (!ready) {
    process_->terminate(kStopGrace);
    throw std::runtime_error(
        fmt::format("RedisServer: {}; log:\n{}", ready.message(), log_text().substr(log_offset)));
  }
  return true;
}

bool RedisServer::running() { return process_ && process_->running(); }

void RedisServer::stop() {
  if (process_) process_->terminate(kStopGrace);
}

void RedisServer::start() {
  if (running()) throw std::logic_error("RedisServer::start: already running");
  if (!launch()) {
    throw std::runtime_error(fmt::format(
        "RedisServer: restart on port {} failed: the port was taken meanwhile; log:\n{}", port_,
        log_text()));
  }
}

RedisReply RedisServer::command(const std::vector<std::string>& args, int db) const {
  Context c(redisConnectWithTimeout("127.0.0.1", port_, kCommandTimeout));
  if (!c || c->err != 0) {
    throw std::runtime_error(fmt::format("RedisServer::command: cannot connect to port {}: {}",
                                         port_, c ? c->errstr : "out of memory"));
  }
  redisSetTimeout(c.get(), kCommandTimeout);
  if (!options_.password.empty()) {
    ReplyPtr auth = run(c.get(), {"AUTH", options_.password});
    if (auth->type == REDIS_REPLY_ERROR) {
      throw std::runtime_error(fmt::format("RedisServer::command: AUTH: {}", auth->str));
    }
  }
  if (db != 0) {
    ReplyPtr select = run(c.get(), {"SELECT", std::to_string(db)});
    if (select->type == REDIS_REPLY_ERROR) {
      throw std::runtime_error(fmt::format("RedisServer::command: SELECT: {}", select->str));
    }
  }
  return convert(*run(c.get(), args));
}

std::string RedisServer::log_text() const {
  return read_file_text(dir_.file("redis-server.stdout"));
}

}  // namespace ts::testsupport

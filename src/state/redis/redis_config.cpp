#include "state/redis/redis_config.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <charconv>
#include <stdexcept>

#include <fmt/format.h>

namespace ts::state::redis {
namespace {

[[noreturn]] void fail(std::string_view why) {
  throw std::invalid_argument(fmt::format("REDIS_URL: {}", why));
}

int parse_db(std::string_view text) {
  int db = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), db);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || db < 0) {
    fail(fmt::format("database \"{}\" is not a number >= 0", text));
  }
  return db;
}

void read_userinfo(const boost::urls::url_view& u, RedisConfig& c) {
  if (!u.has_userinfo()) return;
  // redis-cli: "user:password@", ":password@", or "password@" (no colon: a password).
  if (u.has_password()) {
    c.username = u.user();
    c.password = u.password();
  } else {
    c.password = u.user();
  }
  if (!c.username.empty() && c.password.empty()) fail("a user name needs a password");
}

}  // namespace

std::string RedisConfig::describe() const {
  if (!unix_path.empty()) {
    return db == 0 ? fmt::format("unix://{}", unix_path)
                   : fmt::format("unix://{}?db={}", unix_path, db);
  }
  const bool v6 = host.find(':') != std::string::npos;
  return fmt::format("redis://{}{}{}:{}/{}", v6 ? "[" : "", host, v6 ? "]" : "", port, db);
}

RedisConfig parse_redis_url(std::string_view url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) {
    fail(
        fmt::format("\"{}\" is not a URL (expected redis://[[user]:password@]host[:port][/db] "
                    "or unix:///path)",
                    url));
  }
  const boost::urls::url_view& u = *parsed;
  RedisConfig c;
  const std::string_view scheme = u.scheme();
  if (scheme == "rediss") {
    fail(
        "rediss:// (TLS) is not supported: the hiredis library of this build has no TLS; use "
        "redis:// on a private network or a local TLS tunnel");
  }
  if (scheme == "unix") {
    read_userinfo(u, c);
    if (!u.encoded_host_address().empty()) {
      fail("unix:// takes a path, not a host: unix:///path/to/redis.sock");
    }
    c.unix_path = u.path();
    if (c.unix_path.empty() || c.unix_path == "/") fail("unix:// needs a socket path");
    for (const auto& param : u.params()) {
      if (param.key != "db") fail(fmt::format("unknown parameter \"{}\" (only db)", param.key));
      c.db = parse_db(param.value);
    }
    return c;
  }
  if (scheme != "redis") {
    fail(fmt::format("unsupported scheme \"{}\" (expected redis:// or unix://)", scheme));
  }
  read_userinfo(u, c);
  c.host = u.host_address();
  if (c.host.empty()) fail("no host (expected redis://host[:port][/db])");
  if (u.has_port()) {
    const std::string_view text = u.port();
    unsigned port = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || port == 0 ||
        port > 65535) {
      fail(fmt::format("port \"{}\" is not a number in 1..65535", text));
    }
    c.port = static_cast<std::uint16_t>(port);
  }
  std::string path = u.path();
  if (!path.empty() && path != "/") c.db = parse_db(std::string_view(path).substr(1));
  if (u.has_query()) fail("redis:// takes no parameters");
  return c;
}

}  // namespace ts::state::redis

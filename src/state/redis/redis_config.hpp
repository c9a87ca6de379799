#pragma once
/// Where and how to reach Redis (REDIS_URL), shared by RedisMirror and PubSub. A plain value.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace ts::state::redis {

struct RedisConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string unix_path;  ///< non-empty: connect to this unix socket instead of host:port
  std::string username;   ///< ACL user (Redis 6+); empty: AUTH with the password alone
  std::string password;   ///< empty: no AUTH
  int db = 0;             ///< SELECTed after connecting when not 0
  std::chrono::milliseconds connect_timeout{2'000};  ///< per connection attempt
  std::chrono::milliseconds command_timeout{2'000};  ///< per socket read/write of a command

  /// The URL without credentials, for logs: "redis://127.0.0.1:6379/0", "unix:///run/r.sock".
  std::string describe() const;
};

/// Parses REDIS_URL. Accepted forms (as redis-cli reads them):
///   redis://host[:port][/db]            port defaults to 6379, db to 0
///   redis://:password@host[:port][/db]  redis://password@host… (no colon) is the same
///   redis://user:password@host[:port][/db]
///   unix:///path/to/redis.sock[?db=N]   also unix://[user:]password@/path…
/// User and password may be percent-encoded. Throws std::invalid_argument with a message that
/// names the problem (start-up configuration, like the rest of the config loader); rediss://
/// is refused because the hiredis of Debian bookworm (0.14) has no TLS.
RedisConfig parse_redis_url(std::string_view url);

}  // namespace ts::state::redis

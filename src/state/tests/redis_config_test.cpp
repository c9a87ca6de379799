#include "state/redis/redis_config.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace ts::state::redis {
namespace {

TEST(RedisUrl, HostPortAndDatabase) {
  auto c = parse_redis_url("redis://cache.internal:6380/3");
  EXPECT_EQ(c.host, "cache.internal");
  EXPECT_EQ(c.port, 6380);
  EXPECT_EQ(c.db, 3);
  EXPECT_TRUE(c.password.empty());
  EXPECT_TRUE(c.username.empty());
  EXPECT_TRUE(c.unix_path.empty());
  EXPECT_EQ(c.describe(), "redis://cache.internal:6380/3");
}

TEST(RedisUrl, Defaults) {
  auto c = parse_redis_url("redis://127.0.0.1");
  EXPECT_EQ(c.port, 6379);
  EXPECT_EQ(c.db, 0);
  EXPECT_EQ(parse_redis_url("redis://h/").db, 0);
}

TEST(RedisUrl, PasswordForms) {
  auto a = parse_redis_url("redis://:s3cret@h:1/0");
  EXPECT_EQ(a.password, "s3cret");
  EXPECT_TRUE(a.username.empty());
  auto b = parse_redis_url("redis://s3cret@h");  // redis-cli: no colon = password
  EXPECT_EQ(b.password, "s3cret");
  EXPECT_TRUE(b.username.empty());
  auto c = parse_redis_url("redis://alice:p%40ss%3Aword@h:2/1");
  EXPECT_EQ(c.username, "alice");
  EXPECT_EQ(c.password, "p@ss:word");
  EXPECT_EQ(c.db, 1);
  // Credentials never appear in describe().
  EXPECT_EQ(c.describe().find("ss"), std::string::npos);
}

TEST(RedisUrl, Ipv6Host) {
  auto c = parse_redis_url("redis://[::1]:7000");
  EXPECT_EQ(c.host, "::1");
  EXPECT_EQ(c.port, 7000);
  EXPECT_EQ(c.describe(), "redis://[::1]:7000/0");
}

TEST(RedisUrl, UnixSocket) {
  auto c = parse_redis_url("unix:///run/redis/redis.sock?db=2");
  EXPECT_EQ(c.unix_path, "/run/redis/redis.sock");
  EXPECT_EQ(c.db, 2);
  EXPECT_EQ(c.describe(), "unix:///run/redis/redis.sock?db=2");
  auto p = parse_redis_url("unix://:pw@/tmp/r.sock");
  EXPECT_EQ(p.password, "pw");
  EXPECT_EQ(p.unix_path, "/tmp/r.sock");
}

TEST(RedisUrl, ErrorsNameTheProblem) {
  auto message = [](const char* url) {
    try {
      parse_redis_url(url);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message("rediss://h:6380").find("TLS"), std::string::npos);
  EXPECT_NE(message("http://h").find("unsupported scheme \"http\""), std::string::npos);
  EXPECT_NE(message("redis://h/x").find("database \"x\""), std::string::npos);
  EXPECT_NE(message("redis://h/-1").find("database"), std::string::npos);
  EXPECT_NE(message("redis://h:0").find("port"), std::string::npos);
  EXPECT_NE(message("redis://h:99999").find("port \"99999\""), std::string::npos);
  EXPECT_NE(message("redis://:6379").find("no host"), std::string::npos);
  EXPECT_NE(message("redis://h?db=1").find("no parameters"), std::string::npos);
  EXPECT_NE(message("unix://").find("socket path"), std::string::npos);
  EXPECT_NE(message("unix:///s?timeout=1").find("unknown parameter"), std::string::npos);
  EXPECT_NE(message("not a url").find("not a URL"), std::string::npos);
  EXPECT_NE(message("redis://alice:@h").find("needs a password"), std::string::npos);
}

}  // namespace
}  // namespace ts::state::redis

#include "auth.hpp"

#include "http/router.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

namespace ts::api {
namespace {

TEST(Tokens, AreRandomAndHashed) {
  auto a = generate_token(), b = generate_token();
  EXPECT_NE(a, b);
  EXPECT_TRUE(a.starts_with("tsk_"));
  EXPECT_EQ(a.size(), 4u + 43u);
  EXPECT_EQ(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(TokenAuth, AcceptsBearerOrCookieOfAKnownToken) {
  TokenAuth auth;
  auto token = generate_token();
  auth.add_hash(token_hash(token));
  EXPECT_TRUE(auth.check("Bearer " + token, std::nullopt));
  EXPECT_TRUE(auth.check("bearer  " + token + " ", std::nullopt));
  EXPECT_TRUE(auth.check(std::nullopt, "a=b; teslasync_token=" + token + "; c=d"));
  EXPECT_FALSE(auth.check("Bearer x" + token, std::nullopt));
  EXPECT_FALSE(auth.check("Basic " + token, std::nullopt));
  EXPECT_FALSE(auth.check(std::nullopt, "teslasync_tokenx=" + token));
  EXPECT_FALSE(auth.check(std::nullopt, std::nullopt));
  EXPECT_FALSE(auth.check("Bearer ", "teslasync_token="));
}

http::Request with_headers(http::Fields headers, std::string method = "POST") {
  return http::Request{.method = std::move(method), .target = "/", .headers = std::move(headers)};
}

TEST(SameOrigin, ComparesOriginHostPortWithHostIgnoringDefaultPorts) {
  EXPECT_TRUE(same_origin(
      with_headers({{"Host", "api.example:8080"}, {"Origin", "http://api.example:8080"}})));
  EXPECT_TRUE(
      same_origin(with_headers({{"Host", "API.example"}, {"Origin", "https://api.example:443"}})));
  EXPECT_TRUE(
      same_origin(with_headers({{"Host", "api.example:80"}, {"Origin", "http://api.example"}})));
  EXPECT_FALSE(same_origin(
      with_headers({{"Host", "api.example:8080"}, {"Origin", "http://api.example:8081"}})));
  EXPECT_FALSE(
      same_origin(with_headers({{"Host", "api.example"}, {"Origin", "http://evil.example"}})));
  EXPECT_FALSE(same_origin(with_headers({{"Host", "api.example"}, {"Origin", "null"}})));
  EXPECT_FALSE(same_origin(with_headers({{"Origin", "http://api.example"}})));
  EXPECT_FALSE(same_origin(with_headers({{"Host", "api.example"}})));
  EXPECT_TRUE(
      same_origin(with_headers({{"Host", "api.example"}, {"Sec-Fetch-Site", "same-origin"}})));
  EXPECT_FALSE(
      same_origin(with_headers({{"Host", "api.example"}, {"Sec-Fetch-Site", "same-site"}})));
}

TEST(Authenticate, CookieOnlyWithJsonAndSameOriginForStateChanges) {
  TokenAuth auth;
  auto token = generate_token();
  auth.add(token_hash(token), 1, "admin");
  const std::string cookie = "teslasync_token=" + token;
  EXPECT_TRUE(authenticate(auth, with_headers({{"Cookie", cookie}}, "GET")));
  EXPECT_TRUE(authenticate(auth, with_headers({{"Cookie", cookie}}, "HEAD")));
  EXPECT_THROW(
      authenticate(auth, with_headers({{"Cookie", cookie}, {"Host", "h"}, {"Origin", "http://h"}})),
      http::Error);
  EXPECT_TRUE(authenticate(auth, with_headers({{"Cookie", cookie},
                                               {"Host", "h"},
                                               {"Origin", "http://h"},
                                               {"Content-Type", "application/json"}},
                                              "DELETE")));
  EXPECT_EQ(authenticate(auth, with_headers({{"Cookie", "teslasync_token=nope"}}, "GET")).error(),
            make_error_code(http::errc::unauthorized));
  EXPECT_TRUE(authenticate(auth, with_headers({{"Authorization", "Bearer " + token}})));
  // A wrong bearer token does not fall back to a good cookie.
  EXPECT_FALSE(authenticate(
      auth, with_headers({{"Authorization", "Bearer nope"}, {"Cookie", cookie}}, "GET")));
  EXPECT_TRUE(auth.remove(1));
  EXPECT_FALSE(authenticate(auth, with_headers({{"Authorization", "Bearer " + token}})));
}

TEST(SecretFile, IsOwnerOnly) {
  auto path = std::filesystem::temp_directory_path() / ("ts-auth-test-" + generate_token());
  write_secret_file(path, "secret");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "secret");
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace ts::api

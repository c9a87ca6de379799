#include "auth.hpp"

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

#include "core/file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace ts::core {
namespace {

namespace fs = std::filesystem;

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct FileTest : ::testing::Test {
  fs::path dir;
  void SetUp() override {
    char tmpl[] = "/tmp/ts_file_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
  }
  void TearDown() override { fs::remove_all(dir); }
};

TEST_F(FileTest, WritesContentWithExactModeAndLeavesNoTemporaryFile) {
  const auto path = dir / "admin-token";
  const auto old_umask = ::umask(0);
  write_file_atomically(path, "secret\n", 0600);
  ::umask(old_umask);
  EXPECT_EQ(read_all(path), "secret\n");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  write_file_atomically(path, "second\n", 0600);
  EXPECT_EQ(read_all(path), "second\n");
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 1u) << "only the file itself, no temporary left behind";
}

// L9: a symlink planted at the old predictable `<path>.tmp` must not redirect the write.
TEST_F(FileTest, SymlinkAtTheOldTemporaryNameDoesNotRedirectTheWrite) {
  const auto path = dir / "admin-token";
  const auto victim = dir / "victim";
  { std::ofstream(victim) << "untouched"; }
  fs::create_symlink(victim, fs::path(path).concat(".tmp"));
  write_file_atomically(path, "secret\n", 0600);
  EXPECT_EQ(read_all(victim), "untouched");
  EXPECT_EQ(read_all(path), "secret\n");
  EXPECT_FALSE(fs::is_symlink(path));
}

TEST_F(FileTest, SymlinkAtThePathIsReplacedNotFollowed) {
  const auto path = dir / "admin-token";
  const auto victim = dir / "victim";
  { std::ofstream(victim) << "untouched"; }
  fs::create_symlink(victim, path);
  write_file_atomically(path, "secret\n", 0600);
  EXPECT_EQ(read_all(victim), "untouched");
  EXPECT_FALSE(fs::is_symlink(path));
  EXPECT_EQ(read_all(path), "secret\n");
}

TEST_F(FileTest, MissingDirectoryThrowsNamingThePath) {
  try {
    write_file_atomically(dir / "no-such-dir" / "f", "x", 0600);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-dir"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ts::core

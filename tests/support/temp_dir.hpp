#pragma once
/// A fresh directory for one test's files (configs, logs, databases).
///
/// Owned by the test (or fixture) that creates it; not thread-safe, but the path may be read from
/// any thread. Created with mkdtemp under $TMPDIR (or /tmp); the constructor throws
/// std::system_error if that fails. The destructor removes it recursively and never throws; with
/// TS_KEEP_TEST_DIRS=1 in the environment it is kept and its path printed to stderr instead.
#include <filesystem>
#include <string>
#include <string_view>

namespace ts::testsupport {

class TempDir {
 public:
  /// `prefix` becomes the start of the directory name: <tmp>/<prefix>-XXXXXX.
  explicit TempDir(std::string_view prefix = "ts-test");
  ~TempDir();

  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  /// path() / name. Creates nothing.
  std::filesystem::path file(std::string_view name) const { return path_ / name; }

  /// Writes `content` to path() / name (truncating) and returns that path. Throws
  /// std::runtime_error if the file cannot be written.
  std::filesystem::path write_file(std::string_view name, std::string_view content) const;

 private:
  void remove() noexcept;

  std::filesystem::path path_;  // empty once moved from
};

/// Reads a whole file; returns an empty string if it does not exist or cannot be read.
std::string read_file_text(const std::filesystem::path& path);

}  // namespace ts::testsupport

#include "support/temp_dir.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

namespace ts::testsupport {
namespace {

bool keep_test_dirs() {
  const char* keep = std::getenv("TS_KEEP_TEST_DIRS");
  return keep != nullptr && std::string_view(keep) == "1";
}

}  // namespace

TempDir::TempDir(std::string_view prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::filesystem::path base = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  std::string pattern = (base / (std::string(prefix) + "-XXXXXX")).string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "TempDir: mkdtemp " + pattern);
  }
  path_ = buf.data();
}

TempDir::~TempDir() { remove(); }

TempDir::TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

std::filesystem::path TempDir::write_file(std::string_view name, std::string_view content) const {
  std::filesystem::path target = file(name);
  std::ofstream out(target, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  if (!out) throw std::runtime_error("TempDir: cannot write " + target.string());
  return target;
}

void TempDir::remove() noexcept {
  if (path_.empty()) return;
  if (keep_test_dirs()) {
    std::cerr << "TS_KEEP_TEST_DIRS=1: keeping " << path_.string() << '\n';
  } else {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    if (ec)
      std::cerr << "TempDir: cannot remove " << path_.string() << ": " << ec.message() << '\n';
  }
  path_.clear();
}

std::string read_file_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace ts::testsupport

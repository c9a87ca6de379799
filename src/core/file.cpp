#include "core/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace ts::core {
namespace {

[[noreturn]] void fail(const std::filesystem::path& path, int err) {
  throw std::runtime_error(path.string() + ": " + std::strerror(err));
}

}  // namespace

void write_file_atomically(const std::filesystem::path& path, std::string_view content,
                           mode_t mode) {
  const auto tmp = std::filesystem::path(path).concat(".tmp");
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) fail(tmp, errno);
  auto close_and_fail = [&](int err) {
    ::close(fd);
    fail(tmp, err);
  };
  if (::fchmod(fd, mode) != 0) close_and_fail(errno);
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) close_and_fail(n < 0 ? errno : EIO);
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) close_and_fail(errno);
  if (::close(fd) != 0) fail(tmp, errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail(path, errno);
}

}  // namespace ts::core

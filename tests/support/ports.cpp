#include "support/ports.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace ts::testsupport {
namespace {

constexpr int kConnectTimeoutMs = 250;

class Socket {
 public:
  explicit Socket(int flags) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0)) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  return addr;
}

}  // namespace

std::uint16_t free_port() {
  Socket sock(0);
  if (sock.fd() < 0) throw std::system_error(errno, std::generic_category(), "free_port: socket");
  sockaddr_in addr = loopback(0);
  if (::bind(sock.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::system_error(errno, std::generic_category(), "free_port: bind 127.0.0.1:0");
  }
  socklen_t len = sizeof addr;
  if (::getsockname(sock.fd(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::system_error(errno, std::generic_category(), "free_port: getsockname");
  }
  // A socket that was only bound (never connected) leaves no TIME_WAIT behind on close.
  return ntohs(addr.sin_port);
}

bool tcp_connectable(std::uint16_t port) {
  Socket sock(SOCK_NONBLOCK);
  if (sock.fd() < 0) return false;
  sockaddr_in addr = loopback(port);
  if (::connect(sock.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return true;
  if (errno != EINPROGRESS) return false;
  pollfd pfd{sock.fd(), POLLOUT, 0};
  int n = 0;
  do {
    n = ::poll(&pfd, 1, kConnectTimeoutMs);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(sock.fd(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) return false;
  return err == 0;
}

}  // namespace ts::testsupport

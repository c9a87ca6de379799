// state/redis/Connection against a peer that misbehaves (a plain socket standing in for Redis).
// In state_redis_test (label redis) because it uses sockets.
#include "state/redis/connection.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "state/redis/errc.hpp"

namespace ts::state::redis {
namespace {

/// A listening socket on 127.0.0.1 that the test accepts from by hand.
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 4) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len)) {
      throw std::runtime_error("Listener: cannot listen on 127.0.0.1");
    }
    port_ = ntohs(addr.sin_port);
  }
  ~Listener() { ::close(fd_); }
  std::uint16_t port() const { return port_; }
  int accept() const { return ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC); }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

bool wait_readable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) > 0;
}

TEST(RedisConnection, WritingToAClosedConnectionFailsInsteadOfRaisingSigpipe) {
  Listener listener;
  RedisConfig config;
  config.port = listener.port();
  Connection conn(config);
  ASSERT_FALSE(conn.connect()) << conn.error_text();
  const int peer = listener.accept();
  ASSERT_GE(peer, 0);
  ::close(peer);  // Redis went away: FIN, then RST for anything we send
  ASSERT_TRUE(wait_readable(conn.fd(), 5000));

  // Writes after the peer's RST raise SIGPIPE, whose default action ends the process. Bounded:
  // the first write is accepted by the kernel, the RST comes back, a later write fails.
  const std::string big(1 << 20, 'x');
  boost::system::error_code ec;
  for (int i = 0; i < 20 && !ec; ++i) {
    conn.append({"SET", "k", big});
    ec = conn.flush();
    if (!ec) wait_readable(conn.fd(), 200);
  }
  EXPECT_EQ(ec, make_error_code(errc::io_error));
  EXPECT_FALSE(conn.connected());
  EXPECT_FALSE(conn.error_text().empty());
}

TEST(RedisConnection, AServerThatNeverAnswersTimesOut) {
  Listener listener;  // accepts (kernel backlog) but never replies
  RedisConfig config;
  config.port = listener.port();
  config.command_timeout = std::chrono::milliseconds(200);
  Connection conn(config);
  ASSERT_FALSE(conn.connect()) << conn.error_text();
  auto r = conn.command({"PING"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), make_error_code(errc::io_error));
  EXPECT_FALSE(conn.connected());
}

TEST(RedisConnection, ConnectFailsFastWhenNothingListens) {
  std::uint16_t port = 0;
  {
    Listener gone;
    port = gone.port();
  }
  RedisConfig config;
  config.port = port;
  Connection conn(config);
  EXPECT_EQ(conn.connect(), make_error_code(errc::connect_failed));
  EXPECT_NE(conn.error_text().find("refused"), std::string::npos) << conn.error_text();
}

}  // namespace
}  // namespace ts::state::redis

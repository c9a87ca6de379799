#include "http/server.hpp"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <thread>

namespace ts::http {
namespace {

using boost::asio::ip::tcp;

std::string roundtrip(std::uint16_t port, const std::string& raw) {
  boost::asio::io_context io;
  tcp::socket s(io);
  s.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  boost::asio::write(s, boost::asio::buffer(raw));
  std::string out;
  boost::system::error_code ec;
  char buf[4096];
  for (;;) {
    size_t n = s.read_some(boost::asio::buffer(buf), ec);
    if (ec) break;
    out.append(buf, n);
  }
  return out;
}

struct Fixture : ::testing::Test {
  boost::asio::io_context io;
  std::unique_ptr<Server> server;
  std::thread thread;
  void SetUp() override {
    server = std::make_unique<Server>(io, ServerOptions{.host = "127.0.0.1", .port = 0, .body_limit = 16},
                                      [](const Request& r) {
                                        if (r.path() == "/status") return Response{200, "text/plain", "ok", {}};
                                        return Response{404, "text/plain", "not found\n", {}};
                                      });
    server->start();
    thread = std::thread([this] { io.run(); });
  }
  void TearDown() override {
    server->stop();
    io.stop();
    thread.join();
  }
};

TEST_F(Fixture, ServesHandlerResponses) {
  auto r = roundtrip(server->port(), "GET /status?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(r.find("HTTP/1.1 200 OK"), std::string::npos);
  EXPECT_EQ(r.substr(r.size() - 2), "ok");
  auto nf = roundtrip(server->port(), "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(nf.find("HTTP/1.1 404"), std::string::npos);
}

TEST_F(Fixture, OversizeBodyAndGarbageAreAnsweredNotCrashed) {
  auto big = roundtrip(server->port(),
                       "POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'a'));
  EXPECT_NE(big.find("HTTP/1.1 413"), std::string::npos);
  auto junk = roundtrip(server->port(), "\x16\x03\x01 not http\r\n\r\n");
  EXPECT_NE(junk.find("HTTP/1.1 400"), std::string::npos);
  auto ok = roundtrip(server->port(), "GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(ok.find("200 OK"), std::string::npos);
}

}  // namespace
}  // namespace ts::http

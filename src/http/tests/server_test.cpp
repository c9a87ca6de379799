#include "http/server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "http/tests/test_client.hpp"
#include "support/wait_for.hpp"

namespace ts::http {
namespace {

using testing::RawClient;
using testing::roundtrip;
using ts::testsupport::wait_for;
using namespace std::chrono_literals;

std::string body_of(const std::string& response) {
  const auto end = response.find("\r\n\r\n");
  return end == std::string::npos ? std::string() : response.substr(end + 4);
}

// The single-handler form telemetry-server uses for /metrics and /status.
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
  EXPECT_EQ(body_of(nf), "not found\n");
  auto post = roundtrip(server->port(), "POST /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(post.find("HTTP/1.1 200 OK"), std::string::npos) << "a single handler sees every method";
}

TEST_F(Fixture, OversizeBodyAndGarbageAreAnsweredNotCrashed) {
  auto big = roundtrip(server->port(),
                       "POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'a'));
  EXPECT_NE(big.find("HTTP/1.1 413"), std::string::npos);
  EXPECT_EQ(body_of(big),
            R"({"error":{"code":"payload_too_large","message":"request body too large"}})");
  auto junk = roundtrip(server->port(), "\x16\x03\x01 not http\r\n\r\n");
  EXPECT_NE(junk.find("HTTP/1.1 400"), std::string::npos);
  auto ok = roundtrip(server->port(), "GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(ok.find("200 OK"), std::string::npos);
}

// ---- Router over sockets ----

struct RouterServer : ::testing::Test {
  boost::asio::io_context io;
  std::shared_ptr<Router> router = std::make_shared<Router>([](const Request& r) -> ts::Result<std::string> {
    if (r.bearer_token() == std::optional<std::string_view>("t0k")) return std::string("admin");
    return errc::unauthorized;
  });
  std::unique_ptr<Server> server;
  std::thread thread;
  std::promise<void> release;  // opens the latch of /slow
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> slow_entered{0};
  bool released_done = false;

  void start(ServerOptions options = {}) {
    router->get("/hello/{name}",
                [](const Request& r) { return Response{200, "text/plain", "hi " + std::string(r.param("name")), {}}; },
                kPublic);
    router->post("/echo", [](const Request& r) { return json_response(201, r.body); },
                 RouteOptions{.access = Access::Public, .body_limit = 32});
    router->post("/upload", [](const Request& r) { return json_response(200, std::to_string(r.body.size())); },
                 RouteOptions{.access = Access::Public, .body_limit = 1000});
    router->get("/private", [](const Request& r) { return Response{200, "text/plain", r.principal, {}}; });
    router->get("/slow",
                [this](const Request&) {
                  ++slow_entered;
                  released.wait_for(20s);  // bounded even if the test forgets to release
                  return Response{200, "text/plain", "slow done", {}};
                },
                RouteOptions{.access = Access::Public, .execution = Execution::Blocking});
    server = std::make_unique<Server>(io, options, router);
    server->start();
    thread = std::thread([this] { io.run(); });
  }
  void open_latch() {
    if (!released_done) release.set_value();
    released_done = true;
  }
  void TearDown() override {
    open_latch();
    server->stop();
    // stop() drains: once every connection is gone the io_context runs out of work.
    EXPECT_TRUE(wait_for([&] { return io.stopped(); }, 10s, "io_context drained after stop"));
    io.stop();
    thread.join();
  }
};

TEST_F(RouterServer, RoutesWithParamsAnd404And405OverTheWire) {
  start();
  auto ok = roundtrip(server->port(), "GET /hello/w%C3%B6rld HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(ok.find("HTTP/1.1 200 OK"), std::string::npos);
  EXPECT_EQ(body_of(ok), "hi w\xC3\xB6rld");
  auto nf = roundtrip(server->port(), "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(nf.find("HTTP/1.1 404"), std::string::npos);
  EXPECT_NE(nf.find("Content-Type: application/json"), std::string::npos);
  EXPECT_EQ(body_of(nf), R"({"error":{"code":"not_found","message":"no such resource"}})");
  auto na = roundtrip(server->port(), "PUT /hello/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(na.find("HTTP/1.1 405"), std::string::npos);
  EXPECT_NE(na.find("Allow: GET, HEAD\r\n"), std::string::npos);
}

TEST_F(RouterServer, HeadSendsTheGetHeadersWithoutBody) {
  start();
  RawClient c(server->port());
  // Keep-alive: if the server sent a body after the HEAD response, it would show up in front of
  // the second response.
  c.send("HEAD /hello/abc HTTP/1.1\r\nHost: x\r\n\r\nGET /hello/z HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(c.read_to_eof());
  const auto& d = c.data();
  EXPECT_EQ(d.rfind("HTTP/1.1 200 OK", 0), 0u);
  EXPECT_NE(d.find("Content-Length: 6\r\n"), std::string::npos);
  const auto second = d.find("\r\n\r\n") + 4;
  EXPECT_EQ(d.compare(second, 15, "HTTP/1.1 200 OK"), 0) << d;
  EXPECT_EQ(d.substr(d.size() - 4), "hi z");
}

TEST_F(RouterServer, AuthenticatedRouteNeedsTheToken) {
  start();
  auto denied = roundtrip(server->port(), "GET /private HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(denied.find("HTTP/1.1 401"), std::string::npos);
  EXPECT_NE(denied.find("WWW-Authenticate: Bearer"), std::string::npos);
  EXPECT_EQ(body_of(denied), R"({"error":{"code":"unauthorized","message":"authentication required"}})");
  auto ok = roundtrip(server->port(),
                      "GET /private HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0k\r\nConnection: close\r\n\r\n");
  EXPECT_NE(ok.find("HTTP/1.1 200 OK"), std::string::npos);
  EXPECT_EQ(body_of(ok), "admin");
}

TEST_F(RouterServer, BodyLimitsAnswer413AndHeaderLimit431WithTheJsonError) {
  start(ServerOptions{.header_limit = 1024, .body_limit = 64});
  auto fits = roundtrip(server->port(),
                        "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 8\r\n\r\n{\"a\":12}");
  EXPECT_NE(fits.find("HTTP/1.1 201"), std::string::npos);
  EXPECT_EQ(body_of(fits), "{\"a\":12}");
  // The route's own limit (32) applies, not the server's (64).
  auto big = roundtrip(server->port(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n" +
                                           std::string(40, 'x'));
  EXPECT_NE(big.find("HTTP/1.1 413"), std::string::npos);
  EXPECT_EQ(body_of(big), R"({"error":{"code":"payload_too_large","message":"request body too large"}})");
  // A route may also allow more than the server's default.
  auto upload = roundtrip(server->port(), "POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 500\r\n\r\n" +
                                              std::string(500, 'u'));
  EXPECT_NE(upload.find("HTTP/1.1 200"), std::string::npos);
  EXPECT_EQ(body_of(upload), "500");
  auto upload_big = roundtrip(server->port(), "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n" +
                                                  std::string(1001, 'u'));
  EXPECT_NE(upload_big.find("HTTP/1.1 413"), std::string::npos);
  auto others_keep_theirs = roundtrip(server->port(), "POST /hello/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" +
                                                          std::string(100, 'u'));
  EXPECT_NE(others_keep_theirs.find("HTTP/1.1 413"), std::string::npos) << "server default 64 applies";
  auto chunked = roundtrip(server->port(),
                           "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "30\r\n" + std::string(48, 'y') + "\r\n0\r\n\r\n");
  EXPECT_NE(chunked.find("HTTP/1.1 413"), std::string::npos);
  auto headers = roundtrip(server->port(), "GET /hello/a HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                               std::string(2000, 'h') + "\r\n\r\n");
  EXPECT_NE(headers.find("HTTP/1.1 431"), std::string::npos);
  EXPECT_NE(body_of(headers).find(R"("code":"headers_too_large")"), std::string::npos);
}

TEST_F(RouterServer, ExpectContinueGetsAnInterimResponse) {
  start();
  RawClient c(server->port());
  c.send("POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  ASSERT_TRUE(c.read_until("HTTP/1.1 100 Continue\r\n\r\n"));
  c.send("ok");
  ASSERT_TRUE(c.read_to_eof());
  EXPECT_NE(c.data().find("HTTP/1.1 201"), std::string::npos);
}

TEST_F(RouterServer, BlockingHandlerRunsOnThePoolWhileOtherRequestsAreServed) {
  start(ServerOptions{.blocking_threads = 2});
  RawClient slow(server->port());
  slow.send("GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(wait_for([&] { return slow_entered.load() == 1; }, 10s, "/slow handler entered"));
  // The slow handler is still blocked on the latch: this answer proves the io thread is free.
  auto fast = roundtrip(server->port(), "GET /hello/fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(body_of(fast), "hi fast");
  EXPECT_TRUE(slow.data().empty()) << "the slow request cannot have been answered yet";
  open_latch();
  ASSERT_TRUE(slow.read_to_eof());
  EXPECT_NE(slow.data().find("HTTP/1.1 200 OK"), std::string::npos);
  EXPECT_EQ(body_of(slow.data()), "slow done");
}

TEST_F(RouterServer, FullBlockingQueueAnswers503) {
  start(ServerOptions{.blocking_threads = 1, .blocking_queue_limit = 1});
  RawClient first(server->port());
  first.send("GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(wait_for([&] { return slow_entered.load() == 1; }, 10s, "/slow handler entered"));
  auto second = roundtrip(server->port(), "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(second.find("HTTP/1.1 503"), std::string::npos);
  EXPECT_NE(body_of(second).find(R"("code":"unavailable")"), std::string::npos);
  open_latch();
  ASSERT_TRUE(first.read_to_eof());
  EXPECT_NE(first.data().find("200 OK"), std::string::npos);
}

TEST_F(RouterServer, TooManyConnectionsAnswer503) {
  start(ServerOptions{.max_connections = 1});
  RawClient holder(server->port());
  holder.send("GET /hello/a HTTP/1.1\r\nHost: x\r\n\r\n");  // keep-alive: stays open
  ASSERT_TRUE(holder.read_until("hi a"));
  auto refused = roundtrip(server->port(), "GET /hello/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(refused.find("HTTP/1.1 503"), std::string::npos);
}

TEST_F(RouterServer, StopClosesIdleKeepAliveConnections) {
  start();
  RawClient idle(server->port());
  idle.send("GET /hello/a HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(idle.read_until("hi a"));
  EXPECT_EQ(server->connections(), 1u);
  server->stop();
  EXPECT_TRUE(idle.read_to_eof());
  EXPECT_TRUE(wait_for([&] { return server->connections() == 0; }, 10s, "connections closed"));
}

TEST(ServerReusePort, TwoServersShareOnePort) {
  boost::asio::io_context io;
  auto router = std::make_shared<Router>();
  router->get("/x", [](const Request&) { return Response{200, "text/plain", "x", {}}; }, kPublic);
  Server a(io, ServerOptions{.reuse_port = true}, router);
  a.start();
  Server b(io, ServerOptions{.port = a.port(), .reuse_port = true}, router);
  EXPECT_NO_THROW(b.start());
  EXPECT_EQ(a.port(), b.port());
  Server c(io, ServerOptions{.port = a.port()}, router);
  EXPECT_THROW(c.start(), std::runtime_error) << "without reuse_port the port is taken";
}

}  // namespace
}  // namespace ts::http

// The teslasync-api routes over a real SQLite database in a temp dir: authentication (bearer,
// cookie and its CSRF rule), the session and token routes, the VIN rule, and (over a loopback
// http::Server) HEAD and SSE on the stream routes.
#include "routes.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <fstream>
#include <thread>

#include "auth.hpp"
#include "http/server.hpp"
#include "services.hpp"
#include "signal/vin.hpp"
#include "support/temp_dir.hpp"
#include "support/wait_for.hpp"

namespace ts::api {
namespace {

using namespace std::chrono_literals;
using http::Request;
using http::Response;

constexpr std::string_view kEnvToken = "env-token-0123456789abcdef";

struct Api : ::testing::Test {
  testsupport::TempDir dir{"ts-api-routes"};
  Config config;
  core::MetricsRegistry metrics;
  std::unique_ptr<storage::Database> db;
  std::unique_ptr<state::Store> store;
  VinRegistry vins;
  TokenAuth tokens;
  std::shared_ptr<http::EventHub> hub;
  std::unique_ptr<Live> live;
  std::unique_ptr<Services> services;
  std::shared_ptr<const http::Router> router;
  std::string admin;  // the generated admin token

  void SetUp() override {
    config.data_dir = dir.path().string();
    auto opened = storage::open_database("", dir.path(), {.metrics = &metrics});
    ASSERT_TRUE(opened) << opened.error().message();
    db = std::move(*opened);
    store = std::make_unique<state::Store>(metrics);
    hub = std::make_shared<http::EventHub>(metrics);
    live = std::make_unique<Live>(*store, nullptr, hub, nullptr, 50ms);
    ASSERT_TRUE(db->upsert_vehicle(
        {.vin = "VIN1", .source = storage::VehicleSource::Manual, .created_at = signal::now()}));
    vins.add("VIN1");
    set_up_tokens(config, *db, tokens);
    std::ifstream in(dir.file("admin-token"));
    std::getline(in, admin);
    ASSERT_TRUE(admin.starts_with("tsk_"));
    services = std::make_unique<Services>(Services{.config = config,
                                                   .metrics = metrics,
                                                   .db = *db,
                                                   .store = *store,
                                                   .vins = vins,
                                                   .tokens = tokens,
                                                   .live = *live,
                                                   .hub = hub});
    services->pipeline = [] { return PipelineSnapshot{}; };
    services->not_ready_reason = [] { return std::string(); };
    router = make_router(*services);
  }

  Response call(std::string method, std::string target, http::Fields headers = {},
                std::string body = {}) {
    Request r{.method = std::move(method),
              .target = std::move(target),
              .body = std::move(body),
              .headers = std::move(headers)};
    return router->handle(r);
  }
  static std::string header(const Response& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
      if (http::iequals(k, name)) return v;
    return {};
  }
  http::Fields bearer(const std::string& token, bool json = true) {
    http::Fields h{{"Authorization", "Bearer " + token}};
    if (json) h.emplace_back("Content-Type", "application/json");
    return h;
  }
};

const std::string kRegister = R"({"vin":"VIN2","name":"two"})";

// ---- M5: cookie authentication and CSRF ----

TEST_F(Api, CookieOnAStateChangeNeedsJsonAndTheSameOrigin) {
  const http::Fields cookie{{"Cookie", "teslasync_token=" + admin}, {"Host", "127.0.0.1:8080"}};
  auto with = [&](http::Fields extra) {
    auto h = cookie;
    h.insert(h.end(), extra.begin(), extra.end());
    return h;
  };
  // The simple cross-site request of the review: a form can send text/plain with a cookie.
  auto plain =
      call("POST", "/api/v1/vehicles",
           with({{"Content-Type", "text/plain"}, {"Origin", "http://127.0.0.1:8080"}}), kRegister);
  EXPECT_EQ(plain.status, 403u) << plain.body;
  auto foreign = call(
      "POST", "/api/v1/vehicles",
      with({{"Content-Type", "application/json"}, {"Origin", "http://evil.example"}}), kRegister);
  EXPECT_EQ(foreign.status, 403u) << foreign.body;
  EXPECT_NE(foreign.body.find("same-origin"), std::string::npos) << foreign.body;
  auto other_port = call(
      "POST", "/api/v1/vehicles",
      with({{"Content-Type", "application/json"}, {"Origin", "http://127.0.0.1:9999"}}), kRegister);
  EXPECT_EQ(other_port.status, 403u);
  auto no_origin =
      call("POST", "/api/v1/vehicles", with({{"Content-Type", "application/json"}}), kRegister);
  EXPECT_EQ(no_origin.status, 403u) << "neither Origin nor Sec-Fetch-Site";
  auto same = call("POST", "/api/v1/vehicles",
                   with({{"Content-Type", "application/json; charset=utf-8"},
                         {"Origin", "http://127.0.0.1:8080"}}),
                   kRegister);
  EXPECT_EQ(same.status, 201u) << same.body;
  auto fetch_meta =
      call("POST", "/api/v1/vehicles",
           with({{"Content-Type", "application/json"}, {"Sec-Fetch-Site", "same-origin"}}),
           R"({"vin":"VIN3"})");
  EXPECT_EQ(fetch_meta.status, 201u) << fetch_meta.body;
  auto cross_site =
      call("POST", "/api/v1/vehicles",
           with({{"Content-Type", "application/json"}, {"Sec-Fetch-Site", "cross-site"}}),
           R"({"vin":"VIN4"})");
  EXPECT_EQ(cross_site.status, 403u);
  // Safe methods take the cookie as it is.
  EXPECT_EQ(call("GET", "/api/v1/vehicles", cookie).status, 200u);
  // A bad cookie is 401, whatever the headers.
  EXPECT_EQ(call("GET", "/api/v1/vehicles", {{"Cookie", "teslasync_token=tsk_nope"}}).status, 401u);
}

TEST_F(Api, BearerIsUnaffectedButJsonRoutesRefuseOtherContentTypes) {
  auto ok = call("POST", "/api/v1/vehicles", bearer(admin), kRegister);
  EXPECT_EQ(ok.status, 201u) << ok.body;
  auto plain =
      call("POST", "/api/v1/vehicles",
           {{"Authorization", "Bearer " + admin}, {"Content-Type", "text/plain"}}, kRegister);
  EXPECT_EQ(plain.status, 415u) << plain.body;
  auto form = call(
      "POST", "/api/v1/vehicles",
      {{"Authorization", "Bearer " + admin}, {"Content-Type", "application/x-www-form-urlencoded"}},
      kRegister);
  EXPECT_EQ(form.status, 415u) << "curl -d without -H";
  auto none = call("POST", "/api/v1/vehicles", bearer(admin, false), R"({"vin":"VIN7"})");
  EXPECT_EQ(none.status, 201u) << "an API client that sends no Content-Type: " << none.body;
  EXPECT_EQ(call("POST", "/api/v1/vehicles", bearer(admin), "[1]").status, 400u);
}

TEST_F(Api, SessionSetsAndClearsTheCookie) {
  auto bad = call("POST", "/api/v1/session", {{"Content-Type", "application/json"}},
                  R"({"token":"tsk_wrong"})");
  EXPECT_EQ(bad.status, 401u);
  EXPECT_EQ(header(bad, "Set-Cookie"), "");
  EXPECT_EQ(call("POST", "/api/v1/session", {{"Content-Type", "text/plain"}},
                 R"({"token":")" + admin + "\"}")
                .status,
            415u);
  auto ok = call("POST", "/api/v1/session", {{"Content-Type", "application/json"}},
                 R"({"token":")" + admin + "\"}");
  EXPECT_EQ(ok.status, 200u) << ok.body;
  const auto set = header(ok, "Set-Cookie");
  EXPECT_EQ(set, "teslasync_token=" + admin + "; Path=/; HttpOnly; SameSite=Strict");
  auto tls = call("POST", "/api/v1/session",
                  {{"Content-Type", "application/json"}, {"X-Forwarded-Proto", "https"}},
                  R"({"token":")" + admin + "\"}");
  EXPECT_EQ(header(tls, "Set-Cookie"),
            "teslasync_token=" + admin + "; Path=/; HttpOnly; SameSite=Strict; Secure");
  auto out = call("DELETE", "/api/v1/session");
  EXPECT_EQ(out.status, 204u);
  EXPECT_EQ(header(out, "Set-Cookie"),
            "teslasync_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
}

// ---- L8: tokens ----

TEST_F(Api, TokensAreListedCreatedShownOnceAndRevokedAtOnce) {
  auto created = call("POST", "/api/v1/tokens", bearer(admin), R"({"name":"grafana"})");
  ASSERT_EQ(created.status, 201u) << created.body;
  auto doc = boost::json::parse(created.body).as_object();
  const std::string token(doc.at("token").as_string());
  const auto id = doc.at("id").as_int64();
  EXPECT_TRUE(token.starts_with("tsk_"));
  EXPECT_EQ(call("GET", "/api/v1/vehicles", bearer(token)).status, 200u);

  auto list = call("GET", "/api/v1/tokens", bearer(admin));
  ASSERT_EQ(list.status, 200u);
  EXPECT_EQ(list.body.find(token), std::string::npos) << "shown once";
  EXPECT_EQ(list.body.find(token_hash(token)), std::string::npos) << "never the hash";
  EXPECT_EQ(list.body.find("sha256"), std::string::npos);
  auto items = boost::json::parse(list.body).as_object().at("tokens").as_array();
  ASSERT_EQ(items.size(), 2u);
  for (const auto& t : items) {
    const auto& o = t.as_object();
    EXPECT_TRUE(o.contains("created_at"));
    EXPECT_FALSE(o.at("last_used_at").is_null()) << "both were used above: " << list.body;
  }

  auto revoked = call("DELETE", "/api/v1/tokens/" + std::to_string(id), bearer(admin));
  EXPECT_EQ(revoked.status, 204u) << revoked.body;
  EXPECT_EQ(call("GET", "/api/v1/vehicles", bearer(token)).status, 401u) << "revoked at once";
  EXPECT_EQ(call("DELETE", "/api/v1/tokens/" + std::to_string(id), bearer(admin)).status, 404u);
  EXPECT_EQ(call("DELETE", "/api/v1/tokens/abc", bearer(admin)).status, 404u);
  EXPECT_EQ(call("POST", "/api/v1/tokens", bearer(admin), R"({"name":""})").status, 422u);
  EXPECT_EQ(call("GET", "/api/v1/tokens").status, 401u);
}

TEST_F(Api, LastUsedIsWrittenToTheDatabaseOffTheRequestPath) {
  EXPECT_EQ(call("GET", "/api/v1/vehicles", bearer(admin)).status, 200u);
  {
    TokenUsageWriter writer(tokens, *db, 1h);  // destruction flushes
  }
  auto stored = db->list_tokens();
  ASSERT_TRUE(stored);
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_TRUE((*stored)[0].last_used_at.has_value());
  // At most once a minute: a second use right away notes nothing new.
  EXPECT_EQ(call("GET", "/api/v1/vehicles", bearer(admin)).status, 200u);
  EXPECT_TRUE(tokens.take_usage().empty());
}

TEST_F(Api, EnvironmentTokenIsListedNotRevocableAndTheAdminTokenKeepsWorking) {
  // A restart with TESLASYNC_API_TOKEN set: the generated admin token stays valid next to it.
  TokenAuth restarted;
  Config with_env = config;
  with_env.api_token = std::string(kEnvToken);
  set_up_tokens(with_env, *db, restarted);
  EXPECT_EQ(restarted.size(), 2u);
  services->tokens.add_environment(token_hash(kEnvToken));
  EXPECT_EQ(call("GET", "/api/v1/vehicles", bearer(std::string(kEnvToken))).status, 200u);
  EXPECT_EQ(call("GET", "/api/v1/vehicles", bearer(admin)).status, 200u);
  auto list = call("GET", "/api/v1/tokens", bearer(admin));
  EXPECT_NE(list.body.find(R"("id":0,"name":"TESLASYNC_API_TOKEN","source":"environment")"),
            std::string::npos)
      << list.body;
  EXPECT_EQ(list.body.find(kEnvToken), std::string::npos);
  auto refused = call("DELETE", "/api/v1/tokens/0", bearer(admin));
  EXPECT_EQ(refused.status, 409u);
  EXPECT_NE(refused.body.find("TESLASYNC_API_TOKEN"), std::string::npos);
  EXPECT_EQ(call("GET", "/api/v1/vehicles", bearer(std::string(kEnvToken))).status, 200u);
  // The admin token is revoked like any other.
  EXPECT_EQ(call("DELETE", "/api/v1/tokens/1", bearer(std::string(kEnvToken))).status, 204u);
  EXPECT_EQ(call("GET", "/api/v1/vehicles", bearer(admin)).status, 401u);
}

// ---- L6: one VIN rule ----

TEST(VinRule, OneRuleForRoutesClientAndConfig) {
  EXPECT_TRUE(signal::valid_vin("VIN1"));
  EXPECT_TRUE(signal::valid_vin("5YJ3E1EA7KF000199"));
  EXPECT_TRUE(signal::valid_vin("vin00000000000001"));
  EXPECT_TRUE(signal::valid_vin(std::string(32, '7')));
  EXPECT_FALSE(signal::valid_vin(""));
  EXPECT_FALSE(signal::valid_vin(std::string(33, '7')));
  EXPECT_FALSE(signal::valid_vin("WITH-DASH"));
  EXPECT_FALSE(signal::valid_vin("a/b"));
  EXPECT_FALSE(signal::valid_vin("caf\xc3\xa9"));
}

TEST_F(Api, RegisteringAVehicleUsesTheVinRule) {
  auto dash = call("POST", "/api/v1/vehicles", bearer(admin), R"({"vin":"WITH-DASH"})");
  EXPECT_EQ(dash.status, 422u);
  EXPECT_NE(dash.body.find("1-32 letters and digits"), std::string::npos) << dash.body;
  EXPECT_EQ(
      call("POST", "/api/v1/vehicles", bearer(admin), R"({"vin":")" + std::string(33, 'A') + "\"}")
          .status,
      422u);
  EXPECT_EQ(
      call("POST", "/api/v1/vehicles", bearer(admin), R"({"vin":")" + std::string(32, 'A') + "\"}")
          .status,
      201u);
}

// ---- over a socket: L1 (HEAD) and M9 (snapshots and /metrics on the worker pool) ----

std::string raw_roundtrip(std::uint16_t port, const std::string& request,
                          std::string_view until = {}) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket s(io);
  s.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  timeval tv{5, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  boost::asio::write(s, boost::asio::buffer(request));
  std::string out;
  char buf[4096];
  for (;;) {
    boost::system::error_code ec;
    auto n = s.read_some(boost::asio::buffer(buf), ec);
    if (ec) break;
    out.append(buf, n);
    if (!until.empty() && out.find(until) != std::string::npos) break;
  }
  return out;
}

struct ApiServer : Api {
  boost::asio::io_context io;
  std::unique_ptr<http::Server> server;
  std::thread thread;
  void SetUp() override {
    Api::SetUp();
    server = std::make_unique<http::Server>(io, http::ServerOptions{.blocking_threads = 2}, router);
    server->start();
    thread = std::thread([this] { io.run(); });
  }
  void TearDown() override {
    server->stop();
    EXPECT_TRUE(testsupport::wait_for([&] { return io.stopped(); }, 10s, "io drained"));
    io.stop();
    thread.join();
  }
  std::string head(const std::string& path, const std::string& auth) {
    return raw_roundtrip(server->port(), "HEAD " + path + " HTTP/1.1\r\nHost: x\r\n" + auth +
                                             "Connection: close\r\n\r\n");
  }
};

TEST_F(ApiServer, HeadOnStreamsNeedsATokenAndAKnownVin) {
  EXPECT_EQ(head("/api/v1/events", "").rfind("HTTP/1.1 401", 0), 0u);
  EXPECT_EQ(head("/api/v1/vehicles/VIN1/stream", "").rfind("HTTP/1.1 401", 0), 0u);
  const std::string auth = "Authorization: Bearer " + admin + "\r\n";
  EXPECT_EQ(head("/api/v1/vehicles/NOPE/stream", auth).rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(head("/api/v1/vehicles/VIN1/stream", auth).rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(head("/api/v1/events", auth).rfind("HTTP/1.1 200", 0), 0u);
}

TEST_F(ApiServer, StreamsAndMetricsStillServeFromTheWorkerPool) {
  store->apply({.vin = "VIN1",
                .name = "Odometer",
                .ts = signal::now(),
                .received_at = signal::now(),
                .value = signal::Value::float64(12.5)});
  const std::string auth = "Authorization: Bearer " + admin + "\r\n";
  auto events = raw_roundtrip(
      server->port(), "GET /api/v1/events HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", "Odometer");
  EXPECT_EQ(events.rfind("HTTP/1.1 200", 0), 0u) << events;
  EXPECT_NE(events.find("text/event-stream"), std::string::npos);
  EXPECT_NE(events.find("Odometer"), std::string::npos) << "the snapshot arrived: " << events;
  auto one = raw_roundtrip(
      server->port(), "GET /api/v1/vehicles/VIN1/stream HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n",
      "Odometer");
  EXPECT_NE(one.find("Odometer"), std::string::npos) << one;
  auto m = raw_roundtrip(
      server->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n" + auth + "Connection: close\r\n\r\n");
  EXPECT_EQ(m.rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_NE(m.find("# TYPE"), std::string::npos);
}

}  // namespace
}  // namespace ts::api

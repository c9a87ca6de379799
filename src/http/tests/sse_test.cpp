#include "http/sse.hpp"

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>

#include <atomic>
#include <thread>

#include "http/server.hpp"
#include "http/tests/test_client.hpp"
#include "support/wait_for.hpp"

namespace ts::http {
namespace {

using testing::Block;
using testing::parse_block;
using testing::SseClient;
using ts::testsupport::wait_for;
using namespace std::chrono_literals;

// ---- Encoding and the hub without sockets ----

TEST(SseEncoding, FramesIdEventAndEveryDataLine) {
  EXPECT_EQ(encode_event(Event{"signal_change", R"({"a":1})", "VIN"}, 42),
            "id: 42\nevent: signal_change\ndata: {\"a\":1}\n\n");
  EXPECT_EQ(encode_event(Event{"", "one\ntwo\r\nthree\rfour", ""}),
            "data: one\ndata: two\ndata: three\ndata: four\n\n");
  EXPECT_EQ(encode_event(Event{"x", "", ""}), "event: x\ndata:\n\n") << "empty data still fires";
  EXPECT_EQ(encode_event(Event{"a\nb", "trailing\n", ""}), "event: a b\ndata: trailing\ndata:\n\n");
  auto b = parse_block(encode_event(Event{"t", "l1\nl2", ""}, 7));
  EXPECT_EQ(b.id, "7");
  EXPECT_EQ(b.event, "t");
  EXPECT_EQ(b.data, "l1\nl2");
}

TEST(SseEncoding, LastEventIdPrefersTheHeaderOverTheQuery) {
  Request r;
  r.query_params = {{"last_event_id", "5"}};
  EXPECT_EQ(last_event_id(r), 5u);
  r.headers = {{"last-event-id", " 9 "}};
  EXPECT_EQ(last_event_id(r), 9u);
  r.headers = {{"Last-Event-ID", "abc"}};
  EXPECT_EQ(last_event_id(r), 5u) << "a non-numeric header counts as absent";
  r.query_params.clear();
  EXPECT_FALSE(last_event_id(r));
}

struct Recorder final : EventHub::Subscriber {
  std::vector<std::uint64_t> ids;
  bool deliver(const EncodedEventPtr& e) override {
    ids.push_back(e->id);
    return false;
  }
  void flush() override {}
};

std::vector<std::uint64_t> ids_of(const std::vector<EncodedEventPtr>& v) {
  std::vector<std::uint64_t> out;
  for (const auto& e : v) out.push_back(e->id);
  return out;
}

TEST(EventHub, ReplayRingDecidesBetweenResumeAndSnapshot) {
  core::MetricsRegistry metrics;
  auto hub = std::make_shared<EventHub>(metrics, EventHubOptions{.replay_max_events = 4, .first_id = 1});
  boost::asio::io_context io;
  for (int i = 0; i < 10; ++i) hub->publish(Event{"e", std::to_string(i), i % 2 ? "odd" : "even"});
  EXPECT_EQ(hub->last_id(), 10u);  // ring holds 7..10

  Recorder r;
  auto ex = io.get_executor();
  auto fresh = hub->attach(r, ex, "", std::nullopt);
  EXPECT_FALSE(fresh.resumed);
  EXPECT_EQ(fresh.position, 10u);
  hub->detach(r, ex, "");

  auto edge = hub->attach(r, ex, "", 6);
  EXPECT_TRUE(edge.resumed);
  EXPECT_EQ(ids_of(edge.replay), (std::vector<std::uint64_t>{7, 8, 9, 10}));
  hub->detach(r, ex, "");

  auto too_old = hub->attach(r, ex, "", 5);
  EXPECT_FALSE(too_old.resumed) << "event 6 is gone from the ring";
  hub->detach(r, ex, "");

  auto current = hub->attach(r, ex, "", 10);
  EXPECT_TRUE(current.resumed);
  EXPECT_TRUE(current.replay.empty());
  hub->detach(r, ex, "");

  auto future = hub->attach(r, ex, "", 11);
  EXPECT_FALSE(future.resumed) << "an id this hub never issued (e.g. a previous process)";
  hub->detach(r, ex, "");

  auto keyed = hub->attach(r, ex, "odd", 6);
  EXPECT_TRUE(keyed.resumed);
  EXPECT_EQ(ids_of(keyed.replay), (std::vector<std::uint64_t>{8, 10}));  // "odd" = i odd = ids 2,4,…

  hub->publish(Event{"e", "x", "even"});
  hub->publish(Event{"e", "y", "odd"});
  io.poll();
  EXPECT_EQ(r.ids, (std::vector<std::uint64_t>{12}));
  hub->detach(r, ex, "odd");
  EXPECT_EQ(metrics.gauge("teslasync_sse_clients", "").get().value(), 0.0);
  EXPECT_EQ(hub->metrics().replays.value(), 3u);
  EXPECT_EQ(hub->metrics().resume_misses.value(), 2u);
  EXPECT_EQ(hub->metrics().published.value(), 12u);
}

TEST(EventHub, ByteLimitEvictsOldEvents) {
  core::MetricsRegistry metrics;
  auto hub = std::make_shared<EventHub>(metrics, EventHubOptions{.replay_max_bytes = 100, .first_id = 1});
  boost::asio::io_context io;
  for (int i = 0; i < 5; ++i) hub->publish(Event{"", std::string(30, 'x'), ""});  // ~45 bytes each
  Recorder r;
  EXPECT_FALSE(hub->attach(r, io.get_executor(), "", 2).resumed);
  hub->detach(r, io.get_executor(), "");
  auto ok = hub->attach(r, io.get_executor(), "", 3);
  EXPECT_TRUE(ok.resumed);
  EXPECT_EQ(ids_of(ok.replay), (std::vector<std::uint64_t>{4, 5}));
  hub->detach(r, io.get_executor(), "");
}

TEST(EventHub, DefaultIdsStartAboveAnyEarlierProcess) {
  core::MetricsRegistry metrics;
  EventHub hub(metrics);
  // Unix ms × 1000: far above the ids a previous run issued unless it averaged > 1M events/s.
  EXPECT_GT(hub.last_id(), 1'600'000'000'000'000u);
}

// ---- Streams over loopback ----

struct SseServer : ::testing::Test {
  core::MetricsRegistry metrics;
  std::shared_ptr<EventHub> hub;
  std::shared_ptr<Router> router;
  boost::asio::io_context io;
  std::unique_ptr<Server> server;
  std::thread thread;
  std::atomic<int> snapshots{0};

  void start(StreamOptions sse = {.heartbeat = 60s}, EventHubOptions hub_options = {.first_id = 1}) {
    hub = std::make_shared<EventHub>(metrics, hub_options);
    router = std::make_shared<Router>([](const Request& r) -> ts::Result<std::string> {
      if (r.bearer_token() == std::optional<std::string_view>("t0k")) return std::string("admin");
      return errc::unauthorized;
    });
    router->stream("/api/v1/events",
                   SseRoute{.hub = hub,
                            .snapshot =
                                [this](const Request&) {
                                  ++snapshots;
                                  return std::vector<Event>{{"vehicle_update", R"({"vin":"A"})", "A"},
                                                            {"vehicle_update", "{\"vin\":\n\"B\"}", "B"}};
                                }},
                   kPublic);
    router->stream("/api/v1/vehicles/{vin}/stream",
                   SseRoute{.hub = hub,
                            .key =
                                [](const Request& r) {
                                  if (r.param("vin") == "UNKNOWN") throw Error(errc::not_found, "no such vehicle");
                                  return std::string(r.param("vin"));
                                },
                            .snapshot =
                                [](const Request& r) {
                                  return std::vector<Event>{
                                      {"vehicle_update", "snap " + std::string(r.param("vin")), ""}};
                                }},
                   RouteOptions{.execution = Execution::Blocking});
    server = std::make_unique<Server>(io, ServerOptions{.sse = sse}, router);
    server->start();
    thread = std::thread([this] { io.run(); });
  }
  void TearDown() override {
    if (server) server->stop();
    if (thread.joinable()) {
      EXPECT_TRUE(wait_for([&] { return io.stopped(); }, 10s, "io_context drained after stop"));
      io.stop();
      thread.join();
    }
  }
  void publish_n(int n, const std::string& key = "") {
    for (int i = 0; i < n; ++i) hub->publish(Event{"signal_change", "n" + std::to_string(hub->last_id() + 1), key});
  }
  ::testing::AssertionResult streams_are(std::size_t n) {
    return wait_for([&] { return server->streams() == n; }, 10s, std::to_string(n) + " streams open");
  }
};

void expect_sse_head(SseClient& c) {
  const auto& head = c.head();
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Type: text/event-stream\r\n"), std::string::npos);
  EXPECT_NE(head.find("Cache-Control: no-cache\r\n"), std::string::npos);
  EXPECT_NE(head.find("X-Accel-Buffering: no\r\n"), std::string::npos);
}

TEST_F(SseServer, SnapshotThenLiveEventsInOrderWithIds) {
  start();
  publish_n(3);
  SseClient c(server->port(), "/api/v1/events");
  expect_sse_head(c);
  auto retry = c.next();
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->retry, "3000");
  auto s1 = c.next_event();
  auto s2 = c.next_event();
  ASSERT_TRUE(s1 && s2);
  EXPECT_EQ(s1->event, "vehicle_update");
  EXPECT_EQ(s1->data, R"({"vin":"A"})");
  EXPECT_FALSE(s1->id);
  EXPECT_EQ(s2->data, "{\"vin\":\n\"B\"}") << "multi-line data survives the framing";
  EXPECT_EQ(s2->id, "3") << "the snapshot ends at the newest event id";
  publish_n(5);
  for (std::uint64_t id = 4; id <= 8; ++id) {
    auto e = c.next_event();
    ASSERT_TRUE(e) << "event " << id;
    EXPECT_EQ(e->id, std::to_string(id));
    EXPECT_EQ(e->event, "signal_change");
    EXPECT_EQ(e->data, "n" + std::to_string(id));
  }
  EXPECT_TRUE(wait_for([&] { return hub->metrics().sent.value() == 7; }, 10s, "2 snapshot + 5 live sent"));
  EXPECT_EQ(metrics.gauge("teslasync_sse_clients", "").get().value(), 1.0);
  auto text = metrics.render_prometheus();
  for (auto name : {"teslasync_sse_clients", "teslasync_sse_events_published_total",
                    "teslasync_sse_events_sent_total", "teslasync_sse_slow_disconnects_total",
                    "teslasync_sse_replays_total"})
    EXPECT_NE(text.find(name), std::string::npos) << name;
}

TEST_F(SseServer, LastEventIdResumeReplaysExactlyTheMissedEvents) {
  start();
  publish_n(10);
  SseClient c(server->port(), "/api/v1/events", "Last-Event-ID: 4\r\n");
  expect_sse_head(c);
  for (std::uint64_t id = 5; id <= 10; ++id) {
    auto e = c.next_event();
    ASSERT_TRUE(e);
    EXPECT_EQ(e->id, std::to_string(id)) << "no snapshot, no gap, no repeat";
    EXPECT_EQ(e->data, "n" + std::to_string(id));
  }
  publish_n(1);
  auto live = c.next_event();
  ASSERT_TRUE(live);
  EXPECT_EQ(live->id, "11");
  EXPECT_EQ(snapshots.load(), 0);
  EXPECT_EQ(hub->metrics().replays.value(), 1u);

  // EventSource's first connect cannot set headers: the query parameter works too, and a
  // reconnect's header wins over the stale query parameter.
  SseClient q(server->port(), "/api/v1/events?last_event_id=9");
  auto q1 = q.next_event();
  ASSERT_TRUE(q1);
  EXPECT_EQ(q1->id, "10");
  SseClient both(server->port(), "/api/v1/events?last_event_id=2", "Last-Event-ID: 10\r\n");
  auto b1 = both.next_event();
  ASSERT_TRUE(b1);
  EXPECT_EQ(b1->id, "11");
  EXPECT_EQ(snapshots.load(), 0);
  EXPECT_EQ(hub->metrics().replays.value(), 3u);
}

TEST_F(SseServer, TooOldLastEventIdGetsASnapshot) {
  start({.heartbeat = 60s}, {.replay_max_events = 4, .first_id = 1});
  publish_n(10);
  SseClient c(server->port(), "/api/v1/events", "Last-Event-ID: 2\r\n");
  auto s1 = c.next_event();
  auto s2 = c.next_event();
  ASSERT_TRUE(s1 && s2);
  EXPECT_EQ(s1->event, "vehicle_update");
  EXPECT_EQ(s2->id, "10");
  EXPECT_EQ(snapshots.load(), 1);
  EXPECT_EQ(hub->metrics().resume_misses.value(), 1u);
  publish_n(1);
  auto e = c.next_event();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "11");
}

TEST_F(SseServer, KeyedStreamGetsOnlyItsKey) {
  start();
  const std::string auth = "Authorization: Bearer t0k\r\n";
  SseClient a(server->port(), "/api/v1/vehicles/VINA/stream", auth);
  SseClient all(server->port(), "/api/v1/events");
  auto snap = a.next_event();
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->data, "snap VINA");
  EXPECT_EQ(snap->id, "0") << "nothing published yet: position 0";
  ASSERT_TRUE(all.next_event() && all.next_event());
  for (int i = 0; i < 6; ++i) hub->publish(Event{"signal_change", "e" + std::to_string(i + 1), i % 2 ? "VINA" : "VINB"});
  for (std::uint64_t id : {2, 4, 6}) {
    auto e = a.next_event();
    ASSERT_TRUE(e);
    EXPECT_EQ(e->id, std::to_string(id));
  }
  for (std::uint64_t id = 1; id <= 6; ++id) {
    auto e = all.next_event();
    ASSERT_TRUE(e);
    EXPECT_EQ(e->id, std::to_string(id));
  }
  // Nothing else is pending for VINA: the next thing it sees is the next VINA event.
  hub->publish(Event{"signal_change", "last", "VINA"});
  auto last = a.next_event();
  ASSERT_TRUE(last);
  EXPECT_EQ(last->id, "7");
}

// A batch (a record's signals) gets consecutive ids, in order, to every stream and to the replay
// ring, like the same events published one by one.
TEST_F(SseServer, BatchPublishKeepsIdsOrderAndKeys) {
  start();
  const std::string auth = "Authorization: Bearer t0k\r\n";
  SseClient a(server->port(), "/api/v1/vehicles/VINA/stream", auth);
  SseClient all(server->port(), "/api/v1/events");
  ASSERT_TRUE(a.next_event());
  ASSERT_TRUE(all.next_event() && all.next_event());
  std::vector<Event> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(Event{"signal_change", "b" + std::to_string(i + 1), i % 2 ? "VINA" : "VINB"});
  EXPECT_EQ(hub->publish(std::span<Event>(batch)), 5u);
  EXPECT_EQ(hub->publish(std::span<Event>()), 5u) << "an empty batch publishes nothing";
  for (std::uint64_t id = 1; id <= 5; ++id) {
    auto e = all.next_event();
    ASSERT_TRUE(e);
    EXPECT_EQ(e->id, std::to_string(id));
    EXPECT_EQ(e->data, "b" + std::to_string(id));
  }
  for (std::uint64_t id : {2, 4}) {
    auto e = a.next_event();
    ASSERT_TRUE(e);
    EXPECT_EQ(e->id, std::to_string(id));
  }
  EXPECT_EQ(hub->metrics().published.value(), 5u);
  // A client resuming from id 2 gets 3, 4, 5 from the ring.
  SseClient resumed(server->port(), "/api/v1/events", "Last-Event-ID: 2\r\n");
  for (std::uint64_t id = 3; id <= 5; ++id) {
    auto e = resumed.next_event();
    ASSERT_TRUE(e);
    EXPECT_EQ(e->id, std::to_string(id));
  }
}

TEST_F(SseServer, StreamRoutesAuthenticateAndMayRefuseBeforeStreaming) {
  start();
  auto anon = testing::roundtrip(server->port(),
                                 "GET /api/v1/vehicles/VINA/stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(anon.find("HTTP/1.1 401"), std::string::npos);
  auto unknown = testing::roundtrip(server->port(),
                                    "GET /api/v1/vehicles/UNKNOWN/stream HTTP/1.1\r\nHost: x\r\n"
                                    "Authorization: Bearer t0k\r\nConnection: close\r\n\r\n");
  EXPECT_NE(unknown.find("HTTP/1.1 404"), std::string::npos);
  EXPECT_NE(unknown.find(R"({"error":{"code":"not_found","message":"no such vehicle"}})"), std::string::npos);
  EXPECT_EQ(server->streams(), 0u);
  EXPECT_EQ(metrics.gauge("teslasync_sse_clients", "").get().value(), 0.0);
}

// L1: HEAD on a stream route authenticates and checks the key exactly as GET does.
TEST_F(SseServer, HeadOnStreamRoutesAuthenticatesAndChecksTheKeyLikeGet) {
  start();
  auto req = [&](const std::string& path, const std::string& auth) {
    return testing::roundtrip(server->port(), "HEAD " + path + " HTTP/1.1\r\nHost: x\r\n" + auth +
                                                  "Connection: close\r\n\r\n");
  };
  auto anon = req("/api/v1/vehicles/VINA/stream", "");
  EXPECT_EQ(anon.rfind("HTTP/1.1 401", 0), 0u) << anon;
  EXPECT_NE(anon.find("WWW-Authenticate: Bearer"), std::string::npos);
  EXPECT_EQ(anon.find("\r\n\r\n") + 4, anon.size()) << "HEAD: no body";
  auto unknown = req("/api/v1/vehicles/UNKNOWN/stream", "Authorization: Bearer t0k\r\n");
  EXPECT_EQ(unknown.rfind("HTTP/1.1 404", 0), 0u) << unknown;
  auto ok = req("/api/v1/vehicles/VINA/stream", "Authorization: Bearer t0k\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK", 0), 0u) << ok;
  EXPECT_NE(ok.find("Content-Type: text/event-stream"), std::string::npos);
  EXPECT_EQ(server->streams(), 0u);
}

TEST_F(SseServer, BurstBeyondTheClientBufferDisconnectsWithAReason) {
  start({.heartbeat = 60s, .client_max_events = 3});
  SseClient c(server->port(), "/api/v1/events");
  ASSERT_TRUE(c.next_event() && c.next_event());  // snapshot: the stream is attached and idle
  // Ten events reach the shard in one drain, before the writer runs: the fourth overflows.
  boost::asio::post(io, [this] { publish_n(10); });
  auto d = c.next_event();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->event, "disconnect");
  EXPECT_EQ(d->data, R"({"reason":"slow_consumer"})");
  EXPECT_TRUE(c.raw().read_to_eof()) << "closed after the reason";
  EXPECT_EQ(hub->metrics().slow_disconnects.value(), 1u);
  EXPECT_TRUE(streams_are(0));
  EXPECT_EQ(metrics.gauge("teslasync_sse_clients", "").get().value(), 0.0);
}

TEST_F(SseServer, ClientThatStopsReadingIsDroppedWhileOthersGetEverything) {
  start({.heartbeat = 60s, .client_max_events = 1'000'000, .client_max_bytes = 256 * 1024,
         .close_grace = 300ms},
        {.replay_max_events = 64, .first_id = 1});
  SseClient good(server->port(), "/api/v1/events");
  SseClient slow(server->port(), "/api/v1/events", "", /*rcvbuf=*/4096);
  ASSERT_TRUE(good.next_event() && good.next_event());
  ASSERT_TRUE(slow.next_event() && slow.next_event());
  // From here on `slow` reads nothing. `good` reads on its own thread.
  std::atomic<std::uint64_t> good_last{0};
  std::atomic<bool> good_ok{true};
  std::thread reader([&] {
    for (;;) {
      auto e = good.next_event(20s);
      if (!e || !e->id) return;
      const auto id = std::stoull(*e->id);
      if (id != good_last.load() + 1 || e->event != "signal_change") good_ok = false;
      good_last = id;
      if (e->data == "end") return;
    }
  });
  const std::string payload(4096, 'p');
  std::uint64_t published = 0;
  bool dropped = false;
  // Bounded: at most 2,000 batches of 32 × 4 KiB (256 MiB); the kernel buffers a few MiB.
  for (int batch = 0; batch < 2000 && !dropped; ++batch) {
    for (int i = 0; i < 32; ++i) published = hub->publish(Event{"signal_change", payload, ""});
    // Pace by the good reader so only the stalled client falls behind.
    ASSERT_TRUE(wait_for([&] { return good_last.load() >= published || !good_ok; }, 20s, "good reader keeps up"));
    dropped = hub->metrics().slow_disconnects.value() > 0;
  }
  ASSERT_TRUE(dropped) << "the stalled client was never disconnected";
  published = hub->publish(Event{"signal_change", "end", ""});
  reader.join();
  EXPECT_TRUE(good_ok) << "the reading client saw every event in order";
  EXPECT_EQ(good_last.load(), published);
  EXPECT_TRUE(streams_are(1));
  // The stalled client: what the kernel held, then the end of the stream.
  EXPECT_TRUE(slow.raw().read_to_eof(20s)) << "the slow client's connection was closed";
  EXPECT_EQ(hub->metrics().slow_disconnects.value(), 1u);
}

TEST_F(SseServer, HeartbeatCommentsArriveWhileIdle) {
  start({.heartbeat = 100ms});
  SseClient c(server->port(), "/api/v1/events");
  ASSERT_TRUE(c.next_event() && c.next_event());
  auto hb = c.next(10s);
  ASSERT_TRUE(hb);
  EXPECT_EQ(hb->comment, " heartbeat");
  EXPECT_FALSE(hb->data);
}

TEST_F(SseServer, HeartbeatEventsWhenConfigured) {
  start({.heartbeat = 100ms, .heartbeat_event = true, .retry = 0ms});
  SseClient c(server->port(), "/api/v1/events");
  ASSERT_TRUE(c.next_event() && c.next_event());
  auto hb = c.next_event();
  ASSERT_TRUE(hb);
  EXPECT_EQ(hb->event, "heartbeat");
  EXPECT_EQ(hb->data->rfind(R"({"time":")", 0), 0u) << *hb->data;
  EXPECT_FALSE(hb->id);
}

TEST_F(SseServer, StopSendsShutdownAndCloses) {
  start();
  SseClient a(server->port(), "/api/v1/events");
  SseClient b(server->port(), "/api/v1/vehicles/VINB/stream", "Authorization: Bearer t0k\r\n");
  ASSERT_TRUE(a.next_event() && a.next_event());
  ASSERT_TRUE(b.next_event());
  publish_n(2, "VINB");
  server->stop();
  for (auto* c : {&a, &b}) {
    // Queued events are flushed first, then the shutdown event, then the connection closes.
    auto e1 = c->next_event();
    auto e2 = c->next_event();
    ASSERT_TRUE(e1 && e2);
    EXPECT_EQ(e1->id, "1");
    EXPECT_EQ(e2->id, "2");
    auto s = c->next_event();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->event, "shutdown");
    EXPECT_EQ(s->data, R"({"reason":"draining"})");
    EXPECT_TRUE(c->raw().read_to_eof());
  }
  EXPECT_TRUE(wait_for([&] { return io.stopped(); }, 10s, "io_context drained"));
}

TEST_F(SseServer, PeerThatLeavesIsNoticedWithoutWaitingForAWrite) {
  start();
  {
    SseClient c(server->port(), "/api/v1/events");
    ASSERT_TRUE(c.next_event() && c.next_event());
    ASSERT_TRUE(streams_are(1));
  }
  EXPECT_TRUE(streams_are(0));
  EXPECT_EQ(metrics.gauge("teslasync_sse_clients", "").get().value(), 0.0);
}

TEST(SseShards, OneHubFeedsStreamsOnSeveralIoContexts) {
  core::MetricsRegistry metrics;
  auto hub = std::make_shared<EventHub>(metrics, EventHubOptions{.first_id = 1});
  auto router = std::make_shared<Router>();
  router->stream("/events", SseRoute{.hub = hub}, kPublic);
  boost::asio::io_context io1, io2;
  Server s1(io1, ServerOptions{}, router);
  Server s2(io2, ServerOptions{}, router);
  s1.start();
  s2.start();
  std::thread t1([&] { io1.run(); }), t2([&] { io2.run(); });
  {
    SseClient c1(s1.port(), "/events"), c2(s2.port(), "/events");
    // No snapshot callback: the stream still gets its position as a bare `id:` block.
    for (auto* c : {&c1, &c2}) {
      ASSERT_TRUE(c->next());  // retry
      auto pos = c->next();
      ASSERT_TRUE(pos);
      EXPECT_EQ(pos->id, "0");
      EXPECT_FALSE(pos->data);
    }
    for (int i = 0; i < 100; ++i) hub->publish(Event{"e", std::to_string(i), ""});
    for (auto* c : {&c1, &c2})
      for (int i = 0; i < 100; ++i) {
        auto e = c->next_event();
        ASSERT_TRUE(e);
        EXPECT_EQ(e->data, std::to_string(i));
      }
  }
  s1.stop();
  s2.stop();
  EXPECT_TRUE(wait_for([&] { return io1.stopped() && io2.stopped(); }, 10s, "both shards drained"));
  io1.stop();
  io2.stop();
  t1.join();
  t2.join();
}

}  // namespace
}  // namespace ts::http

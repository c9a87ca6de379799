// mqtt::Subscriber against a real Mosquitto on 127.0.0.1 (label: mosquitto), fed by our own
// publisher (dispatch::MqttClient). Exact packet-level behaviour (QoS 2, refused filters, SUBACK
// timeouts, stale tokens, oversized messages) is checked against a scripted broker written here.
#include "mqtt/subscriber.hpp"

#include <poll.h>

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <future>
#include <algorithm>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/metrics.hpp"
#include "dispatch/mqtt/mqtt_client.hpp"
#include "mqtt/codec.hpp"
#include "pki/dev_ca.hpp"
#include "support/mosquitto_broker.hpp"
#include "support/temp_dir.hpp"
#include "support/wait_for.hpp"

namespace ts::mqtt {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using testsupport::wait_for;

// ---- helpers ----------------------------------------------------------------------------------

struct Received {
  std::string topic;
  std::string payload;
  std::uint8_t qos = 0;
  bool retain = false;
  bool dup = false;
  AckToken token;
  std::size_t oversized_bytes = 0;
};

/// Records what on_message gets; optionally acks at once. Thread-safe.
class Inbox {
 public:
  explicit Inbox(bool ack_at_once = false) : ack_at_once_(ack_at_once) {}

  /// The handler to give the Subscriber; `sub` is set once the subscriber exists.
  Subscriber::MessageHandler handler() {
    return [this](const Message& m) {
      Subscriber* sub = sub_.load();
      {
        std::lock_guard lock(mutex_);
        messages_.push_back({std::string(m.topic), std::string(m.payload), m.qos, m.retain, m.dup,
                             m.token, m.oversized_bytes});
        if (sub != nullptr) max_unacked_seen_ = std::max(max_unacked_seen_, sub->unacked());
      }
      if (ack_at_once_ && sub != nullptr) sub->ack(m.token);
    };
  }
  void attach(Subscriber& sub) { sub_ = &sub; }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return messages_.size();
  }
  std::vector<Received> all() const {
    std::lock_guard lock(mutex_);
    return messages_;
  }
  std::vector<std::string> payloads() const {
    std::vector<std::string> out;
    for (const auto& m : all()) out.push_back(m.payload);
    return out;
  }
  std::size_t max_unacked_seen() const {
    std::lock_guard lock(mutex_);
    return max_unacked_seen_;
  }
  ::testing::AssertionResult wait_for_count(std::size_t n, std::chrono::milliseconds deadline) {
    auto r = wait_for([&] { return size() >= n; }, deadline,
                      "at least " + std::to_string(n) + " messages");
    if (!r) r << " (got " << size() << ")";
    return r;
  }

 private:
  const bool ack_at_once_;
  std::atomic<Subscriber*> sub_{nullptr};
  mutable std::mutex mutex_;  // guards messages_ and max_unacked_seen_
  std::vector<Received> messages_;
  std::size_t max_unacked_seen_ = 0;
};

SubscriberOptions options(std::uint16_t port, std::string client_id,
                          std::vector<std::string> filters = {"telemetry/+/v/+"}) {
  SubscriberOptions o;
  o.port = port;
  o.client_id = std::move(client_id);
  o.filters = std::move(filters);
  o.max_backoff = 1000ms;  // reconnect quickly in tests
  return o;
}

::testing::AssertionResult wait_subscribed(const Subscriber& s, std::uint64_t oks = 1) {
  return wait_for([&] { return s.subscribed() && s.stats().subscribe_ok.value() >= oks; }, 10s,
                  "subscribed (" + std::to_string(oks) + " SUBACKs)");
}

/// Waits until the broker has read every PUBACK the subscriber wrote so far: two keep-alive
/// round trips later (the first PINGREQ may have been written before them). Needs a short
/// keep_alive_seconds.
::testing::AssertionResult broker_has_read_our_acks(const Subscriber& s) {
  const std::uint64_t before = s.stats().pingresps.value();
  return wait_for([&] { return s.stats().pingresps.value() >= before + 2; }, 10s,
                  "two PINGRESPs after our PUBACKs");
}

/// Publishes (topic, payload) pairs with our publisher, as one batch, and waits until the
/// broker confirmed every one (QoS 1: PUBACK).
void publish(std::uint16_t port, const std::vector<std::pair<std::string, std::string>>& msgs,
             std::uint8_t qos = 1, const std::string& username = {},
             const std::string& password = {}) {
  static std::atomic<int> n{0};
  dispatch::MqttClientOptions o;
  o.port = port;
  o.client_id = "test-publisher-" + std::to_string(++n);
  o.username = username;
  o.password = password;
  dispatch::MqttClient client(o);
  client.start();
  ASSERT_TRUE(wait_for([&] { return client.connected(); }, 10s, "publisher connected"));
  std::vector<dispatch::MqttClient::Message> batch;
  for (const auto& [t, p] : msgs) batch.push_back({t, p, qos, false});
  std::promise<bool> done;
  client.publish_batch(std::move(batch), [&](bool ok) { done.set_value(ok); });
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(30s), std::future_status::ready) << "publish did not complete";
  ASSERT_TRUE(f.get()) << "publish failed";
  client.stop();
}

std::vector<std::pair<std::string, std::string>> numbered(const std::string& vin, int from, int to) {
  std::vector<std::pair<std::string, std::string>> out;
  for (int i = from; i < to; ++i)
    out.emplace_back("telemetry/" + vin + "/v/Field" + std::to_string(i), std::to_string(i));
  return out;
}

std::vector<std::string> range(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(std::to_string(i));
  return out;
}

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int v : b) s.push_back(static_cast<char>(v));
  return s;
}

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
    out.push_back(' ');
  }
  return out;
}

/// A TCP relay between the subscriber and the broker whose connections the test can cut: a
/// network failure without restarting the broker (which would lose the session).
class Relay {
 public:
  explicit Relay(std::uint16_t target)
      : target_(target), acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Relay() {
    io_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  /// Closes every relayed connection (both sides); new ones are accepted as before.
  void cut() {
    std::promise<void> done;
    asio::post(io_, [&] {
      for (auto& p : pairs_) p->close();
      pairs_.clear();
      done.set_value();
    });
    done.get_future().wait();
  }

 private:
  struct Pair {
    tcp::socket a, b;
    std::array<char, 16384> ab{}, ba{};
    explicit Pair(asio::io_context& io) : a(io), b(io) {}
    void close() {
      boost::system::error_code ignored;
      a.close(ignored);
      b.close(ignored);
    }
  };

  void accept() {
    auto p = std::make_shared<Pair>(io_);
    acceptor_.async_accept(p->a, [this, p](boost::system::error_code ec) {
      if (ec) return;
      accept();
      p->b.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), target_),
                         [this, p](boost::system::error_code ec2) {
                           if (ec2) return p->close();
                           pairs_.push_back(p);
                           pump(p, p->a, p->b, p->ab);
                           pump(p, p->b, p->a, p->ba);
                         });
    });
  }

  void pump(std::shared_ptr<Pair> p, tcp::socket& from, tcp::socket& to,
            std::array<char, 16384>& buf) {
    from.async_read_some(asio::buffer(buf), [this, p, &from, &to, &buf](
                                                boost::system::error_code ec, std::size_t n) {
      if (ec) return p->close();
      asio::async_write(to, asio::buffer(buf.data(), n),
                        [this, p, &from, &to, &buf](boost::system::error_code ec2, std::size_t) {
                          if (ec2) return p->close();
                          pump(p, from, to, buf);
                        });
    });
  }

  const std::uint16_t target_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::vector<std::shared_ptr<Pair>> pairs_;  // io_ thread only
  std::thread thread_;
};

/// A scripted MQTT broker: the test accepts the subscriber's connection and reads and writes
/// packets by hand, on its own thread, with every read bounded (10 s).
class ScriptedBroker {
 public:
  ScriptedBroker() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    acceptor_.non_blocking(true);
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  /// Accepts the next connection (bounded) and answers its CONNECT with a CONNACK.
  /// Returns the CONNECT packet.
  std::string accept(bool session_present = false) {
    conn_ = std::make_unique<tcp::socket>(io_);
    boost::system::error_code ec;
    const bool ok = wait_for(
        [&] {
          acceptor_.accept(*conn_, ec);
          return !ec;
        },
        10s, "the subscriber to connect");
    if (!ok) throw std::runtime_error("no connection from the subscriber");
    std::string connect = read();
    send(bytes({0x20, 2, session_present ? 1 : 0, 0}));
    return connect;
  }

  /// The next packet from the subscriber, whole. Throws if none arrives within 10 s.
  std::string read() {
    std::string p = read_exactly(1);
    std::size_t remaining = 0;
    for (int shift = 0;; shift += 7) {
      const char b = read_exactly(1)[0];
      p.push_back(b);
      remaining |= static_cast<std::size_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) break;
    }
    return p + read_exactly(remaining);
  }

  /// True if the subscriber closes the connection (EOF) within 10 s, before sending anything.
  bool closed_by_peer() {
    wait_readable();
    char b = 0;
    boost::system::error_code ec;
    conn_->read_some(asio::buffer(&b, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

  void send(const std::string& packet) { asio::write(*conn_, asio::buffer(packet)); }
  void drop() { conn_.reset(); }

 private:
  // Blocking socket reads without a deadline could hang the test: poll first, bounded.
  void wait_readable() {
    pollfd p{conn_->native_handle(), POLLIN, 0};
    if (::poll(&p, 1, 10'000) != 1) throw std::runtime_error("nothing from the subscriber in 10 s");
  }

  std::string read_exactly(std::size_t n) {
    std::string out(n, '\0');
    std::size_t got = 0;
    while (got < n) {
      wait_readable();
      boost::system::error_code ec;
      got += conn_->read_some(asio::buffer(out.data() + got, n - got), ec);
      if (ec) throw std::runtime_error("subscriber connection: " + ec.message());
    }
    return out;
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::unique_ptr<tcp::socket> conn_;
};

std::string publish_packet(std::string_view topic, std::string_view payload, int qos,
                           std::uint16_t id, bool dup = false) {
  std::string out;
  encode_publish(out, topic, payload, qos, false, id, dup);
  return out;
}

std::string subscribe_packet(std::uint16_t id, std::vector<std::pair<std::string, int>> filters) {
  std::vector<Subscription> subs;
  for (const auto& [f, q] : filters) subs.push_back({f, static_cast<std::uint8_t>(q)});
  std::string out;
  encode_subscribe(out, id, subs);
  return out;
}

// ---- against Mosquitto --------------------------------------------------------------------------

TEST(Subscriber, ReceivesWhatOurPublisherSendsAndAcknowledgesIt) {
  testsupport::MosquittoBroker broker;
  Inbox inbox(/*ack_at_once=*/true);
  Subscriber sub(options(broker.port(), "ingest-basic",
                         {"telemetry/+/v/+", "telemetry/+/alerts", "telemetry/+/connectivity"}),
                 inbox.handler());
  inbox.attach(sub);
  core::MetricsRegistry metrics;
  sub.register_metrics(metrics);
  sub.start();
  ASSERT_TRUE(wait_subscribed(sub));

  auto msgs = numbered("VIN1", 0, 100);
  msgs.insert(msgs.begin(), {"telemetry/VIN1/errors", "not subscribed"});  // arrives first or never
  msgs.emplace_back("telemetry/VIN1/alerts", "[]");
  msgs.emplace_back("telemetry/VIN1/connectivity", "{}");
  publish(broker.port(), msgs);
  ASSERT_TRUE(inbox.wait_for_count(102, 10s));
  const auto got = inbox.all();
  ASSERT_EQ(got.size(), 102u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(got[i].topic, "telemetry/VIN1/v/Field" + std::to_string(i));
    EXPECT_EQ(got[i].payload, std::to_string(i));
    EXPECT_EQ(got[i].qos, 1);
    EXPECT_FALSE(got[i].retain);
    EXPECT_FALSE(got[i].dup);
    EXPECT_EQ(got[i].token.generation(), 1u);
    EXPECT_NE(got[i].token.packet_id(), 0);
  }
  EXPECT_EQ(got[100].topic, "telemetry/VIN1/alerts");
  EXPECT_EQ(got[101].topic, "telemetry/VIN1/connectivity");
  ASSERT_TRUE(wait_for([&] { return sub.stats().acks_sent.value() == 102; }, 10s, "102 PUBACKs"));
  EXPECT_EQ(sub.unacked(), 0u);
  EXPECT_EQ(sub.stats().messages_received.value(), 102u);
  EXPECT_EQ(sub.stats().connects.value(), 1u);
  EXPECT_EQ(sub.stats().subscribe_attempts.value(), 1u);
  EXPECT_GT(sub.stats().bytes_read.value(), 0u);
  EXPECT_FALSE(sub.paused());

  const std::string text = metrics.render_prometheus();
  for (const char* line :
       {"teslasync_mqtt_connected 1", "teslasync_mqtt_subscribed 1", "teslasync_mqtt_unacked 0",
        "teslasync_mqtt_paused 0", "teslasync_mqtt_messages_received_total 102",
        "teslasync_mqtt_acks_sent_total 102", "teslasync_mqtt_connects_total 1",
        "teslasync_mqtt_subscription_attempts_total{result=\"ok\"} 1",
        "teslasync_mqtt_subscription_attempts_total{result=\"refused\"} 0"})
    EXPECT_NE(text.find(std::string("\n") + line + "\n"), std::string::npos) << line << "\n" << text;
  EXPECT_GT(std::chrono::system_clock::to_time_t(sub.last_message_time()), 1'700'000'000);
  sub.stop();
  EXPECT_FALSE(sub.connected());
}

std::vector<Received> tail(const std::vector<Received>& v, std::size_t from) {
  return std::vector<Received>(v.begin() + static_cast<std::ptrdiff_t>(std::min(from, v.size())),
                               v.end());
}

std::vector<std::string> sorted_payloads(const std::vector<Received>& v) {
  std::vector<std::string> out;
  for (const auto& m : v) out.push_back(m.payload);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(Subscriber, UnackedMessagesComeBackAfterAConnectionLossAckedOnesDoNot) {
  testsupport::MosquittoBroker broker({.extra_config = {"max_inflight_messages 0"}});
  Relay relay(broker.port());
  Inbox inbox;
  auto o = options(relay.port(), "ingest-redeliver");
  o.keep_alive_seconds = 1;
  Subscriber sub(o, inbox.handler());
  inbox.attach(sub);
  sub.start();
  ASSERT_TRUE(wait_subscribed(sub));
  publish(broker.port(), numbered("VIN2", 0, 10));
  ASSERT_TRUE(inbox.wait_for_count(10, 10s));
  const auto first = inbox.all();
  for (int i = 0; i < 10; i += 2) sub.ack(first[i].token);  // even ones are durable
  ASSERT_TRUE(wait_for([&] { return sub.stats().acks_sent.value() == 5; }, 10s, "5 PUBACKs"));
  ASSERT_TRUE(broker_has_read_our_acks(sub));
  EXPECT_EQ(sub.unacked(), 5u);

  relay.cut();  // network failure: the broker keeps the session
  ASSERT_TRUE(inbox.wait_for_count(15, 10s));
  const std::vector<Received> again = tail(inbox.all(), 10);
  // The ones never acked come back, no even one.
  EXPECT_EQ(sorted_payloads(again), sorted({"1", "3", "5", "7", "9"}));
  for (const auto& m : again) {
    EXPECT_TRUE(m.dup) << m.payload;
    EXPECT_EQ(m.token.generation(), 2u);
  }
  ASSERT_TRUE(wait_subscribed(sub, 2));
  EXPECT_EQ(sub.stats().connects.value(), 2u);
  EXPECT_EQ(sub.stats().disconnects.value(), 1u);
  EXPECT_EQ(sub.stats().session_resets.value(), 0u);
  // Unacked: the 5 stale ones of connection 1 and their 5 redeliveries.
  EXPECT_EQ(sub.unacked(), 10u);
  for (const auto& m : first) sub.ack(m.token);  // stale or acked before: nothing is sent
  ASSERT_TRUE(wait_for([&] { return sub.stats().stale_acks.value() == 5; }, 10s, "stale acks"));
  EXPECT_EQ(sub.unacked(), 5u);
  EXPECT_EQ(sub.stats().acks_sent.value(), 5u);
  for (const auto& m : again) sub.ack(m.token);
  ASSERT_TRUE(wait_for([&] { return sub.unacked() == 0; }, 10s, "everything acked"));
  EXPECT_EQ(sub.stats().acks_sent.value(), 10u);
  ASSERT_TRUE(broker_has_read_our_acks(sub));
  relay.cut();  // everything is acked: after this only new messages arrive
  ASSERT_TRUE(wait_subscribed(sub, 3));
  publish(broker.port(), {{"telemetry/VIN2/v/Marker", "m"}});
  ASSERT_TRUE(inbox.wait_for_count(16, 10s));
  EXPECT_EQ(inbox.all().back().payload, "m");
  EXPECT_EQ(inbox.size(), 16u);
  sub.stop();
}

TEST(Subscriber, StaleTokensNeverAcknowledgeTheRedeliveryThatReusesTheirPacketId) {
  testsupport::MosquittoBroker broker({.extra_config = {"max_inflight_messages 0"}});
  Relay relay(broker.port());
  Inbox inbox;
  auto o = options(relay.port(), "ingest-stale");
  o.keep_alive_seconds = 1;
  Subscriber sub(o, inbox.handler());
  inbox.attach(sub);
  sub.start();
  ASSERT_TRUE(wait_subscribed(sub));
  publish(broker.port(), numbered("VIN3", 0, 5));
  ASSERT_TRUE(inbox.wait_for_count(5, 10s));
  const auto gen1 = inbox.all();

  relay.cut();
  ASSERT_TRUE(inbox.wait_for_count(10, 10s));  // the five again, on connection 2
  const std::vector<Received> gen2 = tail(inbox.all(), 5);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(gen2[i].payload, gen1[i].payload);
    // Mosquitto resends with the same packet id: exactly the case a stale ack must not hit.
    EXPECT_EQ(gen2[i].token.packet_id(), gen1[i].token.packet_id());
    EXPECT_EQ(gen2[i].token.generation(), 2u);
    sub.ack(gen1[i].token);
  }
  ASSERT_TRUE(wait_for([&] { return sub.stats().stale_acks.value() == 5; }, 10s, "5 stale acks"));
  EXPECT_EQ(sub.stats().acks_sent.value(), 0u);
  ASSERT_TRUE(broker_has_read_our_acks(sub));  // (there are none: nothing to wait for but this)

  relay.cut();  // not acked on connection 2 either: they come a third time
  ASSERT_TRUE(inbox.wait_for_count(15, 10s));
  const std::vector<Received> gen3 = tail(inbox.all(), 10);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(gen3[i].payload, gen1[i].payload);
    EXPECT_EQ(gen3[i].token.generation(), 3u);
    sub.ack(gen3[i].token);
    sub.ack(gen2[i].token);  // stale, ignored
  }
  ASSERT_TRUE(wait_for([&] { return sub.stats().acks_sent.value() == 5; }, 10s, "5 PUBACKs"));
  EXPECT_EQ(sub.stats().stale_acks.value(), 10u);
  publish(broker.port(), numbered("VIN3", 5, 10));
  ASSERT_TRUE(inbox.wait_for_count(20, 10s));
  ASSERT_TRUE(broker_has_read_our_acks(sub));

  relay.cut();  // only the unacked 5..9 come back
  ASSERT_TRUE(inbox.wait_for_count(25, 10s));
  const std::vector<Received> gen4 = tail(inbox.all(), 20);
  EXPECT_EQ(sorted_payloads(gen4), sorted(range(5, 10)));
  for (const auto& m : gen4) sub.ack(m.token);
  // Left: the deliveries of 5..9 on connection 3, never acked, now stale.
  ASSERT_TRUE(wait_for([&] { return sub.unacked() == 5; }, 10s, "5 stale deliveries left"));
  sub.stop();
}

TEST(Subscriber, ThePersistentSessionKeepsMessagesWhileWeAreStopped) {
  testsupport::MosquittoBroker broker(
      {.extra_config = {"max_inflight_messages 0", "max_queued_messages 100000"}});
  {
    Inbox inbox(true);
    Subscriber first(options(broker.port(), "ingest-persistent"), inbox.handler());
    inbox.attach(first);
    first.start();
    ASSERT_TRUE(wait_subscribed(first));
    first.stop();  // DISCONNECT, no UNSUBSCRIBE: the subscription stays with the session
  }
  // More than Mosquitto's default max_queued_messages (1000) would keep.
  publish(broker.port(), numbered("VIN4", 0, 2000));
  Inbox inbox(true);
  Subscriber second(options(broker.port(), "ingest-persistent"), inbox.handler());
  inbox.attach(second);
  second.start();
  ASSERT_TRUE(inbox.wait_for_count(2000, 20s));
  EXPECT_EQ(inbox.payloads(), range(0, 2000));  // in order, once each
  ASSERT_TRUE(wait_subscribed(second));          // subscribed again all the same
  EXPECT_EQ(second.stats().session_resets.value(), 0u);
  EXPECT_NE(broker.log_text().find("Client ingest-persistent disconnected."), std::string::npos)
      << "stop() should send DISCONNECT";
  second.stop();
}

TEST(Subscriber, SubscribesAgainByItselfAfterABrokerRestart) {
  testsupport::MosquittoBroker broker;  // no persistence: the restart loses the session
  Inbox inbox(true);
  Subscriber sub(options(broker.port(), "ingest-restart"), inbox.handler());
  inbox.attach(sub);
  sub.start();
  ASSERT_TRUE(wait_subscribed(sub));
  publish(broker.port(), numbered("VIN5", 0, 3));
  ASSERT_TRUE(inbox.wait_for_count(3, 10s));

  broker.stop();
  ASSERT_TRUE(wait_for([&] { return !sub.connected(); }, 10s, "connection lost"));
  EXPECT_FALSE(sub.subscribed());
  broker.start();
  ASSERT_TRUE(wait_subscribed(sub, 2));
  EXPECT_EQ(sub.stats().session_resets.value(), 1u);
  publish(broker.port(), numbered("VIN5", 3, 6));
  ASSERT_TRUE(inbox.wait_for_count(6, 10s));
  EXPECT_EQ(inbox.payloads(), range(0, 6));
  EXPECT_EQ(sub.stats().connects.value(), 2u);
  EXPECT_GE(sub.stats().disconnects.value(), 1u);
  sub.stop();
}

TEST(Subscriber, StopsReadingAtMaxUnackedAndResumesOnAcksWithoutLosingAnything) {
  testsupport::MosquittoBroker broker(
      {.extra_config = {"max_inflight_messages 0", "max_queued_messages 100000"}});
  Inbox inbox;
  auto o = options(broker.port(), "ingest-backpressure");
  o.max_unacked = 10;
  Subscriber sub(o, inbox.handler());
  inbox.attach(sub);
  sub.start();
  ASSERT_TRUE(wait_subscribed(sub));
  publish(broker.port(), numbered("VIN6", 0, 500));

  ASSERT_TRUE(inbox.wait_for_count(10, 10s));
  ASSERT_TRUE(wait_for([&] { return sub.paused(); }, 10s, "reading paused"));
  EXPECT_EQ(inbox.size(), 10u);  // nothing is delivered beyond the bound
  EXPECT_EQ(sub.unacked(), 10u);
  // Ack what arrived, batch after batch, as a writer would; bounded in rounds.
  std::size_t acked = 0;
  for (int round = 0; round < 1000 && acked < 500; ++round) {
    ASSERT_TRUE(inbox.wait_for_count(acked + 1, 10s));
    const auto got = inbox.all();
    std::vector<AckToken> tokens;
    for (std::size_t i = acked; i < got.size(); ++i) tokens.push_back(got[i].token);
    acked = got.size();
    sub.ack(tokens);
  }
  EXPECT_EQ(inbox.payloads(), range(0, 500));
  EXPECT_LE(inbox.max_unacked_seen(), 10u);
  EXPECT_GE(sub.stats().read_pauses.value(), 1u);
  ASSERT_TRUE(wait_for([&] { return sub.unacked() == 0 && !sub.paused(); }, 10s, "drained"));
  EXPECT_EQ(sub.stats().acks_sent.value(), 500u);
  sub.stop();
}

TEST(Subscriber, PauseHoldsMessagesBackUntilResume) {
  testsupport::MosquittoBroker broker({.extra_config = {"max_inflight_messages 0"}});
  Inbox inbox(true);
  Subscriber sub(options(broker.port(), "ingest-pause"), inbox.handler());
  inbox.attach(sub);
  sub.start();
  ASSERT_TRUE(wait_subscribed(sub));
  sub.pause();
  EXPECT_TRUE(sub.paused());
  publish(broker.port(), numbered("VIN7", 0, 50));
  // The bytes arrive; the subscriber holds the first packet back instead of delivering it.
  ASSERT_TRUE(wait_for([&] { return sub.stats().read_pauses.value() >= 1; }, 10s, "held back"));
  EXPECT_EQ(inbox.size(), 0u);
  sub.resume();
  ASSERT_TRUE(inbox.wait_for_count(50, 10s));
  EXPECT_EQ(inbox.payloads(), range(0, 50));
  EXPECT_FALSE(sub.paused());
  sub.stop();
}

// The fact src/mqtt/README.md builds on: Mosquitto's default max_inflight_messages (20) holds
// back every message beyond 20 unacknowledged ones, so with acks delayed until a batch is
// durable the subscription stalls until the batch timer fires.
TEST(Subscriber, MosquittoDefaultHoldsBackEverythingBeyondTwentyUnackedMessages) {
  testsupport::MosquittoBroker broker;  // defaults: max_inflight_messages 20
  Inbox inbox;
  auto o = options(broker.port(), "ingest-window");
  o.keep_alive_seconds = 1;
  Subscriber sub(o, inbox.handler());
  inbox.attach(sub);
  sub.start();
  ASSERT_TRUE(wait_subscribed(sub));
  publish(broker.port(), numbered("VIN8", 0, 50));  // all 50 are on the broker now
  ASSERT_TRUE(inbox.wait_for_count(20, 10s));
  // Two keep-alive round trips later the broker has had every chance to send more.
  ASSERT_TRUE(broker_has_read_our_acks(sub));
  EXPECT_EQ(inbox.size(), 20u);
  EXPECT_FALSE(sub.paused());  // held back by the broker, not by us
  // Acks open the window again (Mosquitto 2.0.11 then sends more than 20 at once; nothing here
  // depends on how many).
  for (int round = 0; round < 50 && inbox.size() < 50; ++round) {
    const auto got = inbox.all();
    for (const auto& m : got) sub.ack(m.token);  // acking one twice does nothing
    ASSERT_TRUE(inbox.wait_for_count(std::min<std::size_t>(50, got.size() + 1), 10s));
  }
  EXPECT_EQ(inbox.payloads(), range(0, 50));
  sub.stop();
}

TEST(Subscriber, Qos2ThroughMosquittoIsDeliveredOnceAndCompleted) {
  testsupport::MosquittoBroker broker({.extra_config = {"max_inflight_messages 0"}});
  Relay relay(broker.port());
  Inbox inbox(true);
  auto o = options(relay.port(), "ingest-qos2");
  o.qos = 2;
  Subscriber sub(o, inbox.handler());
  inbox.attach(sub);
  sub.start();
  ASSERT_TRUE(wait_subscribed(sub));
  publish(broker.port(), numbered("VIN9", 0, 30), 2);
  ASSERT_TRUE(inbox.wait_for_count(30, 10s));
  for (const auto& m : inbox.all()) EXPECT_EQ(m.qos, 2);
  ASSERT_TRUE(wait_for([&] { return sub.stats().acks_sent.value() == 30; }, 10s, "30 PUBRECs"));
  publish(broker.port(), {{"telemetry/VIN9/v/Marker", "m"}}, 2);  // PUBRELs came before it
  ASSERT_TRUE(inbox.wait_for_count(31, 10s));
  relay.cut();
  ASSERT_TRUE(wait_subscribed(sub, 2));
  publish(broker.port(), {{"telemetry/VIN9/v/Marker", "m2"}}, 2);
  ASSERT_TRUE(inbox.wait_for_count(32, 10s));
  auto expected = range(0, 30);
  expected.push_back("m");
  expected.push_back("m2");
  // Delivered once each, even if the cut came before the broker had a PUBREC (it then sends
  // the PUBLISH again, which is answered and suppressed).
  EXPECT_EQ(inbox.payloads(), expected);
  sub.stop();
}

TEST(Subscriber, ConnectsWithTlsAndAPassword) {
  testsupport::TempDir certs("mqtt-sub-tls");
  auto ca = pki::write_dev_ca({.out_dir = certs.path(), .vins = {}, .server_name = "localhost"});
  testsupport::MosquittoOptions bo;
  bo.username = "ingest";
  bo.password = "s3cret";
  bo.allow_anonymous = false;
  bo.tls = testsupport::MosquittoTlsListener{ca.server_cert, ca.server_key, ca.ca_file, false};
  testsupport::MosquittoBroker broker(bo);

  auto tls_options = [&](const std::string& id) {
    auto o = options(broker.tls_port(), id);
    o.tls = true;
    o.ca_file = ca.ca_file.string();
    o.username = "ingest";
    o.password = "s3cret";
    return o;
  };
  {  // a wrong password: refused by the broker, retried, never connected
    auto o = tls_options("ingest-tls-bad-password");
    o.password = "wrong";
    Inbox none;
    Subscriber bad(o, none.handler());
    bad.start();
    ASSERT_TRUE(wait_for([&] { return bad.stats().connect_failures.value() >= 2; }, 10s,
                         "two refused attempts"));
    EXPECT_FALSE(bad.connected());
  }
  {  // a CA that did not sign the broker's certificate: the handshake fails
    testsupport::TempDir other("mqtt-sub-tls-other");
    auto other_ca = pki::write_dev_ca({.out_dir = other.path(), .vins = {}, .server_name = "x"});
    auto o = tls_options("ingest-tls-bad-ca");
    o.ca_file = other_ca.ca_file.string();
    Inbox none;
    Subscriber bad(o, none.handler());
    bad.start();
    ASSERT_TRUE(wait_for([&] { return bad.stats().connect_failures.value() >= 1; }, 10s,
                         "untrusted broker refused"));
    EXPECT_FALSE(bad.connected());
  }
  Inbox inbox(true);
  Subscriber sub(tls_options("ingest-tls"), inbox.handler());
  inbox.attach(sub);
  sub.start();
  ASSERT_TRUE(wait_subscribed(sub));
  publish(broker.port(), numbered("VIN10", 0, 20), 1, "ingest", "s3cret");
  ASSERT_TRUE(inbox.wait_for_count(20, 10s));
  EXPECT_EQ(inbox.payloads(), range(0, 20));
  ASSERT_TRUE(wait_for([&] { return sub.stats().acks_sent.value() == 20; }, 10s, "20 PUBACKs"));
  sub.stop();
}

// Why src/mqtt/README.md says to alert on the last message's age: Mosquitto 2.0.11 answers a
// subscription its ACL denies with a granted QoS and then delivers nothing for it.
TEST(Subscriber, MosquittoGrantsASubscriptionItsAclDenies) {
  testsupport::TempDir dir("mqtt-sub-acl");
  dir.write_file("acl", "topic read telemetry/#\nuser pub\ntopic write #\n");
  testsupport::MosquittoOptions bo;
  bo.username = "pub";
  bo.password = "pw";
  bo.extra_config = {"acl_file " + dir.file("acl").string()};
  testsupport::MosquittoBroker broker(bo);
  Inbox inbox(true);
  Subscriber sub(options(broker.port(), "ingest-acl", {"secret/#", "telemetry/+/v/+"}),
                 inbox.handler());
  inbox.attach(sub);
  sub.start();
  ASSERT_TRUE(wait_subscribed(sub));  // both filters "granted"
  EXPECT_EQ(sub.stats().subscribe_refused.value(), 0u);
  publish(broker.port(), {{"secret/x", "hidden"}, {"telemetry/V/v/Soc", "1"}}, 1, "pub", "pw");
  ASSERT_TRUE(inbox.wait_for_count(1, 10s));
  EXPECT_EQ(inbox.payloads(), std::vector<std::string>{"1"});
  sub.stop();
}

TEST(Subscriber, RejectsOptionsItCannotWorkWith) {
  Inbox inbox;
  auto ok = options(1883, "id");
  EXPECT_NO_THROW(Subscriber(ok, inbox.handler()));
  auto no_id = ok;
  no_id.client_id.clear();
  EXPECT_THROW(Subscriber(no_id, inbox.handler()), std::invalid_argument);
  auto no_filters = ok;
  no_filters.filters.clear();
  EXPECT_THROW(Subscriber(no_filters, inbox.handler()), std::invalid_argument);
  for (const char* bad : {"a/#/b", "a+", "", "x#"}) {
    auto o = ok;
    o.filters = {"telemetry/+/v/+", bad};
    EXPECT_THROW(Subscriber(o, inbox.handler()), std::invalid_argument) << bad;
  }
  auto qos3 = ok;
  qos3.qos = 3;
  EXPECT_THROW(Subscriber(qos3, inbox.handler()), std::invalid_argument);
  auto keep_alive = ok;
  keep_alive.keep_alive_seconds = 70'000;
  EXPECT_THROW(Subscriber(keep_alive, inbox.handler()), std::invalid_argument);
  EXPECT_THROW(Subscriber(ok, nullptr), std::invalid_argument);
  auto tls = ok;
  tls.tls = true;
  tls.ca_file = "/nonexistent/ca.pem";
  EXPECT_THROW(Subscriber(tls, inbox.handler()), std::runtime_error);
}

// ---- against a scripted broker: exact packets ---------------------------------------------------

SubscriberOptions scripted_options(std::uint16_t port, std::vector<std::string> filters) {
  auto o = options(port, "scripted", std::move(filters));
  o.keep_alive_seconds = 0;  // no PINGREQ among the packets the script expects
  o.max_backoff = 250ms;
  return o;
}

TEST(SubscriberPackets, ConnectsWithoutCleanSessionAndSubscribesAfterEveryConnack) {
  ScriptedBroker broker;
  Inbox inbox;
  auto o = scripted_options(broker.port(), {"telemetry/+/v/+", "telemetry/+/alerts"});
  o.username = "u";
  o.password = "p";
  Subscriber sub(o, inbox.handler());
  sub.start();
  const std::string connect = broker.accept();
  // spec 3.1: flags 0xc0 = username + password, clean session off; keep-alive 0; id "scripted".
  EXPECT_EQ(hex(connect), hex(bytes({0x10, 26, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xc0, 0, 0, 0, 8,
                                     's', 'c', 'r', 'i', 'p', 't', 'e', 'd', 0, 1, 'u', 0, 1, 'p'})));
  EXPECT_EQ(hex(broker.read()),
            hex(subscribe_packet(1, {{"telemetry/+/v/+", 1}, {"telemetry/+/alerts", 1}})));
  broker.send(bytes({0x90, 4, 0, 1, 1, 1}));
  ASSERT_TRUE(wait_subscribed(sub));
  EXPECT_FALSE(sub.session_resumed());  // the first CONNACK had no session

  broker.drop();  // connection lost; the next CONNACK says the session is there
  broker.accept(/*session_present=*/true);
  EXPECT_EQ(hex(broker.read()),
            hex(subscribe_packet(2, {{"telemetry/+/v/+", 1}, {"telemetry/+/alerts", 1}})));
  // Before the SUBACK: not subscribed on this connection, but the broker's session is in force.
  EXPECT_TRUE(wait_for([&] { return sub.session_resumed(); }, 10s, "session resumed"));
  EXPECT_FALSE(sub.subscribed());
  broker.send(bytes({0x90, 4, 0, 2, 1, 1}));
  ASSERT_TRUE(wait_subscribed(sub, 2));
  EXPECT_EQ(sub.stats().connects.value(), 2u);
  sub.stop();
  EXPECT_EQ(hex(broker.read()), hex(bytes({0xe0, 0})));  // DISCONNECT, never UNSUBSCRIBE
}

TEST(SubscriberPackets, ARefusedFilterIsCountedAndSubscribedAgain) {
  ScriptedBroker broker;
  Inbox inbox(true);
  Subscriber sub(scripted_options(broker.port(), {"telemetry/+/v/+", "secret/#"}), inbox.handler());
  inbox.attach(sub);
  core::MetricsRegistry metrics;
  sub.register_metrics(metrics);
  sub.start();
  broker.accept();
  EXPECT_EQ(hex(broker.read()), hex(subscribe_packet(1, {{"telemetry/+/v/+", 1}, {"secret/#", 1}})));
  broker.send(bytes({0x90, 4, 0, 1, 1, 0x80}));
  // Messages of the granted filter flow meanwhile.
  broker.send(publish_packet("telemetry/V/v/Soc", "1", 1, 9));
  EXPECT_EQ(hex(broker.read()), hex(bytes({0x40, 2, 0, 9})));
  EXPECT_FALSE(sub.subscribed());
  EXPECT_EQ(sub.stats().subscribe_refused.value(), 1u);
  // Only the refused filter is asked for again, after a second or so, on the same connection.
  EXPECT_EQ(hex(broker.read()), hex(subscribe_packet(2, {{"secret/#", 1}})));
  broker.send(bytes({0x90, 3, 0, 2, 0x80}));
  EXPECT_EQ(hex(broker.read()), hex(subscribe_packet(3, {{"secret/#", 1}})));
  broker.send(bytes({0x90, 3, 0, 3, 1}));
  ASSERT_TRUE(wait_subscribed(sub));
  EXPECT_EQ(sub.stats().subscribe_refused.value(), 2u);
  EXPECT_EQ(sub.stats().connects.value(), 1u);
  const std::string text = metrics.render_prometheus();
  EXPECT_NE(text.find("teslasync_mqtt_subscription_attempts_total{result=\"refused\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("teslasync_mqtt_subscription_attempts_total{result=\"ok\"} 1\n"),
            std::string::npos);
  sub.stop();
}

TEST(SubscriberPackets, NoSubackInTimeMeansReconnectAndSubscribeAgain) {
  ScriptedBroker broker;
  Inbox inbox;
  auto o = scripted_options(broker.port(), {"a/+"});
  o.subscribe_timeout = 300ms;
  Subscriber sub(o, inbox.handler());
  sub.start();
  broker.accept();
  EXPECT_EQ(hex(broker.read()), hex(subscribe_packet(1, {{"a/+", 1}})));
  EXPECT_TRUE(broker.closed_by_peer());  // no SUBACK: the subscriber gives the connection up
  broker.accept(true);
  EXPECT_EQ(hex(broker.read()), hex(subscribe_packet(2, {{"a/+", 1}})));
  broker.send(bytes({0x90, 3, 0, 2, 1}));
  ASSERT_TRUE(wait_subscribed(sub));
  EXPECT_EQ(sub.stats().subscribe_timeouts.value(), 1u);
  sub.stop();
}

TEST(SubscriberPackets, Qos2IsRecordedOnAckCompletedOnPubrelAndDeliveredOnce) {
  ScriptedBroker broker;
  Inbox inbox;
  auto o = scripted_options(broker.port(), {"q/+"});
  o.qos = 2;
  Subscriber sub(o, inbox.handler());
  inbox.attach(sub);
  sub.start();
  broker.accept();
  EXPECT_EQ(hex(broker.read()), hex(subscribe_packet(1, {{"q/+", 2}})));
  broker.send(bytes({0x90, 3, 0, 1, 2}));
  broker.send(publish_packet("q/2", "x", 2, 7));
  ASSERT_TRUE(inbox.wait_for_count(1, 10s));
  broker.send(publish_packet("q/2", "x", 2, 7, /*dup=*/true));  // before our PUBREC: not again
  ASSERT_TRUE(wait_for([&] { return sub.stats().duplicates_suppressed.value() == 1; }, 10s,
                       "duplicate suppressed"));
  sub.ack(inbox.all()[0].token);
  EXPECT_EQ(hex(broker.read()), hex(bytes({0x50, 2, 0, 7})));  // PUBREC only once acked
  broker.send(publish_packet("q/2", "x", 2, 7, true));  // after PUBREC: answered, not delivered
  EXPECT_EQ(hex(broker.read()), hex(bytes({0x50, 2, 0, 7})));
  broker.send(bytes({0x62, 2, 0, 7}));  // PUBREL
  EXPECT_EQ(hex(broker.read()), hex(bytes({0x70, 2, 0, 7})));  // PUBCOMP
  broker.send(publish_packet("q/2", "y", 2, 7));  // the id is free again: a new message
  ASSERT_TRUE(inbox.wait_for_count(2, 10s));
  EXPECT_EQ(inbox.payloads(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(sub.stats().duplicates_suppressed.value(), 2u);
  broker.send(bytes({0x62, 2, 0, 99}));  // PUBREL for an id we never saw: PUBCOMP all the same
  EXPECT_EQ(hex(broker.read()), hex(bytes({0x70, 2, 0, 99})));
  sub.ack(inbox.all()[1].token);
  EXPECT_EQ(hex(broker.read()), hex(bytes({0x50, 2, 0, 7})));
  sub.stop();
}

TEST(SubscriberPackets, ATokenAcknowledgesOnlyItsOwnDelivery) {
  ScriptedBroker broker;
  Inbox inbox;
  Subscriber sub(scripted_options(broker.port(), {"t/+"}), inbox.handler());
  inbox.attach(sub);
  sub.start();
  broker.accept();
  broker.read();  // SUBSCRIBE
  broker.send(bytes({0x90, 3, 0, 1, 1}));
  broker.send(publish_packet("t/a", "first", 1, 5));
  ASSERT_TRUE(inbox.wait_for_count(1, 10s));
  const AckToken first = inbox.all()[0].token;
  sub.ack(first);
  EXPECT_EQ(hex(broker.read()), hex(bytes({0x40, 2, 0, 5})));
  // The broker reuses id 5 for the next message; the first token must not acknowledge it.
  broker.send(publish_packet("t/a", "second", 1, 5));
  broker.send(publish_packet("t/a", "third", 1, 6));
  ASSERT_TRUE(inbox.wait_for_count(3, 10s));
  sub.ack(first);
  sub.ack(inbox.all()[2].token);
  EXPECT_EQ(hex(broker.read()), hex(bytes({0x40, 2, 0, 6})));  // not 5
  EXPECT_EQ(sub.unacked(), 1u);

  // A connection loss: "second" (id 5) comes again on connection 2. Its old token is stale.
  const AckToken second_gen1 = inbox.all()[1].token;
  broker.drop();
  broker.accept(true);
  broker.read();  // SUBSCRIBE
  broker.send(bytes({0x90, 3, 0, 2, 1}));
  broker.send(publish_packet("t/a", "second", 1, 5, /*dup=*/true));
  broker.send(publish_packet("t/a", "fourth", 1, 8));
  ASSERT_TRUE(inbox.wait_for_count(5, 10s));
  EXPECT_EQ(inbox.all()[3].token.generation(), 2u);
  EXPECT_TRUE(inbox.all()[3].dup);
  EXPECT_EQ(sub.unacked(), 3u);  // stale "second" + the two new ones
  sub.ack(second_gen1);
  sub.ack(inbox.all()[4].token);
  EXPECT_EQ(hex(broker.read()), hex(bytes({0x40, 2, 0, 8})));  // the stale ack sent nothing
  EXPECT_EQ(sub.stats().stale_acks.value(), 1u);
  sub.ack(inbox.all()[3].token);
  EXPECT_EQ(hex(broker.read()), hex(bytes({0x40, 2, 0, 5})));
  ASSERT_TRUE(wait_for([&] { return sub.unacked() == 0; }, 10s, "nothing unacked"));
  AckToken none;
  sub.ack(none);  // nothing to acknowledge
  sub.stop();
  EXPECT_EQ(hex(broker.read()), hex(bytes({0xe0, 0})));
}

// The payload is read past; the message is delivered without it, so that ingest keeps a dead
// letter of it instead of losing it without a trace.
TEST(SubscriberPackets, AnOversizedMessageIsAcknowledgedCountedAndDeliveredWithoutPayload) {
  ScriptedBroker broker;
  Inbox inbox(true);
  auto o = scripted_options(broker.port(), {"t/+"});
  o.max_packet_bytes = 1000;
  Subscriber sub(o, inbox.handler());
  inbox.attach(sub);
  sub.start();
  broker.accept();
  broker.read();
  broker.send(bytes({0x90, 3, 0, 1, 1}));
  broker.send(publish_packet("t/big", std::string(200'000, 'b'), 1, 3) +
              publish_packet("t/small", "s", 1, 4));
  EXPECT_EQ(hex(broker.read()), hex(bytes({0x40, 2, 0, 3})));  // dropped, but acknowledged
  EXPECT_EQ(hex(broker.read()), hex(bytes({0x40, 2, 0, 4})));
  ASSERT_EQ(inbox.size(), 2u);
  EXPECT_EQ(inbox.all()[0].topic, "t/big");
  EXPECT_EQ(inbox.all()[0].payload, "");
  EXPECT_GT(inbox.all()[0].oversized_bytes, 200'000u);
  EXPECT_EQ(inbox.all()[1].topic, "t/small");
  EXPECT_EQ(inbox.all()[1].oversized_bytes, 0u);
  EXPECT_EQ(sub.stats().oversized_dropped.value(), 1u);
  EXPECT_EQ(sub.stats().connects.value(), 1u);  // the stream stayed in sync
  sub.stop();
}

TEST(SubscriberPackets, GarbageFromTheBrokerCostsTheConnectionNotTheProcess) {
  ScriptedBroker broker;
  Inbox inbox(true);
  Subscriber sub(scripted_options(broker.port(), {"t/+"}), inbox.handler());
  inbox.attach(sub);
  sub.start();
  broker.accept();
  broker.read();
  broker.send(bytes({0x90, 3, 0, 1, 1}));
  broker.send(bytes({0x40, 2, 0, 1}));  // PUBACK: we never publish
  EXPECT_TRUE(broker.closed_by_peer());
  broker.accept();
  broker.read();
  broker.send(bytes({0x90, 3, 0, 2, 1}));
  broker.send(bytes({0x36, 5, 0, 1, 't', 0, 1}));  // PUBLISH with QoS 3
  EXPECT_TRUE(broker.closed_by_peer());
  broker.accept();
  broker.read();
  broker.send(bytes({0x90, 3, 0, 3, 1}));
  broker.send(publish_packet("t/ok", "fine", 1, 1));
  ASSERT_TRUE(inbox.wait_for_count(1, 10s));
  EXPECT_EQ(hex(broker.read()), hex(bytes({0x40, 2, 0, 1})));
  EXPECT_EQ(sub.stats().connects.value(), 3u);
  EXPECT_EQ(sub.stats().disconnects.value(), 2u);
  sub.stop();
}

TEST(SubscriberPackets, AHandlerThatThrowsLeavesTheMessageUnacknowledged) {
  ScriptedBroker broker;
  std::atomic<int> calls{0};
  std::atomic<Subscriber*> self{nullptr};
  Subscriber sub(scripted_options(broker.port(), {"t/+"}), [&](const Message& m) {
    if (++calls == 1) throw std::runtime_error("boom");
    self.load()->ack(m.token);
  });
  self = &sub;
  sub.start();
  broker.accept();
  broker.read();
  broker.send(bytes({0x90, 3, 0, 1, 1}));
  broker.send(publish_packet("t/a", "1", 1, 1) + publish_packet("t/a", "2", 1, 2));
  EXPECT_EQ(hex(broker.read()), hex(bytes({0x40, 2, 0, 2})));
  EXPECT_EQ(sub.stats().handler_errors.value(), 1u);
  EXPECT_EQ(sub.unacked(), 0u);
  EXPECT_TRUE(sub.connected());
  sub.stop();
}

}  // namespace
}  // namespace ts::mqtt

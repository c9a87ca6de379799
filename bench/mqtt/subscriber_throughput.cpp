// Messages per second from Mosquitto into mqtt::Subscriber when acks wait for a durable batch,
// as teslasync-api's ingest does: a writer thread acks every `ack_every` messages or `window`
// after the oldest unacked one, whichever comes first. A measurement program, not a test and not
// a Google Benchmark: run it by hand and put the numbers in bench/mqtt/README.md.
//
// Each case starts its own Mosquitto (tests/support fixture) on 127.0.0.1 with the case's
// settings and creates the persistent session. "live": the subscriber runs while our publisher
// (dispatch::MqttClient, QoS 1, batches of 1,000) sends N messages as fast as the broker takes
// them; timed from the first publish to the last ack. "backlog": the N messages are queued while
// the subscriber is stopped (what the broker holds after an API restart), then it starts; timed
// from start() to the last ack. A case that stalls (the broker dropped messages) stops 3 s after
// the last message arrived and reports what it got.
//
//   build/bench/mqtt_subscriber_throughput [--messages N] [--seconds S] [--case NAME]
//
// Prints one JSON line per case.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/log.hpp"
#include "flood.hpp"
#include "mqtt/subscriber.hpp"
#include "support/mosquitto_broker.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace mqtt = ts::mqtt;

enum class Mode {
  Backlog,  // N messages queued for the session while the subscriber is away, then drained
  Live,     // the subscriber runs while our publisher sends N messages as fast as it can
};

struct Case {
  const char* name;
  Mode mode;
  std::vector<std::string> broker_config;
  std::size_t ack_every;          // 0: ack each message at once, on the subscriber thread
  std::chrono::milliseconds window;
};

/// The ingest writer's ack policy, on its own thread: a batch is "durable" when it holds
/// `ack_every` tokens or its oldest token is `window` old.
class BatchAcker {
 public:
  BatchAcker(mqtt::Subscriber*& sub, std::size_t ack_every, std::chrono::milliseconds window)
      : sub_(sub), ack_every_(ack_every), window_(window), thread_([this] { run(); }) {}
  ~BatchAcker() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void push(const mqtt::AckToken& t) {
    bool wake = false;
    {
      std::lock_guard lock(mutex_);
      // Wake the writer for a new batch (it starts the window) and for a full one.
      if (tokens_.empty()) oldest_ = Clock::now();
      tokens_.push_back(t);
      wake = tokens_.size() == 1 || tokens_.size() >= ack_every_;
    }
    if (wake) cv_.notify_one();
  }
  std::uint64_t batches() const { return batches_.load(); }

 private:
  void run() {
    std::vector<mqtt::AckToken> batch;
    std::unique_lock lock(mutex_);
    while (!stop_) {
      if (tokens_.empty()) {
        cv_.wait(lock);
        continue;
      }
      if (tokens_.size() < ack_every_ && Clock::now() < oldest_ + window_) {
        cv_.wait_until(lock, oldest_ + window_);
        continue;
      }
      batch.assign(tokens_.begin(), tokens_.end());
      tokens_.clear();
      lock.unlock();
      sub_->ack(batch);  // "the batch is durable"
      batches_.fetch_add(1);
      lock.lock();
    }
  }

  mqtt::Subscriber*& sub_;
  const std::size_t ack_every_;
  const std::chrono::milliseconds window_;
  std::mutex mutex_;  // guards tokens_, oldest_, stop_
  std::condition_variable cv_;
  std::vector<mqtt::AckToken> tokens_;
  Clock::time_point oldest_{};
  bool stop_ = false;
  std::atomic<std::uint64_t> batches_{0};
  std::thread thread_;
};

mqtt::SubscriberOptions subscriber_options(std::uint16_t port) {
  mqtt::SubscriberOptions o;
  o.port = port;
  o.client_id = "bench-ingest";
  o.filters = {"telemetry/+/v/+"};
  return o;
}

using ts::bench::wait_until;

// Queues `n` messages on the broker for the stopped subscriber's session.
void preload(std::uint16_t port, std::size_t n) {
  const std::string payload = R"({"value":1234.5,"ts":"2026-11-24T12:00:00.123456789Z"})";
  ts::bench::flood(port, n, [&](std::size_t i, std::string& topic, std::string& body) {
    topic = "telemetry/5YJ3E1EA7KF3" + std::to_string(10000 + i % 1000) + "/v/Field" +
            std::to_string(i % 50);
    body = payload;
  });
}

void run(const Case& c, std::size_t n, std::chrono::seconds limit) {
  ts::testsupport::MosquittoOptions bo;
  bo.extra_config = c.broker_config;
  ts::testsupport::MosquittoBroker broker(bo);
  {  // the persistent session and its subscription
    mqtt::Subscriber first(subscriber_options(broker.port()), [](const mqtt::Message&) {});
    first.start();
    if (!wait_until([&] { return first.subscribed(); }, 10s)) throw std::runtime_error("subscribe");
    first.stop();
  }
  if (c.mode == Mode::Backlog) preload(broker.port(), n);

  std::atomic<std::size_t> received{0};
  std::size_t peak_unacked = 0;  // subscriber thread only, read after stop()
  mqtt::Subscriber* sub_ptr = nullptr;
  BatchAcker acker(sub_ptr, c.ack_every == 0 ? 1 : c.ack_every, c.window);
  mqtt::Subscriber sub(subscriber_options(broker.port()), [&](const mqtt::Message& m) {
    received.fetch_add(1, std::memory_order_relaxed);
    peak_unacked = std::max(peak_unacked, sub_ptr->unacked());  // the broker's in-flight window
    if (c.ack_every == 0) {
      sub_ptr->ack(m.token);
    } else {
      acker.push(m.token);
    }
  });
  sub_ptr = &sub;
  auto t0 = Clock::now();
  sub.start();
  std::thread publisher;
  std::atomic<bool> published{c.mode == Mode::Backlog};
  if (c.mode == Mode::Live) {
    if (!wait_until([&] { return sub.subscribed(); }, 10s)) throw std::runtime_error("subscribe");
    t0 = Clock::now();
    publisher = std::thread([&] {
      preload(broker.port(), n);
      published = true;
    });
  }
  // Done when everything is acked; given up at the limit, or 3 s after the publisher finished
  // without a message arriving (the broker dropped the rest).
  bool all = false;
  std::size_t last = 0;
  auto last_progress = Clock::now();
  auto end = t0;
  while (Clock::now() < t0 + limit) {
    const std::size_t now_received = received.load();
    if (now_received == n && sub.unacked() == 0) {
      all = true;
      break;
    }
    if (now_received != last) {
      last = now_received;
      last_progress = Clock::now();
    } else if (published && Clock::now() - last_progress > 3s) {
      break;
    }
    std::this_thread::sleep_for(1ms);
  }
  end = all ? Clock::now() : last_progress;
  if (publisher.joinable()) publisher.join();
  const double seconds = std::chrono::duration<double>(end - t0).count();
  const std::size_t got = received.load();
  sub.stop();
  std::string config;
  for (const auto& l : c.broker_config) config += (config.empty() ? "" : "; ") + l;
  std::printf(
      "{\"case\":\"%s\",\"mode\":\"%s\",\"broker\":\"%s\",\"ack_every\":%zu,\"ack_window_ms\":%lld,"
      "\"queued\":%zu,\"received\":%zu,\"complete\":%s,\"seconds\":%.3f,\"msgs_per_s\":%.0f,"
      "\"ack_batches\":%llu,\"peak_unacked\":%zu}\n",
      c.name, c.mode == Mode::Live ? "live" : "backlog", config.c_str(), c.ack_every, static_cast<long long>(c.window.count()), n, got,
      all ? "true" : "false", seconds, static_cast<double>(got) / seconds,
      static_cast<unsigned long long>(acker.batches()), peak_unacked);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t n = 100'000;
  std::chrono::seconds limit{60};
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--messages" && i + 1 < argc) {
      n = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--seconds" && i + 1 < argc) {
      limit = std::chrono::seconds(std::strtoll(argv[++i], nullptr, 10));
    } else if (a == "--case" && i + 1 < argc) {
      only = argv[++i];
    } else {
      std::cerr << "usage: " << argv[0] << " [--messages N] [--seconds S] [--case NAME]\n";
      return 2;
    }
  }
  ts::log::configure({.level = "warn"});
  const std::string big_queue = "max_queued_messages 10000000";
  const std::vector<Case> cases = {
      {"live-defaults", Mode::Live, {}, 256, 100ms},
      {"live-inflight-20", Mode::Live, {big_queue}, 256, 100ms},
      {"live-inflight-1000", Mode::Live, {"max_inflight_messages 1000", big_queue}, 256, 100ms},
      {"live-unlimited", Mode::Live, {"max_inflight_messages 0", big_queue}, 256, 100ms},
      {"live-unlimited-ack-at-once", Mode::Live, {"max_inflight_messages 0", big_queue}, 0, 0ms},
      {"backlog-inflight-20", Mode::Backlog, {big_queue}, 256, 100ms},
      {"backlog-unlimited", Mode::Backlog, {"max_inflight_messages 0", big_queue}, 256, 100ms},
  };
  try {
    for (const Case& c : cases) {
      if (!only.empty() && only != c.name) continue;
      run(c, n, limit);
    }
  } catch (const std::exception& e) {
    std::cerr << "mqtt_subscriber_throughput: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

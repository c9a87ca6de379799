// Throughput of L2 against a real Redis: RedisMirror writes (first write of a fleet, updates,
// stale rejections), load_all (warm start) and PubSub messages between two instances.
//
// Start a Redis without persistence yourself, then point the bench at it; it uses the key prefix
// "tsbench:<pid>:" and deletes its keys at the end (they also expire after an hour):
//
//   redis-server --port 6390 --save '' --appendonly no --daemonize yes
//   build/bench/state_redis_bench --redis-url redis://127.0.0.1:6390 [--vehicles 10000]
//       [--rounds 3] [--messages 200000] [--payload 300]
//
// Signals are enqueued as 20-signal batches per vehicle (a V record's worth), and every round
// waits until the mirror is idle, so each enqueued signal is written once (no coalescing). The
// first write is enqueued before the mirror starts (enqueue cost and write rate apart); update
// and stale rounds build their signals while the mirror writes, as ingest would.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "core/metrics.hpp"
#include "state/redis/connection.hpp"
#include "state/redis/pubsub.hpp"
#include "state/redis/redis_mirror.hpp"
#include "workload.hpp"

namespace {

using namespace ts;
using namespace ts::state::redis;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

long long used_memory(Connection& c) {
  auto r = c.command({"INFO", "memory"});
  if (!r) return -1;
  const std::string_view text = reply_text(**r);
  const auto pos = text.find("used_memory:");
  if (pos == std::string_view::npos) return -1;
  return std::atoll(std::string(text.substr(pos + 12, 20)).c_str());
}

void enqueue_round(RedisMirror& mirror, int vehicles, int round) {
  for (int v = 0; v < vehicles; ++v) {
    auto all = bench_state::vehicle_signals(v, round);
    for (std::size_t k = 0; k < all.size(); k += 20) {
      mirror.enqueue(std::span<const signal::Signal>(all.data() + k, 20));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string url;
  int vehicles = 10'000, rounds = 3, messages = 200'000, payload_bytes = 300;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--redis-url")
      url = argv[i + 1];
    else if (flag == "--vehicles")
      vehicles = std::atoi(argv[i + 1]);
    else if (flag == "--rounds")
      rounds = std::atoi(argv[i + 1]);
    else if (flag == "--messages")
      messages = std::atoi(argv[i + 1]);
    else if (flag == "--payload")
      payload_bytes = std::atoi(argv[i + 1]);
  }
  if (url.empty()) {
    std::fprintf(stderr,
                 "usage: %s --redis-url redis://HOST:PORT [--vehicles N] [--rounds R] "
                 "[--messages M] [--payload BYTES]\n",
                 argv[0]);
    return 2;
  }
  const RedisConfig config = parse_redis_url(url);
  Connection admin(config);
  if (admin.connect()) {
    std::fprintf(stderr, "cannot connect to %s: %s\n", url.c_str(), admin.error_text().c_str());
    return 1;
  }
  const std::string prefix = fmt::format("tsbench:{}:", ::getpid());
  const double total = static_cast<double>(vehicles) * bench_state::kSignalsPerVehicle;

  core::MetricsRegistry metrics;
  RedisMirrorOptions options;
  options.key_prefix = prefix;
  options.ttl = std::chrono::hours(1);
  RedisMirror mirror(config, options, metrics);

  // The whole fleet is enqueued before the mirror starts, so that the enqueue cost (into the
  // coalescing pending set) and the write throughput are measured apart.
  std::vector<std::vector<signal::Signal>> fleet;
  for (int v = 0; v < vehicles; ++v) fleet.push_back(bench_state::vehicle_signals(v, 0));
  const long long memory_before = used_memory(admin);
  auto t = Clock::now();
  for (const auto& all : fleet) {
    for (std::size_t k = 0; k < all.size(); k += 20) {
      mirror.enqueue(std::span<const signal::Signal>(all.data() + k, 20));
    }
  }
  const double enqueue_s = seconds_since(t);
  fleet.clear();
  fleet.shrink_to_fit();
  t = Clock::now();
  mirror.start();
  if (!mirror.wait_idle(std::chrono::minutes(10))) return 1;
  double s = seconds_since(t);
  const long long memory_after = used_memory(admin);
  std::printf("enqueue:       %.0f ns/signal (20-signal batches into the pending set)\n",
              enqueue_s / total * 1e9);
  std::printf(
      "first write:   %d vehicles x %d signals: %.2f s, %.0f signals/s; Redis "
      "used_memory +%.1f MiB = %.0f B/vehicle\n",
      vehicles, bench_state::kSignalsPerVehicle, s, total / s,
      (memory_after - memory_before) / 1048576.0,
      static_cast<double>(memory_after - memory_before) / vehicles);

  for (int round = 1; round <= rounds; ++round) {
    t = Clock::now();
    enqueue_round(mirror, vehicles, round);
    if (!mirror.wait_idle(std::chrono::minutes(10))) return 1;
    s = seconds_since(t);
    std::printf("update round %d: %.2f s, %.0f signals/s\n", round, s, total / s);
  }

  const auto stale_before = mirror.stats().stale;
  t = Clock::now();
  enqueue_round(mirror, vehicles, 0);  // older than what Redis holds: every field rejected
  if (!mirror.wait_idle(std::chrono::minutes(10))) return 1;
  s = seconds_since(t);
  std::printf("stale round:   %.2f s, %.0f signals/s (%llu rejected)\n", s, total / s,
              static_cast<unsigned long long>(mirror.stats().stale - stale_before));
  mirror.stop();

  core::MetricsRegistry metrics2;
  RedisMirror reader(config, options, metrics2);
  t = Clock::now();
  auto loaded = reader.load_all();
  s = seconds_since(t);
  if (!loaded) return 1;
  std::printf("load_all:      %zu signals in %.2f s, %.0f signals/s\n", loaded->size(), s,
              static_cast<double>(loaded->size()) / s);
  loaded->clear();
  loaded->shrink_to_fit();

  // Pub/sub: A publishes, B counts.
  core::MetricsRegistry ma, mb;
  PubSubOptions po;
  po.max_queued = 100'000;
  PubSub a(config, po, ma), b(config, po, mb);
  const std::string channel = prefix + "bench";
  std::atomic<std::uint64_t> got{0};
  b.subscribe(channel, [&](std::string_view, std::string_view) { got.fetch_add(1); });
  a.start();
  b.start();
  const auto ready_by = Clock::now() + std::chrono::seconds(10);
  while ((!a.publisher_connected() || !b.subscribed()) && Clock::now() < ready_by) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const std::string payload(static_cast<std::size_t>(payload_bytes), 'x');
  std::uint64_t full = 0;
  t = Clock::now();
  for (int i = 0; i < messages;) {
    if (a.publish(channel, payload)) {
      ++i;
    } else {
      ++full;
      std::this_thread::yield();
    }
  }
  const auto done_by = Clock::now() + std::chrono::seconds(60);
  while (got.load() < static_cast<std::uint64_t>(messages) && Clock::now() < done_by) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  s = seconds_since(t);
  std::printf(
      "pub/sub:       %llu of %d messages of %d bytes received in %.2f s, %.0f msg/s "
      "(publisher queue full %llu times)\n",
      static_cast<unsigned long long>(got.load()), messages, payload_bytes, s,
      static_cast<double>(got.load()) / s, static_cast<unsigned long long>(full));
  a.stop();
  b.stop();

  // Clean up.
  std::string cursor = "0";
  do {
    auto r = admin.command({"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"});
    if (!r || (*r)->type != REDIS_REPLY_ARRAY || (*r)->elements != 2) break;
    cursor.assign((*r)->element[0]->str, (*r)->element[0]->len);
    const redisReply& keys = *(*r)->element[1];
    for (std::size_t i = 0; i < keys.elements; ++i) {
      admin.append({"UNLINK", std::string_view(keys.element[i]->str, keys.element[i]->len)});
    }
    for (std::size_t i = 0; i < keys.elements; ++i) admin.read_reply();
  } while (cursor != "0");
  return 0;
}

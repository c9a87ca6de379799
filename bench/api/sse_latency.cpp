// Vehicle frame -> SSE event latency (issue 3 "Benchmarks"): an SSE client of teslasync-api that
// times every `signal_change` against the event time it carries. vehicle-sim stamps each record
// with its wall-clock send time (µs) and telemetry-server publishes it in the event-time
// envelope, so now - ts is the whole path: vehicle -> telemetry-server -> Mosquitto ->
// teslasync-api -> browser. Same machine, same clock. bench/load/api.sh runs it; not a test.
//
//   build/bench/api_sse_latency --port P --token T [--seconds S] [--warmup W] [--path PATH]
//
// Prints one JSON line: events timed, p50/p90/p99/p999/max in ms, events/s, and p50/p99 of the
// two halves: vehicle -> the API's MQTT receive (the event's received_at - ts) and the API's
// receive -> this client.
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/log.hpp"
#include "signal/signal.hpp"
#include "support/http_client.hpp"

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 0;
  std::string token, path = "/api/v1/events";
  double seconds = 60, warmup = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--port") port = static_cast<std::uint16_t>(std::stoul(v));
    else if (a == "--token") token = v;
    else if (a == "--seconds") seconds = std::stod(v);
    else if (a == "--warmup") warmup = std::stod(v);
    else if (a == "--path") path = v;
    else port = 0, i = argc;
  }
  if (port == 0 || token.empty() || argc % 2 == 0) {
    std::cerr << "usage: " << argv[0]
              << " --port P --token T [--seconds S] [--warmup W] [--path /api/v1/events]\n";
    return 2;
  }
  ts::log::configure({.level = "warn"});

  std::mutex mutex;  // guards the three vectors
  // Whole path (now - ts), and its two halves: vehicle -> the API's MQTT receive (received_at -
  // ts) and the API's receive -> this client (now - received_at).
  std::vector<std::int64_t> latencies_us, to_api_us, in_api_us;
  latencies_us.reserve(4'000'000);
  to_api_us.reserve(4'000'000);
  in_api_us.reserve(4'000'000);
  std::atomic<std::uint64_t> events{0}, undecodable{0};
  std::atomic<bool> measuring{false};
  ts::testsupport::SseClient sse(
      port, path, {{"Authorization", "Bearer " + token}}, [&](ts::testsupport::SseEvent&& e) {
        if (e.event != "signal_change") return;
        const std::int64_t received = now_us();
        events.fetch_add(1, std::memory_order_relaxed);
        if (!measuring.load(std::memory_order_relaxed)) return;
        boost::system::error_code ec;
        auto doc = boost::json::parse(e.data, ec);
        const auto* ts = ec || !doc.is_object() ? nullptr : doc.as_object().if_contains("ts");
        const auto* rx = ts ? doc.as_object().if_contains("received_at") : nullptr;
        auto at = ts && ts->is_string() ? ts::signal::parse_time(ts->as_string()) : std::nullopt;
        auto api_at = rx && rx->is_string() ? ts::signal::parse_time(rx->as_string()) : std::nullopt;
        if (!at || !api_at) {
          undecodable.fetch_add(1);
          return;
        }
        const std::int64_t sent = at.value_or(0), ingested = api_at.value_or(0);
        std::lock_guard lock(mutex);
        latencies_us.push_back(received - sent);
        to_api_us.push_back(ingested - sent);
        in_api_us.push_back(received - ingested);
      });
  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
  if (sse.closed()) {
    std::cerr << "the stream closed (HTTP " << sse.status() << ")\n";
    return 1;
  }
  const std::uint64_t events_at_warmup = events.load();
  measuring = true;
  const auto measured_from = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds - warmup));
  measuring = false;
  const double window = std::chrono::duration<double>(Clock::now() - measured_from).count();
  const bool closed = sse.closed();

  std::vector<std::int64_t> l, to_api, in_api;
  {
    std::lock_guard lock(mutex);
    l = latencies_us;
    to_api = to_api_us;
    in_api = in_api_us;
  }
  for (auto* v : {&l, &to_api, &in_api}) std::sort(v->begin(), v->end());
  auto pct_of = [](const std::vector<std::int64_t>& v, double q) {
    if (v.empty()) return 0.0;
    const auto k = std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())));
    return static_cast<double>(v[k]) / 1000.0;
  };
  auto pct = [&](double q) { return pct_of(l, q); };
  std::printf(
      "{\"events\":%zu,\"events_per_s\":%.0f,\"undecodable\":%llu,\"stream_closed\":%s,"
      "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
      "\"to_api_p50_ms\":%.3f,\"to_api_p99_ms\":%.3f,\"in_api_p50_ms\":%.3f,\"in_api_p99_ms\":%.3f,"
      "\"seconds\":%.1f,\"warmup_s\":%.1f}\n",
      l.size(), static_cast<double>(events.load() - events_at_warmup) / window,
      static_cast<unsigned long long>(undecodable.load()), closed ? "true" : "false", pct(0.50),
      pct(0.90), pct(0.99), pct(0.999), l.empty() ? 0.0 : static_cast<double>(l.back()) / 1000.0,
      pct_of(to_api, 0.5), pct_of(to_api, 0.99), pct_of(in_api, 0.5), pct_of(in_api, 0.99),
      std::chrono::duration<double>(Clock::now() - start).count(), warmup);
  return l.empty() || closed ? 1 : 0;
}

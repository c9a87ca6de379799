// The EventHub's own cost, without sockets: encoding an event, publish() as the ingest thread pays
// it, and publish + per-shard fan-out to N in-memory subscribers (what a shard does before the
// writes). Google Benchmark; see bench/http/README.md.
#include <benchmark/benchmark.h>

#include <boost/asio/io_context.hpp>

#include <string>
#include <vector>

#include "core/metrics.hpp"
#include "http/sse.hpp"

namespace {

using ts::http::EncodedEventPtr;
using ts::http::Event;
using ts::http::EventHub;

std::string payload(std::size_t n) {
  std::string s = R"({"vin":"5YJ3E1EA7KF000001","field":"VehicleSpeed","value":)";
  s.resize(n, '1');
  return s;
}

void BM_EncodeEvent(benchmark::State& state) {
  const Event e{"signal_change", payload(static_cast<std::size_t>(state.range(0))), "5YJ3E1EA7KF000001"};
  for (auto _ : state) benchmark::DoNotOptimize(ts::http::encode_event(e, 123456789));
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_EncodeEvent)->Arg(200)->Arg(2000);

// publish() with no stream attached: encode, id, replay ring.
void BM_PublishNoStreams(benchmark::State& state) {
  ts::core::MetricsRegistry metrics;
  EventHub hub(metrics, {.first_id = 1});
  const std::string data = payload(200);
  for (auto _ : state) hub.publish(Event{"signal_change", data, "5YJ3E1EA7KF000001"});
}
BENCHMARK(BM_PublishNoStreams);

struct Counting final : EventHub::Subscriber {
  std::uint64_t n = 0;
  bool deliver(const EncodedEventPtr&) override {
    ++n;
    return false;
  }
  void flush() override {}
};

// publish() plus the shard's drain to `subscribers` all-event subscribers on one io_context
// (polled every 64 events, as the shard would run it): the hub's cost per event and per delivery.
void BM_PublishAndFanOut(benchmark::State& state) {
  ts::core::MetricsRegistry metrics;
  EventHub hub(metrics, {.first_id = 1});
  boost::asio::io_context io;
  std::vector<Counting> subs(static_cast<std::size_t>(state.range(0)));
  for (auto& s : subs) hub.attach(s, io.get_executor(), "", std::nullopt);
  const std::string data = payload(200);
  std::uint64_t i = 0;
  for (auto _ : state) {
    hub.publish(Event{"signal_change", data, ""});
    if (++i % 64 == 0) {
      io.restart();  // an io_context that ran out of work stays stopped until restarted
      io.poll();
    }
  }
  io.restart();
  io.poll();
  for (const auto& s : subs)
    if (s.n != static_cast<std::uint64_t>(state.iterations())) state.SkipWithError("a subscriber missed events");
  state.counters["deliveries/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * static_cast<double>(subs.size()), benchmark::Counter::kIsRate);
  for (auto& s : subs) hub.detach(s, io.get_executor(), "");
}
BENCHMARK(BM_PublishAndFanOut)->Arg(1)->Arg(1000);

}  // namespace

BENCHMARK_MAIN();

// Throughput of L1 (state::Store): applying updates (one at a time, and as 20-signal batches
// like a V record), rejecting replays, and reading a vehicle's snapshot, with 10,000 vehicles of
// 100 signals each held (bench/state/workload.hpp). With 2 threads each thread updates its own
// half of the fleet, so they meet only on shard locks. BM_NaiveApply is the map-of-maps baseline
// under one mutex.
//
//   build/bench/state_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
// One item = one signal applied (or one snapshot for BM_Snapshot).
#include <benchmark/benchmark.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "state/store.hpp"
#include "workload.hpp"

namespace {

using namespace ts;
constexpr int kVehicles = 10'000;
constexpr int kRing = 20'000;  // signals pre-built per thread (strings built once)

/// A store filled with the whole fleet at round 0, shared by every benchmark of one shard count.
state::Store& filled(int shards) {
  static std::unordered_map<int, std::unique_ptr<state::Store>> stores;
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  auto& s = stores[shards];
  if (!s) {
    s = std::make_unique<state::Store>(static_cast<std::size_t>(shards));
    for (int v = 0; v < kVehicles; ++v) s->apply_batch(bench_state::vehicle_signals(v, 0));
  }
  return *s;
}

/// A shift of event times larger than any before it (stores outlive a benchmark run), so that
/// every apply stores (Applied::Newer).
signal::Timestamp next_bump() {
  static std::atomic<signal::Timestamp> passes{0};
  return (passes.fetch_add(1) + 1) * 1'000'000'000LL;
}

/// Signals of this thread's half of the fleet, spread over vehicles and signal names.
std::vector<signal::Signal> ring(int thread, int threads, int round = 1) {
  std::vector<signal::Signal> out;
  out.reserve(kRing);
  for (int k = 0; static_cast<int>(out.size()) < kRing; ++k) {
    const int v = (k * 7919) % kVehicles;
    if (v % threads != thread) continue;
    out.push_back(bench_state::make(v, (k * 31) % bench_state::kSignalsPerVehicle, round));
  }
  return out;
}

void BM_Apply(benchmark::State& st) {
  state::Store& store = filled(static_cast<int>(st.range(0)));
  auto signals = ring(st.thread_index(), st.threads());
  signal::Timestamp bump = next_bump();
  std::size_t i = 0;
  for (auto _ : st) {
    if (i == signals.size()) {
      i = 0;
      bump = next_bump();
    }
    signal::Signal& s = signals[i++];
    s.ts += bump;
    benchmark::DoNotOptimize(store.apply(s));
    s.ts -= bump;
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_Apply)->Arg(16)->Arg(1)->Threads(1)->Threads(2)->UseRealTime();

void BM_ApplyBatch20(benchmark::State& st) {
  state::Store& store = filled(16);
  std::vector<std::vector<signal::Signal>> batches;
  for (int v = st.thread_index(); v < 2000; v += st.threads()) {
    auto all = bench_state::vehicle_signals(v, 1);
    batches.emplace_back(all.begin() + (v % 5) * 20, all.begin() + (v % 5) * 20 + 20);
  }
  signal::Timestamp bump = 0;
  auto shift = [&] {
    const signal::Timestamp next = next_bump();
    for (auto& b : batches) {
      for (auto& s : b) s.ts += next - bump;
    }
    bump = next;
  };
  shift();
  std::size_t i = 0;
  for (auto _ : st) {
    if (i == batches.size()) {
      st.PauseTiming();
      i = 0;
      shift();
      st.ResumeTiming();
    }
    benchmark::DoNotOptimize(store.apply_batch(batches[i++]));
  }
  st.SetItemsProcessed(st.iterations() * 20);
}
BENCHMARK(BM_ApplyBatch20)->Threads(1)->Threads(2)->UseRealTime();

void BM_ApplyReplay(benchmark::State& st) {
  state::Store& store = filled(16);
  auto signals = ring(0, 1, 0);
  for (auto& s : signals) s.ts -= 1;  // older than the fill (round 0): rejected
  std::size_t i = 0;
  for (auto _ : st) {
    if (i == signals.size()) i = 0;
    benchmark::DoNotOptimize(store.apply(signals[i++]));
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_ApplyReplay);

void BM_Snapshot(benchmark::State& st) {
  state::Store& store = filled(16);
  int v = 0;
  for (auto _ : st) {
    benchmark::DoNotOptimize(store.snapshot(bench_state::vin(v)));
    v = (v + 1) % kVehicles;
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_Snapshot);

/// The baseline: map of maps with full entries under one mutex.
class NaiveStore {
 public:
  bool apply(const signal::Signal& s) {
    std::lock_guard lock(mutex_);
    state::Entry& e = vehicles_[s.vin][s.name];
    if (s.ts < e.ts) return false;
    e = {s.value, s.ts, s.received_at, s.source};
    return true;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::unordered_map<std::string, state::Entry>> vehicles_;
};

void BM_NaiveApply(benchmark::State& st) {
  static NaiveStore* store = [] {
    auto* s = new NaiveStore;
    for (int v = 0; v < kVehicles; ++v) {
      for (const auto& sig : bench_state::vehicle_signals(v, 0)) s->apply(sig);
    }
    return s;
  }();
  auto signals = ring(st.thread_index(), st.threads());
  signal::Timestamp bump = next_bump();
  std::size_t i = 0;
  for (auto _ : st) {
    if (i == signals.size()) {
      i = 0;
      bump = next_bump();
    }
    signal::Signal& s = signals[i++];
    s.ts += bump;
    benchmark::DoNotOptimize(store->apply(s));
    s.ts -= bump;
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_NaiveApply)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();

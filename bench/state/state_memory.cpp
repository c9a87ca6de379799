// Memory of L1 (state::Store) holding the latest state of a fleet: bytes per vehicle with 100
// signals each (bench/state/workload.hpp), against a straightforward map-of-maps baseline.
//
// Not a timed benchmark. Each variant runs in a forked child so that their heaps do not mix;
// the child fills the store to N/2 and N vehicles and reports, after malloc_trim(0):
//   heap  bytes malloc has handed out and not got back (mallinfo2: uordblks + hblkhd)
//   rss   VmRSS from /proc/self/statm
// Per vehicle = (at N - at N/2) / (N/2), so one-time costs drop out. Then every vehicle gets
// 5 more rounds of updates of all its signals (texts replaced, enums re-interned), and the heap
// is reported again: it must not grow.
//
//   state_memory [--vehicles N] [--variant store|store1|naive|all]
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "state/store.hpp"
#include "workload.hpp"

namespace {

using namespace ts;

struct Usage {
  double heap = 0;
  double rss = 0;
};

Usage usage() {
  malloc_trim(0);
  const struct mallinfo2 mi = mallinfo2();
  long pages = 0, resident = 0;
  std::ifstream statm("/proc/self/statm");
  statm >> pages >> resident;
  return {static_cast<double>(mi.uordblks + mi.hblkhd),
          static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE))};
}

/// What a first implementation would do: map of maps, full Value per entry, under one mutex.
class NaiveStore {
 public:
  void apply(const signal::Signal& s) {
    std::lock_guard lock(mutex_);
    state::Entry& e = vehicles_[s.vin][s.name];
    if (s.ts >= e.ts) e = {s.value, s.ts, s.received_at, s.source};
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::unordered_map<std::string, state::Entry>> vehicles_;
};

template <class Store>
void fill(Store& store, int from, int to, int round) {
  for (int v = from; v < to; ++v) {
    for (const auto& s : bench_state::vehicle_signals(v, round)) store.apply(s);
  }
}

template <class Store>
void measure(const char* name, Store& store, int n) {
  const Usage zero = usage();
  fill(store, 0, n / 2, 0);
  const Usage half = usage();
  fill(store, n / 2, n, 0);
  const Usage full = usage();
  for (int round = 1; round <= 5; ++round) fill(store, 0, n, round);
  const Usage updated = usage();
  const double per_vehicle_heap = (full.heap - half.heap) / (n / 2);
  const double per_vehicle_rss = (full.rss - half.rss) / (n / 2);
  std::printf(
      "%-8s vehicles=%d  heap/vehicle=%.0f B (%.1f B/signal)  rss/vehicle=%.0f B  "
      "total heap=%.1f MiB  rss=%.1f MiB  heap after 5 update rounds=%.1f MiB\n",
      name, n, per_vehicle_heap, per_vehicle_heap / bench_state::kSignalsPerVehicle,
      per_vehicle_rss, (full.heap - zero.heap) / 1048576.0, full.rss / 1048576.0,
      (updated.heap - zero.heap) / 1048576.0);
  std::fflush(stdout);
}

void run_variant(const std::string& variant, int n) {
  if (variant == "store") {
    state::Store store;  // 16 shards, as in teslasync-api
    measure("store", store, n);
  } else if (variant == "store1") {
    state::Store store(1);
    measure("store1", store, n);
  } else if (variant == "naive") {
    NaiveStore store;
    measure("naive", store, n);
  } else {
    std::fprintf(stderr, "unknown variant %s\n", variant.c_str());
    std::exit(2);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int n = 10'000;
  std::string variant = "all";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--vehicles") == 0 && i + 1 < argc) {
      n = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--variant") == 0 && i + 1 < argc) {
      variant = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--vehicles N] [--variant store|store1|naive|all]\n",
                   argv[0]);
      return 2;
    }
  }
  if (n < 2) n = 2;
  for (const char* v : {"store", "store1", "naive"}) {
    if (variant != "all" && variant != v) continue;
    const pid_t pid = fork();
    if (pid == 0) {
      run_variant(v, n);
      std::_Exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  }
  return 0;
}

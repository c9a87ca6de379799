#include "state/store.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace ts::state {
namespace {

using signal::Signal;
using signal::Source;
using signal::Value;

Signal sig(std::string vin, std::string name, signal::Timestamp ts, Value v,
           signal::Timestamp received_at = 0, Source source = Source::Stream) {
  return Signal{.vin = std::move(vin),
                .name = std::move(name),
                .ts = ts,
                .received_at = received_at == 0 ? ts + 5 : received_at,
                .source = source,
                .value = std::move(v)};
}

/// One value of every kind, with texts that take each representation (inline, heap, interned).
std::vector<Value> every_kind() {
  return {Value::invalid(),
          Value::boolean(true),
          Value::boolean(false),
          Value::int64(-42),
          Value::int64(std::numeric_limits<std::int64_t>::max()),
          Value::float64(61.25),
          Value::float64(-0.0),
          Value::string(""),
          Value::string("short"),
          Value::string("exactly 16 bytes"),
          Value::string("a software version string longer than sixteen bytes"),
          Value::enumeration("ShiftStateD"),
          Value::enumeration("DetailedChargeStateCharging"),
          Value::location(37.4219999, -122.0840575),
          Value::doors(R"({"DriverFront":true,"DriverRear":false,"PassengerFront":false,)"
                       R"("PassengerRear":false,"TrunkFront":false,"TrunkRear":false})"),
          Value::tires(R"({"front_left":true})"),
          Value::tires("{}"),
          Value::time_of_day("7:30:00")};
}

TEST(Store, NewSignalIsNewerAndReadable) {
  Store store;
  EXPECT_EQ(store.apply(sig("VIN1", "VehicleSpeed", 1000, Value::float64(12.5))), Applied::Newer);
  auto e = store.get("VIN1", "VehicleSpeed");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->value, Value::float64(12.5));
  EXPECT_EQ(e->ts, 1000);
  EXPECT_EQ(e->received_at, 1005);
  EXPECT_EQ(e->source, Source::Stream);
  EXPECT_FALSE(store.get("VIN1", "Odometer"));
  EXPECT_FALSE(store.get("VIN2", "VehicleSpeed"));
  EXPECT_EQ(store.vehicle_count(), 1u);
  EXPECT_EQ(store.signal_count(), 1u);
}

TEST(Store, NewerEventTimeReplaces) {
  Store store;
  store.apply(sig("VIN1", "Soc", 1000, Value::float64(80)));
  EXPECT_EQ(store.apply(sig("VIN1", "Soc", 2000, Value::float64(79), 2001, Source::Poll)),
            Applied::Newer);
  auto e = store.get("VIN1", "Soc");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->value, Value::float64(79));
  EXPECT_EQ(e->ts, 2000);
  EXPECT_EQ(e->received_at, 2001);
  EXPECT_EQ(e->source, Source::Poll);
  EXPECT_EQ(store.signal_count(), 1u);
}

TEST(Store, OutOfOrderOlderEventNeverOverwrites) {
  Store store;
  store.apply(sig("VIN1", "Gear", 2000, Value::enumeration("ShiftStateD")));
  // Arrives later (received after), but happened before: rejected.
  EXPECT_EQ(store.apply(sig("VIN1", "Gear", 1500, Value::enumeration("ShiftStateP"), 9999)),
            Applied::Older);
  auto e = store.get("VIN1", "Gear");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->value, Value::enumeration("ShiftStateD"));
  EXPECT_EQ(e->ts, 2000);
  EXPECT_EQ(e->received_at, 2005);
}

TEST(Store, ReplayOfTheSameMessageIsSame) {
  Store store;
  const Signal s = sig("VIN1", "Odometer", 1000, Value::float64(12345.6));
  EXPECT_EQ(store.apply(s), Applied::Newer);
  Signal replay = s;
  replay.received_at += 60'000'000;  // redelivered a minute later
  EXPECT_EQ(store.apply(replay), Applied::Same);
  EXPECT_EQ(store.get("VIN1", "Odometer")->received_at, s.received_at);  // nothing changed
  // A NaN replayed is the same value too (compared bit for bit).
  const Signal nan = sig("VIN1", "Nan", 1000, Value::float64(std::nan("")));
  EXPECT_EQ(store.apply(nan), Applied::Newer);
  EXPECT_EQ(store.apply(nan), Applied::Same);
}

// The first value stored for an event time wins, as in signal_log (key (series, ts), ON CONFLICT
// DO NOTHING): L1, Redis and signal_log agree after a restart. Each conflict is counted.
TEST(Store, SameEventTimeDifferentValueKeepsTheFirst) {
  Store store;
  store.apply(sig("VIN1", "Locked", 1000, Value::boolean(false), 1100));
  EXPECT_EQ(store.apply(sig("VIN1", "Locked", 1000, Value::boolean(true), 1200)), Applied::Conflict);
  EXPECT_EQ(store.apply(sig("VIN1", "Locked", 1000, Value::boolean(true), 1050)), Applied::Conflict);
  EXPECT_EQ(store.get("VIN1", "Locked")->value, Value::boolean(false));
  EXPECT_EQ(store.get("VIN1", "Locked")->received_at, 1100);
  EXPECT_EQ(store.apply(sig("VIN1", "Locked", 1000, Value::boolean(false), 1300)), Applied::Same);
  EXPECT_EQ(store.clock("VIN1").same_time_conflicts, 2u);
  // A newer event time still replaces.
  EXPECT_EQ(store.apply(sig("VIN1", "Locked", 1001, Value::boolean(true), 1300)), Applied::Newer);
}

// An event time far ahead of its receive time (a clock glitch, a forged time) never becomes the
// live value: a value stamped 2099 must not hide the current ones until 2099.
TEST(Store, EventTimeTooFarAheadNeverBecomesLatest) {
  using namespace std::chrono;
  constexpr signal::Timestamp kNow = 1'796'000'000'000'000;       // 2026-12
  constexpr signal::Timestamp k2099 = 4'070'908'800'000'000;      // 2099-01-01
  core::MetricsRegistry metrics;
  Store store(metrics);
  EXPECT_EQ(store.apply(sig("VIN1", "VehicleSpeed", k2099, Value::float64(10), kNow)), Applied::Future);
  EXPECT_FALSE(store.get("VIN1", "VehicleSpeed"));
  EXPECT_EQ(store.apply(sig("VIN1", "VehicleSpeed", kNow, Value::float64(55), kNow + 1)), Applied::Newer);
  EXPECT_EQ(store.get("VIN1", "VehicleSpeed")->value, Value::float64(55));
  const auto clock = store.clock("VIN1");
  EXPECT_EQ(clock.future_signals, 1u);
  EXPECT_EQ(clock.last_future_ts, k2099);
  EXPECT_EQ(clock.last_future_received_at, kNow);
  // Within the skew (default 5 minutes) a time ahead is fine: clocks differ a little.
  const auto ahead = duration_cast<microseconds>(minutes(4)).count();
  EXPECT_EQ(store.apply(sig("VIN1", "Odometer", kNow + ahead, Value::float64(1), kNow)), Applied::Newer);
  const auto too_far = duration_cast<microseconds>(minutes(6)).count();
  EXPECT_EQ(store.apply(sig("VIN1", "Soc", kNow + too_far, Value::float64(1), kNow)), Applied::Future);
  // load() (warm-up) follows the same rule.
  const std::vector<Signal> warm = {sig("VIN2", "Soc", k2099, Value::float64(9), kNow)};
  EXPECT_EQ(store.load(warm).future, 1u);
  EXPECT_FALSE(store.get("VIN2", "Soc"));
  EXPECT_NE(metrics.render_prometheus().find(R"(teslasync_state_apply_total{result="future"} 2)"),
            std::string::npos)
      << metrics.render_prometheus();
  // The bound is configurable.
  Store strict(4, seconds(1));
  EXPECT_EQ(strict.apply(sig("VIN1", "Soc", kNow + 2'000'000, Value::float64(1), kNow)), Applied::Future);
}

TEST(Store, EveryKindAndRepresentationRoundTrips) {
  Store store;
  const auto values = every_kind();
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(store.apply(sig("VIN1", "F" + std::to_string(i), 100, values[i])), Applied::Newer);
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    auto e = store.get("VIN1", "F" + std::to_string(i));
    ASSERT_TRUE(e) << i;
    EXPECT_EQ(e->value, values[i]) << i;
  }
  // One slot cycling through every representation (heap text freed, interned, inline, …).
  for (std::size_t round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      const signal::Timestamp ts = 1000 + static_cast<signal::Timestamp>(round * 100 + i);
      ASSERT_EQ(store.apply(sig("VIN1", "Cycle", ts, values[i])), Applied::Newer);
      EXPECT_EQ(store.get("VIN1", "Cycle")->value, values[i]) << i;
      EXPECT_EQ(store.apply(sig("VIN1", "Cycle", ts, values[i])), Applied::Same) << i;
    }
  }
}

TEST(Store, ValuesBeyondTheInternBoundAreStillExact) {
  Store store(1);  // one shard: every value lands in the same intern table
  for (int i = 0; i < 10'000; ++i) {
    store.apply(sig("VIN" + std::to_string(i % 7), "E" + std::to_string(i % 3), 1000 + i,
                    Value::enumeration("EnumValueNumber" + std::to_string(i))));
  }
  for (int vin = 0; vin < 7; ++vin) {
    for (int e = 0; e < 3; ++e) {
      // The last i with i % 7 == vin and i % 3 == e.
      int last = -1;
      for (int i = 0; i < 10'000; ++i) {
        if (i % 7 == vin && i % 3 == e) last = i;
      }
      auto got = store.get("VIN" + std::to_string(vin), "E" + std::to_string(e));
      ASSERT_TRUE(got);
      EXPECT_EQ(got->value, Value::enumeration("EnumValueNumber" + std::to_string(last)));
    }
  }
}

TEST(Store, SnapshotIsSortedByName) {
  Store store;
  for (const char* name : {"VehicleSpeed", "Gear", "Soc", "BatteryLevel", "Location"}) {
    store.apply(sig("VIN1", name, 1000, Value::int64(1)));
  }
  store.apply(sig("VIN2", "Other", 1000, Value::int64(2)));
  const auto snap = store.snapshot("VIN1");
  std::vector<std::string> names;
  for (const auto& [name, entry] : snap) {
    names.push_back(name);
    EXPECT_EQ(entry.value, Value::int64(1));
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"BatteryLevel", "Gear", "Location", "Soc", "VehicleSpeed"}));
  EXPECT_TRUE(store.snapshot("NOPE").empty());
}

TEST(Store, KeysOfAnyLength) {
  Store store;
  const std::string long_vin(100, 'V');  // beyond the inline key storage
  for (const std::string& vin : {std::string(), std::string("X"), long_vin}) {
    for (const std::string& name : {std::string(), std::string(64, 'N')}) {
      EXPECT_EQ(store.apply(sig(vin, name, 10, Value::int64(1))), Applied::Newer);
      EXPECT_EQ(store.apply(sig(vin, name, 10, Value::int64(1))), Applied::Same);
      ASSERT_TRUE(store.get(vin, name));
    }
  }
  EXPECT_EQ(store.vins(), (std::vector<std::string>{"", long_vin, "X"}));
  EXPECT_EQ(store.snapshot(long_vin).size(), 2u);
  std::size_t drained = 0;
  while (!store.drain(1).empty()) ++drained;
  EXPECT_EQ(drained, 3u);
}

TEST(Store, VinsAreSortedAndCounted) {
  Store store;
  store.apply(sig("VIN3", "A", 1, Value::int64(1)));
  store.apply(sig("VIN1", "A", 1, Value::int64(1)));
  store.apply(sig("VIN2", "A", 1, Value::int64(1)));
  store.apply(sig("VIN2", "B", 1, Value::int64(1)));
  EXPECT_EQ(store.vins(), (std::vector<std::string>{"VIN1", "VIN2", "VIN3"}));
  EXPECT_EQ(store.vehicle_count(), 3u);
  EXPECT_EQ(store.signal_count(), 4u);
}

TEST(Store, LastEventAndLastReceivedBySource) {
  Store store;
  EXPECT_FALSE(store.last_event("VIN1"));
  EXPECT_FALSE(store.last_received("VIN1"));
  store.apply(sig("VIN1", "A", 1000, Value::int64(1), 5000, Source::Stream));
  store.apply(sig("VIN1", "B", 3000, Value::int64(1), 6000, Source::Poll));
  // An older event received last still counts as "heard from".
  store.apply(sig("VIN1", "A", 500, Value::int64(2), 7000, Source::Stream));
  EXPECT_EQ(store.last_event("VIN1"), 3000);
  EXPECT_EQ(store.last_received("VIN1"), 7000);
  EXPECT_EQ(store.last_received("VIN1", Source::Stream), 7000);
  EXPECT_EQ(store.last_received("VIN1", Source::Poll), 6000);
  store.apply(sig("VIN2", "A", 1000, Value::int64(1), 5000, Source::Poll));
  EXPECT_FALSE(store.last_received("VIN2", Source::Stream));
}

TEST(Store, ApplyBatchReportsEverySignalInOrder) {
  Store store;
  store.apply(sig("VIN1", "Soc", 2000, Value::float64(50)));
  const std::vector<Signal> batch = {
      sig("VIN1", "Soc", 1000, Value::float64(60)),           // older
      sig("VIN1", "Speed", 1000, Value::float64(10)),         // new
      sig("VIN2", "Soc", 1000, Value::float64(70)),           // new vehicle
      sig("VIN1", "Soc", 2000, Value::float64(50)),           // same
      sig("VIN1", "Speed", 1100, Value::float64(11)),         // newer, same batch
      sig("VIN2", "Soc", 900, Value::float64(71)),            // older, same batch
      sig("VIN3", "Soc", 1000, Value::float64(72)),           // new vehicle
      sig("VIN1", "Speed", 1100, Value::float64(11), 99999),  // same (replay)
  };
  const auto result = store.apply_batch(batch);
  EXPECT_EQ(result,
            (std::vector<Applied>{Applied::Older, Applied::Newer, Applied::Newer, Applied::Same,
                                  Applied::Newer, Applied::Older, Applied::Newer, Applied::Same}));
  EXPECT_EQ(store.get("VIN1", "Speed")->value, Value::float64(11));
  EXPECT_EQ(store.get("VIN2", "Soc")->value, Value::float64(70));
  EXPECT_EQ(store.vehicle_count(), 3u);
  EXPECT_EQ(store.signal_count(), 4u);
  EXPECT_TRUE(store.apply_batch({}).empty());
}

TEST(Store, WarmLoadUsesTheSameRuleAndIsNotCountedAsUpdates) {
  core::MetricsRegistry metrics;
  Store store(metrics);
  store.apply(sig("VIN1", "Soc", 2000, Value::float64(50)));  // live data before warm-up ends
  const std::vector<Signal> warm = {sig("VIN1", "Soc", 1000, Value::float64(60)),
                                    sig("VIN1", "Odometer", 1000, Value::float64(100)),
                                    sig("VIN2", "Soc", 1000, Value::float64(70)),
                                    sig("VIN2", "Soc", 1000, Value::float64(70))};
  const LoadResult r = store.load(warm);
  EXPECT_EQ(r.newer, 2u);
  EXPECT_EQ(r.same, 1u);
  EXPECT_EQ(r.older, 1u);
  EXPECT_EQ(store.get("VIN1", "Soc")->value, Value::float64(50));
  EXPECT_EQ(store.get("VIN1", "Odometer")->value, Value::float64(100));
  EXPECT_EQ(store.last_received("VIN2"), 1005);  // from the loaded entries
  const std::string text = metrics.render_prometheus();
  EXPECT_NE(text.find("teslasync_state_vehicles 2"), std::string::npos) << text;
  EXPECT_NE(text.find("teslasync_state_signals 3"), std::string::npos) << text;
  EXPECT_NE(text.find("teslasync_state_apply_total{result=\"newer\"} 1"), std::string::npos)
      << text;
}

TEST(Store, MetricsCountEveryResult) {
  core::MetricsRegistry metrics;
  Store store(metrics);
  store.apply(sig("VIN1", "A", 2, Value::int64(1)));
  store.apply(sig("VIN1", "A", 2, Value::int64(1)));
  store.apply(sig("VIN1", "A", 1, Value::int64(1)));
  store.apply_batch(std::vector<Signal>{sig("VIN1", "A", 1, Value::int64(1)),
                                        sig("VIN1", "B", 1, Value::int64(1))});
  const std::string text = metrics.render_prometheus();
  EXPECT_NE(text.find("teslasync_state_apply_total{result=\"newer\"} 2"), std::string::npos)
      << text;
  EXPECT_NE(text.find("teslasync_state_apply_total{result=\"same\"} 1"), std::string::npos);
  EXPECT_NE(text.find("teslasync_state_apply_total{result=\"older\"} 2"), std::string::npos);
  EXPECT_NE(text.find("teslasync_state_signals 2"), std::string::npos);
}

TEST(Store, ForEachVisitsEverySignal) {
  Store store;
  for (int v = 0; v < 50; ++v) {
    for (int s = 0; s < 4; ++s) {
      store.apply(sig("VIN" + std::to_string(v), "S" + std::to_string(s), 10 + s,
                      Value::string("value number " + std::to_string(v * 4 + s))));
    }
  }
  std::size_t n = 0;
  store.for_each([&](const Signal& s) {
    ++n;
    auto e = store.get(s.vin, s.name);  // calling back into the store is allowed
    ASSERT_TRUE(e);
    EXPECT_EQ(e->value, s.value);
    EXPECT_EQ(e->ts, s.ts);
  });
  EXPECT_EQ(n, 200u);
}

TEST(Store, DrainTakesWholeVehiclesUntilEmpty) {
  Store store(4);
  for (int v = 0; v < 10; ++v) {
    for (int s = 0; s < 3; ++s) {
      store.apply(sig("VIN" + std::to_string(v), "S" + std::to_string(s), 1, Value::int64(v)));
    }
  }
  std::vector<Signal> all;
  while (true) {
    auto part = store.drain(4);
    if (part.empty()) break;
    EXPECT_LE(part.size(), 4u + 3u);
    EXPECT_EQ(part.size() % 3, 0u);  // whole vehicles
    for (std::size_t i = 0; i < part.size(); i += 3) {
      EXPECT_EQ(part[i].vin, part[i + 2].vin);  // grouped by vehicle
    }
    all.insert(all.end(), part.begin(), part.end());
  }
  EXPECT_EQ(all.size(), 30u);
  EXPECT_EQ(store.vehicle_count(), 0u);
  EXPECT_EQ(store.signal_count(), 0u);
  EXPECT_TRUE(store.vins().empty());
  // The store is usable after draining.
  EXPECT_EQ(store.apply(sig("VIN1", "S0", 1, Value::int64(1))), Applied::Newer);
}

TEST(Store, TwoThreadsInterleavedKeepTheNewest) {
  Store store(4);
  constexpr int kVehicles = 20, kSignals = 10, kRounds = 200;
  // Thread 0 applies even event times, thread 1 odd ones, in opposite orders, with batches.
  auto work = [&](int parity) {
    std::vector<Signal> batch;
    for (int round = 0; round < kRounds; ++round) {
      const int r = parity == 0 ? round : kRounds - 1 - round;
      const signal::Timestamp ts = 2 * r + parity;
      batch.clear();
      for (int v = 0; v < kVehicles; ++v) {
        for (int s = 0; s < kSignals; ++s) {
          batch.push_back(
              sig("VIN" + std::to_string(v), "S" + std::to_string(s), ts, Value::int64(ts)));
        }
      }
      if (round % 2 == 0) {
        store.apply_batch(batch);
      } else {
        for (const Signal& s : batch) store.apply(s);
      }
    }
  };
  std::thread t0(work, 0), t1(work, 1);
  t0.join();
  t1.join();
  const signal::Timestamp newest = 2 * (kRounds - 1) + 1;
  EXPECT_EQ(store.vehicle_count(), static_cast<std::size_t>(kVehicles));
  EXPECT_EQ(store.signal_count(), static_cast<std::size_t>(kVehicles * kSignals));
  for (int v = 0; v < kVehicles; ++v) {
    for (int s = 0; s < kSignals; ++s) {
      auto e = store.get("VIN" + std::to_string(v), "S" + std::to_string(s));
      ASSERT_TRUE(e);
      EXPECT_EQ(e->ts, newest);
      EXPECT_EQ(e->value, Value::int64(newest));
    }
  }
}

}  // namespace
}  // namespace ts::state

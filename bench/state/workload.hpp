#pragma once
// The synthetic fleet of the state benchmarks: vehicles with 100 signals each, in a mix shaped
// like Fleet Telemetry's (mostly numbers, some enums and booleans, a few strings, a location,
// doors, tire warnings, times). Deterministic: signal j of vehicle i at round r is always the
// same value.
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "signal/signal.hpp"

namespace ts::bench_state {

inline constexpr int kSignalsPerVehicle = 100;
inline constexpr signal::Timestamp kEpoch = 1'764'000'000'000'000;  // 2025-11-24

inline std::string vin(int i) { return fmt::format("5YJ3E1EA7KF{:06d}", i); }

inline std::string signal_name(int j) { return fmt::format("TelemetryField{:03d}", j); }

inline signal::Value value(int j, int round) {
  using signal::Value;
  static const char* const kEnums[] = {"ShiftStateD",         "ShiftStateP",
                                       "ChargeStateCharging", "DetailedChargeStateDisconnected",
                                       "HvacPowerStateOn",    "SentryModeStateArmed"};
  if (j < 60) return Value::float64(j * 1.5 + round * 0.25);
  if (j < 70) return Value::int64(j * 1000 + round);
  if (j < 78) return Value::boolean((j + round) % 2 == 0);
  if (j < 90) return Value::enumeration(kEnums[(j + round) % 6]);
  if (j == 90) return Value::string("2025.44.25.3 " + fmt::format("{:010x}", 0xabcdef01 + j));
  if (j == 91) return Value::string("My Model 3");
  if (j == 92) return Value::string(round % 2 ? "Home" : "Work");
  if (j == 93) return Value::location(52.52 + round * 1e-5, 13.405 - round * 1e-5);
  if (j == 94) {
    return Value::doors(R"({"DriverFront":false,"DriverRear":false,"PassengerFront":false,)"
                        R"("PassengerRear":false,"TrunkFront":false,"TrunkRear":false})");
  }
  if (j < 97) return Value::tires("{}");
  if (j < 99) return Value::time_of_day(fmt::format("{}:{:02d}:00", 7 + j % 3, round % 60));
  return Value::invalid();
}

inline signal::Signal make(int vehicle, int j, int round) {
  const signal::Timestamp ts = kEpoch + round * 1'000'000LL + j;
  return signal::Signal{.vin = vin(vehicle),
                        .name = signal_name(j),
                        .ts = ts,
                        .received_at = ts + 150'000,
                        .source = signal::Source::Stream,
                        .value = value(j, round)};
}

/// All signals of one vehicle at one round.
inline std::vector<signal::Signal> vehicle_signals(int vehicle, int round) {
  std::vector<signal::Signal> out;
  out.reserve(kSignalsPerVehicle);
  for (int j = 0; j < kSignalsPerVehicle; ++j) out.push_back(make(vehicle, j, round));
  return out;
}

}  // namespace ts::bench_state

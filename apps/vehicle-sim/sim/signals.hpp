#pragma once
/// The signals of one simulated vehicle: a small state machine (parked -> driving -> parked ->
/// charging -> ...) advanced in simulated time, and the V record (spec §7.1, `Payload`) it
/// produces. Pure computation, no I/O, no clocks: the caller passes elapsed time and timestamps,
/// so the same seed and the same calls give byte-identical records.
///
/// Units follow the vehicle's: speed mph, distances miles, temperatures °C, tyre pressure bar,
/// power kW, voltage V, current A (positive = discharging).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "sim/rng.hpp"
#include "wire/payload.hpp"

namespace ts::vehicle_sim {

namespace vd = ::telemetry::vehicle_data;

enum class Mode { Parked, Driving, Charging };

std::string_view to_string(Mode mode);

/// One entry of the record layout: which field, carried in which `Value` member.
struct FieldSpec {
  vd::Field field;
  vd::Value::ValueCase member;
};

/// Every field the generator can produce, in record order. A record of K datums carries the first
/// K entries; the first 20 are the benchmark workload (a ~290-byte protobuf, like the reference's
/// `23-v-20-datums` case).
std::span<const FieldSpec> field_catalogue();

inline constexpr std::size_t kDefaultDatums = 20;

/// Fixed traits of a vehicle, drawn once from its seed.
struct VehicleProfile {
  std::string name;     ///< VehicleName
  std::string version;  ///< Version (firmware)
  double home_lat = 0;
  double home_lon = 0;
  double pack_kwh = 75;
  double rated_range_mi = 310;  ///< range at 100 % battery
  double outside_base_c = 15;
  double tyre_bar[4] = {2.9, 2.9, 2.9, 2.9};  ///< FL, FR, RL, RR
  bool sentry_when_parked = false;
  int charge_limit_soc = 90;
  double ac_power_kw = 11;
};

/// The changing state. Read-only for callers; `SignalGenerator::advance` moves it.
struct VehicleState {
  Mode mode = Mode::Parked;
  double mode_elapsed_s = 0;   ///< time spent in the current mode
  double mode_duration_s = 0;  ///< planned length of the current mode
  double sim_time_s = 0;       ///< simulated seconds since the generator was made
  double soc = 70;             ///< state of charge, %
  double odometer_mi = 10000;
  double lat = 0;
  double lon = 0;
  double heading_deg = 0;
  double speed_mph = 0;
  double target_speed_mph = 0;
  double target_left_s = 0;  ///< until a new target speed is drawn
  double lateral_accel_g = 0;
  double inside_c = 20;
  double charge_power_kw = 0;  ///< AC power drawn while charging
  bool charge_complete = false;
  bool reversing = false;
  bool driver_door_open = false;
  double miles_since_reset = 0;
};

/// The generator of one vehicle. Owned by its `Vehicle` (one shard's thread); not thread-safe.
/// Never fails: values are clamped into their physical ranges.
class SignalGenerator {
 public:
  /// Draws the profile and the initial state (mode, how far into it, battery, odometer) from
  /// `seed`; use `seed_for(vin, run_seed)` so that a VIN always behaves the same.
  SignalGenerator(std::string vin, std::uint64_t seed);

  static std::uint64_t seed_for(std::string_view vin, std::uint64_t run_seed);

  /// Advances simulated time by `dt_s` seconds (≥ 0), in steps of at most one second (at most
  /// 1000 steps per call: very large jumps use coarser steps).
  void advance(double dt_s);

  /// Switches to `mode` now, as if the current one had just ended (a new duration is drawn).
  /// For the Fleet API stand-in's controls (`vehicle-sim fleet-api`, `/sim/vehicles/{vin}/mode`).
  void set_mode(Mode mode) { enter(mode); }

  /// Makes `out` the record of the first `datums` fields of the catalogue (clamped to the
  /// catalogue's size) and `created_at`, reusing the message's allocations: pass the same
  /// Payload for every record. `vin` is left empty: the server takes it from the certificate
  /// (spec §7.2).
  void fill_payload(vd::Payload& out, std::size_t datums,
                    std::chrono::system_clock::time_point created_at) const;

  const VehicleProfile& profile() const { return profile_; }
  const VehicleState& state() const { return state_; }
  const std::string& vin() const { return vin_; }

  /// Derived values, as they appear in the record.
  vd::ShiftState gear() const;
  vd::DetailedChargeStateValue detailed_charge_state() const;
  vd::ChargingState charge_state() const;
  vd::SentryModeState sentry_mode() const;
  bool locked() const;
  double battery_level() const;  ///< usable %, a little below soc
  double pack_voltage() const;
  double pack_current() const;
  double outside_temp() const;
  double est_battery_range() const;

 private:
  void step(double dt);
  void step_driving(double dt);
  void step_charging(double dt);
  void enter(Mode mode);
  void set_datum(vd::Datum& d, const FieldSpec& spec) const;

  std::string vin_;
  Rng rng_;
  VehicleProfile profile_;
  VehicleState state_;
  double outside_phase_ = 0;
  Mode last_active_ = Mode::Charging;  ///< the last non-parked mode, to alternate
};

}  // namespace ts::vehicle_sim

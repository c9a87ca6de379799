#include "sim/signals.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

namespace ts::vehicle_sim {
namespace {

using VC = vd::Value::ValueCase;

// Record order. The first kDefaultDatums entries are the benchmark workload; the rest are there
// for `--datums` above 20.
constexpr std::array kCatalogue{
    FieldSpec{vd::VehicleSpeed, VC::kDoubleValue},
    FieldSpec{vd::Odometer, VC::kDoubleValue},
    FieldSpec{vd::Location, VC::kLocationValue},
    FieldSpec{vd::Gear, VC::kShiftStateValue},
    FieldSpec{vd::Soc, VC::kFloatValue},
    FieldSpec{vd::BatteryLevel, VC::kFloatValue},
    FieldSpec{vd::EstBatteryRange, VC::kDoubleValue},
    FieldSpec{vd::DetailedChargeState, VC::kDetailedChargeStateValue},
    FieldSpec{vd::ACChargingPower, VC::kDoubleValue},
    FieldSpec{vd::PackVoltage, VC::kDoubleValue},
    FieldSpec{vd::PackCurrent, VC::kDoubleValue},
    FieldSpec{vd::InsideTemp, VC::kDoubleValue},
    FieldSpec{vd::OutsideTemp, VC::kDoubleValue},
    FieldSpec{vd::Locked, VC::kBooleanValue},
    FieldSpec{vd::SentryMode, VC::kSentryModeStateValue},
    FieldSpec{vd::VehicleName, VC::kStringValue},
    FieldSpec{vd::Version, VC::kStringValue},
    FieldSpec{vd::TpmsPressureFl, VC::kDoubleValue},
    FieldSpec{vd::TpmsPressureFr, VC::kDoubleValue},
    FieldSpec{vd::DoorState, VC::kDoorValue},
    // beyond the default 20
    FieldSpec{vd::TpmsPressureRl, VC::kDoubleValue},
    FieldSpec{vd::TpmsPressureRr, VC::kDoubleValue},
    FieldSpec{vd::ChargeState, VC::kChargingValue},
    FieldSpec{vd::GpsHeading, VC::kDoubleValue},
    FieldSpec{vd::ChargeLimitSoc, VC::kIntValue},
    FieldSpec{vd::LateralAcceleration, VC::kDoubleValue},
    FieldSpec{vd::RatedRange, VC::kDoubleValue},
    FieldSpec{vd::MilesSinceReset, VC::kLongValue},
};
static_assert(kCatalogue.size() >= kDefaultDatums);

constexpr std::array<std::string_view, 10> kNames{
    "My Tesla", "Sparky",   "Road Runner", "Voltaire",     "Nikola",
    "Daily",    "Kilowatt", "Blue Comet",  "Silent Arrow", "Ampere"};
constexpr std::array<std::string_view, 6> kVersions{"2024.44.25.1", "2024.45.32.12", "2025.2.6",
                                                    "2025.8.3",     "2025.14.6",     "2025.20.1"};

struct City {
  double lat, lon;
};
constexpr std::array<City, 5> kCities{{{37.4419, -122.1430},   // Palo Alto
                                       {30.2672, -97.7431},    // Austin
                                       {52.5200, 13.4050},     // Berlin
                                       {59.9139, 10.7522},     // Oslo
                                       {31.2304, 121.4737}}};  // Shanghai

constexpr double kDoorOpenS = 8;      // the driver door stays open this long around a stop
constexpr double kReverseS = 4;       // leaving a parking spot in reverse
constexpr double kChargeStartS = 10;  // DetailedChargeStateStarting before Charging
constexpr double kSlowDownS = 20;     // before a drive ends the car comes to a stop
constexpr double kMaxRoamKm = 25;     // drives stay within this distance of home
constexpr double kKmPerDegLat = 111.32;
constexpr double kKmPerMile = 1.609344;

template <class T, std::size_t N>
const T& pick(Rng& rng, const std::array<T, N>& items) {
  return items[rng.next_u64() % N];
}

double round_to(double v, double scale) { return std::round(v * scale) / scale; }

double deg2rad(double d) { return d * std::numbers::pi / 180.0; }

double wrap_degrees(double d) {
  d = std::fmod(d, 360.0);
  return d < 0 ? d + 360.0 : d;
}

}  // namespace

std::string_view to_string(Mode mode) {
  switch (mode) {
    case Mode::Parked:
      return "parked";
    case Mode::Driving:
      return "driving";
    case Mode::Charging:
      return "charging";
  }
  return "?";
}

std::span<const FieldSpec> field_catalogue() { return kCatalogue; }

std::uint64_t SignalGenerator::seed_for(std::string_view vin, std::uint64_t run_seed) {
  return mix_seed(fnv1a(vin), run_seed);
}

SignalGenerator::SignalGenerator(std::string vin, std::uint64_t seed)
    : vin_(std::move(vin)), rng_(seed) {
  auto& p = profile_;
  p.name = std::string(pick(rng_, kNames));
  p.version = std::string(pick(rng_, kVersions));
  const City& city = pick(rng_, kCities);
  p.home_lat = city.lat + rng_.uniform(-0.15, 0.15);
  p.home_lon = city.lon + rng_.uniform(-0.15, 0.15);
  p.pack_kwh = pick(rng_, std::array{60.0, 75.0, 82.0, 100.0});
  p.rated_range_mi = p.pack_kwh * rng_.uniform(3.8, 4.3);
  p.outside_base_c = rng_.uniform(0, 28);
  for (double& t : p.tyre_bar) t = rng_.uniform(2.75, 3.05);
  p.sentry_when_parked = rng_.chance(0.5);
  p.charge_limit_soc = pick(rng_, std::array{80, 80, 90, 100});
  p.ac_power_kw = pick(rng_, std::array{7.6, 11.0, 11.5});

  auto& s = state_;
  s.soc = rng_.uniform(35, 90);
  s.odometer_mi = rng_.uniform(2000, 60000);
  s.miles_since_reset = rng_.uniform(0, 2000);
  s.lat = p.home_lat + rng_.uniform(-0.05, 0.05);
  s.lon = p.home_lon + rng_.uniform(-0.05, 0.05);
  s.heading_deg = rng_.uniform(0, 360);
  s.inside_c = p.outside_base_c;
  outside_phase_ = rng_.uniform(0, 2 * std::numbers::pi);

  // Start somewhere inside a mode so that a fleet is a mix of parked, driving and charging cars.
  double r = rng_.next_unit();
  enter(r < 0.5 ? Mode::Parked : r < 0.8 ? Mode::Driving : Mode::Charging);
  s.mode_elapsed_s = rng_.uniform(0, s.mode_duration_s * 0.9);
  s.reversing = false;
  s.driver_door_open = false;
  if (s.mode == Mode::Charging) s.charge_power_kw = p.ac_power_kw;
}

void SignalGenerator::enter(Mode mode) {
  auto& s = state_;
  s.mode = mode;
  s.mode_elapsed_s = 0;
  s.speed_mph = 0;
  s.target_speed_mph = 0;
  s.target_left_s = 0;
  s.lateral_accel_g = 0;
  s.charge_power_kw = 0;
  s.reversing = false;
  switch (mode) {
    case Mode::Parked:
      s.mode_duration_s = rng_.uniform(120, 480);
      s.driver_door_open = true;
      break;
    case Mode::Driving:
      s.mode_duration_s = rng_.uniform(180, 600);
      s.reversing = rng_.chance(0.4);
      s.driver_door_open = false;
      break;
    case Mode::Charging:
      s.mode_duration_s = rng_.uniform(180, 600);
      s.charge_complete = false;
      s.driver_door_open = true;
      break;
  }
  if (mode != Mode::Parked) last_active_ = mode;
}

void SignalGenerator::advance(double dt_s) {
  if (!(dt_s > 0)) return;  // also rejects NaN
  const double step_s = std::max(1.0, dt_s / 1000.0);
  while (dt_s > 0) {
    double dt = std::min(step_s, dt_s);
    step(dt);
    dt_s -= dt;
  }
}

void SignalGenerator::step(double dt) {
  auto& s = state_;
  s.sim_time_s += dt;
  s.mode_elapsed_s += dt;

  switch (s.mode) {
    case Mode::Driving:
      step_driving(dt);
      break;
    case Mode::Charging:
      step_charging(dt);
      break;
    case Mode::Parked: {
      double drain_kw = profile_.sentry_when_parked ? 0.25 : 0.02;
      s.soc -= drain_kw * dt / 3600.0 / profile_.pack_kwh * 100.0;
      break;
    }
  }
  s.soc = std::clamp(s.soc, 0.0, 100.0);

  if (s.mode != Mode::Driving) {
    double left = s.mode_duration_s - s.mode_elapsed_s;
    s.driver_door_open =
        s.mode_elapsed_s < kDoorOpenS || (s.mode == Mode::Parked && left < kDoorOpenS);
  }

  // The cabin follows the HVAC set point while driving, the weather (plus sun) otherwise.
  double target = s.mode == Mode::Driving ? 21.0 : outside_temp() + 3.0;
  double tau = s.mode == Mode::Driving ? 300.0 : 1800.0;
  s.inside_c += (target - s.inside_c) * (1.0 - std::exp(-dt / tau));

  bool low_battery = s.mode == Mode::Driving && s.soc < 8;
  if (s.mode_elapsed_s < s.mode_duration_s && !low_battery) return;
  switch (s.mode) {
    case Mode::Parked: {
      bool charge =
          s.soc < 20 || (last_active_ == Mode::Driving && (s.soc < 75 || rng_.chance(0.5)) &&
                         s.soc < profile_.charge_limit_soc - 2);
      enter(charge ? Mode::Charging : Mode::Driving);
      break;
    }
    case Mode::Driving:
    case Mode::Charging:
      enter(Mode::Parked);
      break;
  }
}

void SignalGenerator::step_driving(double dt) {
  auto& s = state_;
  double prev_heading = s.heading_deg;
  if (s.reversing && s.mode_elapsed_s >= kReverseS) {
    s.reversing = false;
    s.speed_mph = 0;
  }
  if (s.reversing) {
    s.speed_mph = 3;
  } else {
    if (s.mode_duration_s - s.mode_elapsed_s < kSlowDownS) {
      s.target_speed_mph = 0;
    } else if ((s.target_left_s -= dt) <= 0) {
      s.target_speed_mph = rng_.chance(0.6) ? rng_.uniform(20, 42) : rng_.uniform(55, 75);
      s.target_left_s = rng_.uniform(15, 60);
    }
    double dv = std::clamp(s.target_speed_mph - s.speed_mph, -6.0 * dt, 4.0 * dt);
    s.speed_mph = std::clamp(s.speed_mph + dv, 0.0, 90.0);
  }

  // Heading: a gentle random walk, turned back towards home when the car roams too far.
  if (s.speed_mph > 0) {
    double turn = rng_.uniform(-2.0, 2.0) * dt;
    double north_km = (profile_.home_lat - s.lat) * kKmPerDegLat;
    double east_km = (profile_.home_lon - s.lon) * kKmPerDegLat * std::cos(deg2rad(s.lat));
    if (std::hypot(north_km, east_km) > kMaxRoamKm) {
      double home_bearing = std::atan2(east_km, north_km) * 180.0 / std::numbers::pi;
      double diff = std::remainder(home_bearing - s.heading_deg, 360.0);
      turn = std::clamp(diff, -5.0 * dt, 5.0 * dt);
    }
    s.heading_deg = wrap_degrees(s.heading_deg + turn);
  }
  double yaw_rate = deg2rad(std::remainder(s.heading_deg - prev_heading, 360.0)) / dt;
  s.lateral_accel_g = s.speed_mph * 0.44704 * yaw_rate / 9.80665;

  double miles = s.speed_mph * dt / 3600.0;
  double km = miles * kKmPerMile * (s.reversing ? -1.0 : 1.0);
  s.lat += km * std::cos(deg2rad(s.heading_deg)) / kKmPerDegLat;
  s.lon += km * std::sin(deg2rad(s.heading_deg)) / (kKmPerDegLat * std::cos(deg2rad(s.lat)));
  s.odometer_mi += miles;
  s.miles_since_reset += miles;

  double power_kw = s.speed_mph * (230.0 + s.speed_mph) / 1000.0 + 0.6;
  s.soc -= power_kw * dt / 3600.0 / profile_.pack_kwh * 100.0;
}

void SignalGenerator::step_charging(double dt) {
  auto& s = state_;
  if (s.soc >= profile_.charge_limit_soc) s.charge_complete = true;
  if (s.charge_complete) {
    s.charge_power_kw = 0;
    return;
  }
  double p = profile_.ac_power_kw;
  if (s.mode_elapsed_s < kChargeStartS) p *= s.mode_elapsed_s / kChargeStartS;
  if (s.soc > 90) p *= std::max(0.2, (100.0 - s.soc) / 10.0);  // taper near full
  s.charge_power_kw = p;
  s.soc += p * 0.92 * dt / 3600.0 / profile_.pack_kwh * 100.0;
}

vd::ShiftState SignalGenerator::gear() const {
  if (state_.mode != Mode::Driving) return vd::ShiftStateP;
  return state_.reversing ? vd::ShiftStateR : vd::ShiftStateD;
}

vd::DetailedChargeStateValue SignalGenerator::detailed_charge_state() const {
  if (state_.mode != Mode::Charging) return vd::DetailedChargeStateDisconnected;
  if (state_.charge_complete) return vd::DetailedChargeStateComplete;
  if (state_.mode_elapsed_s < kChargeStartS) return vd::DetailedChargeStateStarting;
  return vd::DetailedChargeStateCharging;
}

vd::ChargingState SignalGenerator::charge_state() const {
  if (state_.mode != Mode::Charging) return vd::ChargeStateDisconnected;
  if (state_.charge_complete) return vd::ChargeStateComplete;
  if (state_.mode_elapsed_s < kChargeStartS) return vd::ChargeStateStarting;
  return vd::ChargeStateCharging;
}

vd::SentryModeState SignalGenerator::sentry_mode() const {
  if (state_.mode == Mode::Driving || !profile_.sentry_when_parked) return vd::SentryModeStateOff;
  return state_.driver_door_open ? vd::SentryModeStateIdle : vd::SentryModeStateArmed;
}

bool SignalGenerator::locked() const {
  return state_.mode == Mode::Driving || !state_.driver_door_open;
}

double SignalGenerator::battery_level() const { return std::max(0.0, state_.soc - 0.6); }

double SignalGenerator::outside_temp() const {
  return profile_.outside_base_c +
         5.0 * std::sin(2 * std::numbers::pi * state_.sim_time_s / 86400.0 + outside_phase_);
}

double SignalGenerator::est_battery_range() const {
  return profile_.rated_range_mi * battery_level() / 100.0;
}

namespace {
double open_circuit_voltage(double soc) { return 330.0 + 0.73 * soc; }
}  // namespace

double SignalGenerator::pack_current() const {
  double ocv = open_circuit_voltage(state_.soc);
  switch (state_.mode) {
    case Mode::Driving: {
      double power_kw = state_.speed_mph * (230.0 + state_.speed_mph) / 1000.0 + 0.6;
      return power_kw * 1000.0 / ocv;
    }
    case Mode::Charging:
      return -state_.charge_power_kw * 1000.0 / ocv;
    case Mode::Parked:
      return profile_.sentry_when_parked ? 0.7 : 0.1;
  }
  return 0;
}

double SignalGenerator::pack_voltage() const {
  return open_circuit_voltage(state_.soc) - pack_current() * 0.02;  // 20 mΩ pack resistance
}

void SignalGenerator::fill_payload(vd::Payload& out, std::size_t datums,
                                   std::chrono::system_clock::time_point created_at) const {
  // Overwrites the datums in place instead of Clear(): without an arena, Clear() frees every
  // Value and the next record allocates them again. Each datum sets its key and its oneof member
  // completely, so the bytes are the same as those of a fresh message.
  datums = std::min(datums, kCatalogue.size());
  auto* data = out.mutable_data();
  while (static_cast<std::size_t>(data->size()) > datums) data->RemoveLast();
  while (static_cast<std::size_t>(data->size()) < datums) data->Add();
  for (std::size_t i = 0; i < datums; ++i) {
    auto& d = (*data)[static_cast<int>(i)];
    d.set_key(kCatalogue[i].field);
    set_datum(d, kCatalogue[i]);
  }
  out.clear_vin();
  out.clear_is_resend();
  auto since_epoch = created_at.time_since_epoch();
  auto secs = std::chrono::floor<std::chrono::seconds>(since_epoch);
  // Microseconds: the event time is what benchmarks time frame -> SSE latency against.
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(since_epoch - secs);
  auto* ts = out.mutable_created_at();
  ts->set_seconds(secs.count());
  ts->set_nanos(static_cast<std::int32_t>(us.count() * 1'000));
}

void SignalGenerator::set_datum(vd::Datum& d, const FieldSpec& spec) const {
  const auto& s = state_;
  auto* v = d.mutable_value();
  // Tyres warm up while driving and follow the air temperature a little.
  auto tyre = [&](int i) {
    double warm = s.mode == Mode::Driving ? 0.08 : 0.0;
    return round_to(profile_.tyre_bar[i] * (1.0 + (outside_temp() - 15.0) * 0.003) + warm, 100);
  };
  switch (spec.field) {
    case vd::VehicleSpeed:
      v->set_double_value(round_to(s.speed_mph, 10));
      break;
    case vd::Odometer:
      v->set_double_value(round_to(s.odometer_mi, 1000));
      break;
    case vd::Location: {
      auto* loc = v->mutable_location_value();
      loc->set_latitude(round_to(s.lat, 1e6));
      loc->set_longitude(round_to(s.lon, 1e6));
      break;
    }
    case vd::Gear:
      v->set_shift_state_value(gear());
      break;
    case vd::Soc:
      v->set_float_value(static_cast<float>(round_to(s.soc, 100)));
      break;
    case vd::BatteryLevel:
      v->set_float_value(static_cast<float>(round_to(battery_level(), 100)));
      break;
    case vd::EstBatteryRange:
      v->set_double_value(round_to(est_battery_range(), 100));
      break;
    case vd::DetailedChargeState:
      v->set_detailed_charge_state_value(detailed_charge_state());
      break;
    case vd::ACChargingPower:
      v->set_double_value(round_to(s.charge_power_kw, 100));
      break;
    case vd::PackVoltage:
      v->set_double_value(round_to(pack_voltage(), 100));
      break;
    case vd::PackCurrent:
      v->set_double_value(round_to(pack_current(), 10));
      break;
    case vd::InsideTemp:
      v->set_double_value(round_to(s.inside_c, 10));
      break;
    case vd::OutsideTemp:
      v->set_double_value(round_to(outside_temp(), 10));
      break;
    case vd::Locked:
      v->set_boolean_value(locked());
      break;
    case vd::SentryMode:
      v->set_sentry_mode_state_value(sentry_mode());
      break;
    case vd::VehicleName:
      v->set_string_value(profile_.name);
      break;
    case vd::Version:
      v->set_string_value(profile_.version);
      break;
    case vd::TpmsPressureFl:
      v->set_double_value(tyre(0));
      break;
    case vd::TpmsPressureFr:
      v->set_double_value(tyre(1));
      break;
    case vd::TpmsPressureRl:
      v->set_double_value(tyre(2));
      break;
    case vd::TpmsPressureRr:
      v->set_double_value(tyre(3));
      break;
    case vd::DoorState: {
      auto* doors = v->mutable_door_value();  // an empty Doors message = all closed
      doors->Clear();
      doors->set_driverfront(s.driver_door_open);
      break;
    }
    case vd::ChargeState:
      v->set_charging_value(charge_state());
      break;
    case vd::GpsHeading:
      v->set_double_value(round_to(s.heading_deg, 10));
      break;
    case vd::ChargeLimitSoc:
      v->set_int_value(profile_.charge_limit_soc);
      break;
    case vd::LateralAcceleration:
      v->set_double_value(round_to(s.lateral_accel_g, 100));
      break;
    case vd::RatedRange:
      v->set_double_value(round_to(profile_.rated_range_mi * s.soc / 100.0, 100));
      break;
    case vd::MilesSinceReset:
      v->set_long_value(static_cast<std::int64_t>(s.miles_since_reset));
      break;
    default:
      // The catalogue lists only the fields handled above.
      v->set_invalid(true);
      break;
  }
}

}  // namespace ts::vehicle_sim

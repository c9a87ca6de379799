#include "fleet_api/sim_fleet.hpp"

#include <algorithm>
#include <charconv>

#include "sim/rng.hpp"

namespace ts::vehicle_sim {

std::string_view to_string(Availability a) {
  switch (a) {
    case Availability::Online:
      return "online";
    case Availability::Asleep:
      return "asleep";
    case Availability::Offline:
      return "offline";
  }
  return "?";
}

std::optional<Mode> parse_mode(std::string_view text) {
  if (text == "parked") return Mode::Parked;
  if (text == "driving") return Mode::Driving;
  if (text == "charging") return Mode::Charging;
  return std::nullopt;
}

std::string owner_api_charging_state(vd::ChargingState state) {
  switch (state) {
    case vd::ChargeStateDisconnected:
      return "Disconnected";
    case vd::ChargeStateNoPower:
      return "NoPower";
    case vd::ChargeStateStarting:
      return "Starting";
    case vd::ChargeStateCharging:
      return "Charging";
    case vd::ChargeStateComplete:
      return "Complete";
    case vd::ChargeStateStopped:
      return "Stopped";
    default:
      return "Disconnected";
  }
}

SimVehicle::SimVehicle(std::string v, std::uint64_t seed)
    : vin(std::move(v)), generator(vin, seed) {
  // Stable ids from the VIN, in the range of Tesla's (15-17 digit) ids.
  const std::uint64_t h = fnv1a(vin);
  id = static_cast<std::int64_t>(1'000'000'000'000'000ULL + h % 900'000'000'000'000ULL);
  vehicle_id = static_cast<std::int64_t>(1'000'000'000ULL + (h >> 20) % 9'000'000'000ULL);
}

SimFleet::SimFleet(const std::vector<std::string>& vins, SimFleetOptions options)
    : options_(options) {
  vehicles_.reserve(vins.size());
  for (const auto& vin : vins) {
    vehicles_.emplace_back(vin, SignalGenerator::seed_for(vin, options_.seed));
  }
}

SimVehicle* SimFleet::find(std::string_view vin_or_id) {
  for (auto& v : vehicles_) {
    if (v.vin == vin_or_id) return &v;
  }
  std::int64_t id = 0;
  auto [end, ec] = std::from_chars(vin_or_id.data(), vin_or_id.data() + vin_or_id.size(), id);
  if (ec == std::errc() && end == vin_or_id.data() + vin_or_id.size()) {
    for (auto& v : vehicles_) {
      if (v.id == id) return &v;
    }
  }
  return nullptr;
}

void SimFleet::advance_to(double now_s) {
  if (!last_now_) {
    last_now_ = now_s;
    return;
  }
  const double wall_dt = std::max(0.0, now_s - *last_now_);
  last_now_ = now_s;
  if (wall_dt <= 0) return;
  const double sim_dt = wall_dt * options_.time_scale;
  for (auto& v : vehicles_) step(v, sim_dt, wall_dt);
}

void SimFleet::became_online(SimVehicle& v) {
  v.availability = Availability::Online;
  v.held = false;
  v.idle_s = 0;
  v.wake_left_s = -1;
  // The car fetches its fleet telemetry config on its next backend connection.
  if (v.telemetry_config) v.config_synced = true;
}

void SimFleet::step(SimVehicle& v, double sim_dt, double wall_dt) {
  if (v.wake_left_s >= 0) {
    v.wake_left_s -= wall_dt;
    if (v.wake_left_s <= 0) became_online(v);
  }
  switch (v.availability) {
    case Availability::Online:
      v.generator.advance(sim_dt);
      if (v.generator.state().mode == Mode::Parked) {
        v.idle_s += sim_dt;
        if (options_.sleep_after_s > 0 && v.idle_s >= options_.sleep_after_s) {
          v.availability = Availability::Asleep;
          v.held = false;
        }
      } else {
        v.idle_s = 0;
      }
      break;
    case Availability::Asleep:
      if (v.held) break;  // frozen until a control or wake_up
      v.generator.advance(sim_dt);
      if (v.generator.state().mode != Mode::Parked) became_online(v);  // the driver is back
      break;
    case Availability::Offline:
      break;
  }
}

void SimFleet::put_to_sleep(SimVehicle& v) {
  v.availability = Availability::Asleep;
  v.held = true;
  v.wake_left_s = -1;
}

void SimFleet::take_offline(SimVehicle& v) {
  v.availability = Availability::Offline;
  v.held = true;
  v.wake_left_s = -1;
}

void SimFleet::bring_online(SimVehicle& v) { became_online(v); }

void SimFleet::set_mode(SimVehicle& v, Mode mode) {
  v.generator.set_mode(mode);
  became_online(v);
}

void SimFleet::wake_up(SimVehicle& v) {
  ++v.wake_up_calls;
  if (v.availability != Availability::Asleep) return;  // online: nothing to do; offline: no link
  if (options_.wake_s <= 0) {
    became_online(v);
  } else if (v.wake_left_s < 0) {
    v.wake_left_s = options_.wake_s;
  }
}

void SimFleet::polled(SimVehicle& v) {
  ++v.vehicle_data_served;
  v.idle_s = 0;
}

}  // namespace ts::vehicle_sim

#pragma once
/// The vehicles behind the Fleet API stand-in: each is a `SignalGenerator` (the same model the
/// telemetry stream of `vehicle-sim run` uses, so a VIN polled here looks like the same VIN
/// streamed there) plus what the Fleet API adds: online/asleep/offline, wake_up, key pairing, a
/// stored fleet telemetry config, and fleet telemetry errors.
///
/// Sleep: a car parked and not polled for `sleep_after_s` simulated seconds falls asleep, and
/// wakes by itself when its driver takes it out again (the generator leaves Parked). A car put to
/// sleep or offline by a control is *held*: frozen until a control or wake_up wakes it. Polling
/// vehicle_data keeps an online car awake (as on real cars); a sleeping car is never woken by it.
///
/// Pure computation: time comes in through `advance_to` (any monotonic seconds). Owned by the
/// stand-in; one thread (the stand-in's io_context), not thread-safe.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/signals.hpp"

namespace ts::vehicle_sim {

enum class Availability { Online, Asleep, Offline };
std::string_view to_string(Availability a);  ///< "online", "asleep", "offline"

/// One fleet telemetry error as the vehicle reported it (Tesla's shape).
struct SimTelemetryError {
  std::string created_at;  ///< RFC 3339
  std::string error_name;  ///< e.g. "config_manager_error"
  std::string error;       ///< e.g. "InvalidSignature: unknown issuer"
  std::string name;        ///< client id
  std::string txid;
};

struct SimVehicle {
  std::string vin;
  std::int64_t id = 0;  ///< Fleet API id (paths accept it too)
  std::int64_t vehicle_id = 0;
  SignalGenerator generator;
  Availability availability = Availability::Online;
  bool held = false;        ///< asleep/offline by a control: frozen until woken
  double idle_s = 0;        ///< simulated seconds parked without a vehicle_data request
  double wake_left_s = -1;  ///< ≥ 0 while a wake_up is in progress (wall seconds left)
  bool key_paired = true;
  std::uint64_t wake_up_calls = 0;
  std::uint64_t vehicle_data_served = 0;
  std::optional<std::string> telemetry_config;  ///< the stored config object (JSON text)
  bool config_synced = false;                   ///< the car has adopted the stored config
  std::vector<SimTelemetryError> errors;

  SimVehicle(std::string v, std::uint64_t seed);
};

struct SimFleetOptions {
  std::uint64_t seed = 1;   ///< with the VIN, seeds each generator (as `vehicle-sim run`)
  double time_scale = 1.0;  ///< simulated seconds per wall second; 0 freezes the cars
  /// Parked and unpolled this long (simulated s) → asleep; 0 = never. The sim parks for 2-8
  /// minutes between drives, so the default puts about half of the stops to sleep.
  double sleep_after_s = 180;
  double wake_s = 0;  ///< wall seconds a wake_up takes (0 = online at once)
};

class SimFleet {
 public:
  SimFleet(const std::vector<std::string>& vins, SimFleetOptions options);

  /// Moves every car to time `now_s`. The first call only sets the origin.
  void advance_to(double now_s);

  /// By VIN, or by the numeric id as the API allows; null if unknown.
  SimVehicle* find(std::string_view vin_or_id);
  std::vector<SimVehicle>& vehicles() { return vehicles_; }
  const std::vector<SimVehicle>& vehicles() const { return vehicles_; }
  const SimFleetOptions& options() const { return options_; }

  // Controls (`/sim/…` and start-up switches).
  void put_to_sleep(SimVehicle& v);         ///< held asleep
  void take_offline(SimVehicle& v);         ///< held offline (wake_up cannot reach it)
  void bring_online(SimVehicle& v);         ///< online now, whatever it was
  void set_mode(SimVehicle& v, Mode mode);  ///< also brings it online

  /// POST …/wake_up: counted; an asleep car comes online after `wake_s` (at once when 0), an
  /// offline car stays offline.
  void wake_up(SimVehicle& v);
  /// A vehicle_data answer was served: the idle timer restarts (polling keeps cars awake).
  void polled(SimVehicle& v);

 private:
  void step(SimVehicle& v, double sim_dt, double wall_dt);
  void became_online(SimVehicle& v);

  SimFleetOptions options_;
  std::vector<SimVehicle> vehicles_;
  std::optional<double> last_now_;
};

/// The stream's enum names without their prefix, as vehicle_data spells them:
/// ChargeStateCharging → "Charging", ShiftStateD → "D".
std::string owner_api_charging_state(vd::ChargingState state);
std::optional<Mode> parse_mode(std::string_view text);  ///< parked, driving, charging

}  // namespace ts::vehicle_sim

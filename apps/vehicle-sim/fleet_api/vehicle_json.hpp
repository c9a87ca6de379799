#pragma once
/// The JSON the stand-in answers for a simulated car, in Tesla's shapes: the vehicle object of
/// GET /api/1/vehicles[/{vin}] and the vehicle_data rollup (the legacy Owner API layout:
/// charge_state, climate_state, drive_state, gui_settings, vehicle_config, vehicle_state).
///
/// Values come from the generator's own telemetry record (`SignalGenerator::fill_payload`), so a
/// VIN polled here reports what the same VIN streams through `vehicle-sim run` at that moment:
/// battery_level ← BatteryLevel, usable_battery_level ← Soc (rounded to whole percent, as
/// vehicle_data does), speed, odometer, location, gear, temperatures, lock, sentry, doors, tyres,
/// firmware. What the record lacks (charger voltage/current, time to full) is derived from the
/// same state. Pure, not thread-safe only in that it reads the vehicle.
#include <boost/json/object.hpp>

#include <cstdint>
#include <set>
#include <string>

#include "fleet_api/sim_fleet.hpp"

namespace ts::vehicle_sim {

/// The vehicle object (id, vehicle_id, vin, display_name, state, …).
boost::json::object vehicle_summary(const SimVehicle& v);

/// Known vehicle_data endpoint names.
bool is_vehicle_data_endpoint(const std::string& name);

/// The `response` of vehicle_data for `endpoints` (charge_state, climate_state, drive_state,
/// gui_settings, vehicle_config, vehicle_state, location_data; empty = every section without
/// the location). drive_state carries latitude/longitude only with `location_data`, as on
/// firmware 2023.38+. `now_ms` stamps each section's `timestamp`.
boost::json::object vehicle_data(const SimVehicle& v, const std::set<std::string>& endpoints,
                                 std::int64_t now_ms);

}  // namespace ts::vehicle_sim

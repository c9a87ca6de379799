#pragma once
/// vehicle_data → telemetry Field names: the one table that says which value of Tesla's
/// vehicle_data rollup (the legacy Owner API shape) becomes which Field, with which value kind, so
/// that polled values land in the same L1/signal_log slots as streamed ones. docs/fleet-api.md
/// shows the same table (a unit test checks that they agree). Pure, any thread.
///
/// Units need no conversion: vehicle_data and Fleet Telemetry both use mph, miles, °C, bar, kW.
/// Values are typed like the stream's: Float for the proto's float/double fields (also when
/// vehicle_data sends an integer), Int for int fields, enum names as published over MQTT
/// ("ShiftStateD", "ChargeStateCharging"). A JSON null becomes Value::invalid(), except
/// drive_state.speed, which vehicle_data leaves null when the car is not moving (→ 0).
/// Keys that are absent produce nothing.
#include <boost/json/object.hpp>

#include <span>
#include <string_view>
#include <vector>

#include "fleet_api/types.hpp"
#include "signal/signal.hpp"

namespace ts::fleet_api {

struct FieldMapping {
  std::string_view section;  ///< "charge_state", "climate_state", "drive_state", ...
  std::string_view key;      ///< key inside the section, e.g. "battery_level"
  std::string_view field;    ///< telemetry Field name, e.g. "BatteryLevel"
  signal::Kind kind;         ///< kind of the produced value (Invalid when the JSON value is null)
  std::string_view note;     ///< how the value is converted, for the docs ("" = as is)
};

/// Every mapping, in the order fields are produced.
std::span<const FieldMapping> vehicle_data_mappings();

/// The `vehicle_data.endpoints` the poller asks for (the Go predecessor's set): charge, climate,
/// drive, location (needed for latitude/longitude since firmware 2023.38), vehicle state and
/// config. Joined with ';' as the API expects.
inline constexpr std::string_view kPollEndpoints =
    "charge_state;climate_state;drive_state;location_data;vehicle_state;vehicle_config";

/// Applies the table to the `response` object of vehicle_data. A section's `timestamp`
/// (milliseconds) becomes the fields' ts; `fallback_ts` is used when it is missing.
std::vector<PolledField> map_vehicle_data(const boost::json::object& response,
                                          signal::Timestamp fallback_ts);

}  // namespace ts::fleet_api

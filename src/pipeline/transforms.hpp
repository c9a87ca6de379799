#pragma once
/// Record transforms of spec §7.2, applied in place to decoded records. Pure, any thread.
#include <optional>
#include <string>
#include <string_view>

#include "wire/payload.hpp"

namespace ts::pipeline {

struct LatLon {
  double latitude = 0;
  double longitude = 0;
};

/// spec §7.2.2: parses `(<lat> <N|S>, <lon> <E|W>)`; nullopt when the text does not match.
std::optional<LatLon> parse_location(std::string_view text);

/// spec §7.2.3: a scientific-notation string with a decimal point that fits a float32, rewritten
/// as `%.5f` of that float32; nullopt when the string is to stay unchanged.
std::optional<std::string> normalize_scientific(std::string_view text);

/// spec §7.2.1-3 for V: VIN overwrite, the first Location datum's string -> location_value, and
/// scientific-notation strings in every datum.
void transform_vehicle_data(wire::vehicle_data::Payload& payload, std::string_view vin);

/// spec §7.2.1 and §7.2.4 for alerts: VIN overwrite, millisecond timestamps fixed.
void transform_alerts(wire::vehicle_alerts::VehicleAlerts& alerts, std::string_view vin);

}  // namespace ts::pipeline

#pragma once
/// Parsers for the non-signal records telemetry-server publishes (spec §8.8): alerts,
/// connectivity events and vehicle error reports, into the rows storage keeps. They take the MQTT
/// payload exactly as published.
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "signal/signal.hpp"
#include "storage/database.hpp"

namespace ts::ingest {

using signal::Timestamp;

/// alerts/<name>/current: one alert object. alerts/<name>/history: an array of them.
Result<std::vector<storage::Alert>> parse_alerts(std::string_view vin, std::string_view name,
                                        std::string_view payload, bool history,
                                        Timestamp received_at);
Result<storage::ConnectivityEvent> parse_connectivity(std::string_view vin, std::string_view payload,
                                             Timestamp received_at);
Result<storage::VehicleError> parse_vehicle_error(std::string_view vin, std::string_view name,
                                         std::string_view payload, Timestamp received_at);

}  // namespace ts::ingest

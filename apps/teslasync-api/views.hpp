#pragma once
/// JSON shapes of the REST API and the SSE events (documented in docs/teslasync-api.md).
/// Pure functions; any thread.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "signal/signal.hpp"
#include "state/store.hpp"
#include "storage/database.hpp"

namespace ts::api {

/// Appends `s` as a JSON string.
void append_json_string(std::string& out, std::string_view s);

/// {"name":…,"kind":…,"value":…,"ts":…,"received_at":…,"source":…} (+ "vin" when `with_vin`).
void append_signal(std::string& out, const signal::Signal& s, bool with_vin);

/// SSE `signal_change` data: one signal of one vehicle changed.
std::string signal_change_json(const signal::Signal& s);

/// One vehicle's latest state: {"vin":…,"signals":{"<name>":{"kind","value","ts","received_at","source"},…}},
/// with `clock`: ,"clock":{"future_signals","last_future_ts","last_future_received_at",
/// "same_time_conflicts"} (what L1's rule refused, for the vehicle's diagnostics).
std::string vehicle_state_json(std::string_view vin,
                               const std::vector<std::pair<std::string, state::Entry>>& entries,
                               const state::VehicleClock* clock = nullptr);

/// SSE `vehicle_update` data: the signals of one vehicle that changed since its last update.
std::string vehicle_update_json(std::string_view vin, const std::vector<signal::Signal>& changed);

std::string alert_json(const storage::Alert& a);
std::string connectivity_json(const storage::ConnectivityEvent& c);
std::string vehicle_error_json(const storage::VehicleError& e);
/// {"id","received_at","topic","vin","reason","payload" (text, null if not UTF-8),"payload_base64"}
std::string dead_letter_json(const storage::DeadLetter& d);
std::string fleet_error_json(const storage::FleetError& e);
std::string error_vin_json(const storage::ErrorVin& e);

/// `items` (each already JSON) as a JSON array.
std::string json_array(const std::vector<std::string>& items);

}  // namespace ts::api

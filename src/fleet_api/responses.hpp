#pragma once
/// Pure parsing of Fleet API response bodies and classification of HTTP errors (no I/O), so the
/// shapes are unit-tested without a server. Every function is tolerant of extra keys and of
/// numbers sent as int or float; a body that is not JSON, or lacks what the call needs, gives
/// errc::bad_response. Any thread.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fleet_api/errc.hpp"
#include "fleet_api/types.hpp"

namespace ts::fleet_api {

/// The Error for a response with a non-2xx status. `body` may be Tesla's envelope
/// ({"response":null,"error":…,"error_description":…}), an OAuth error
/// ({"error":"invalid_grant","error_description":…}) or anything else (its first 200 bytes become
/// the message). 401 unauthorized, 404 not_found, 408/504 vehicle_unavailable, 429 rate_limited
/// (with parse_retry_after), other 4xx rejected, 5xx server_error, anything else bad_response.
Error error_from_response(unsigned status, std::string_view body, std::string_view retry_after,
                          std::chrono::system_clock::time_point now);

/// Retry-After as delta-seconds or an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), clamped to
/// [1 s, 2 days]; kDefaultRetryAfter when empty or unreadable.
std::chrono::seconds parse_retry_after(std::string_view header,
                                       std::chrono::system_clock::time_point now);

/// POST /oauth2/v3/token (not enveloped): access_token required; expires_in (s) sets expires_at.
Result<Token> parse_token_response(std::string_view body,
                                   std::chrono::system_clock::time_point now);

/// One page of GET /api/1/vehicles: {"response":[…], "pagination":{"next":N|null,…}}.
struct VehiclePage {
  std::vector<Vehicle> vehicles;
  std::optional<int> next_page;
};
Result<VehiclePage> parse_vehicles_response(std::string_view body);

/// GET /api/1/vehicles/{vin} and POST …/wake_up: {"response":{vehicle}}.
Result<Vehicle> parse_vehicle_response(std::string_view body);

/// GET …/vehicle_data: the vehicle plus the mapped fields (vehicle_data.hpp). `received` is the
/// timestamp of fields whose section has no `timestamp`.
Result<VehicleData> parse_vehicle_data_response(std::string_view body, signal::Timestamp received);

/// POST …/fleet_telemetry_config(_jws) and DELETE …/fleet_telemetry_config.
Result<ConfigUpdate> parse_config_update_response(std::string_view body);

/// GET …/{vin}/fleet_telemetry_config.
Result<TelemetryConfigStatus> parse_config_status_response(std::string_view body);

/// GET …/{vin}/fleet_telemetry_errors and GET /api/1/partner_accounts/fleet_telemetry_errors:
/// {"response":{"fleet_telemetry_errors":[…]}} or {"response":{"errors":[…]}} (TeslaSync's).
Result<std::vector<TelemetryError>> parse_telemetry_errors_response(std::string_view body);

/// GET /api/1/partner_accounts/fleet_telemetry_error_vins, any of the three shapes seen:
/// {"response":{"fleet_telemetry_error_vins":[…]}}, {"response":{"vins":[…]}}, a bare […]
/// (also {"response":[…]}).
Result<std::vector<std::string>> parse_error_vins_response(std::string_view body);

/// POST /api/1/vehicles/fleet_status.
Result<FleetStatus> parse_fleet_status_response(std::string_view body);

/// The JSON object of a config, as POSTed in {"vins":[…],"config":<this>}. Optional members that
/// are unset (exp, prefer_typed, delivery_policy, alert_types, ca) are left out; iss/aud never
/// go out (Tesla sets them).
std::string telemetry_config_json(const TelemetryConfig& config);

}  // namespace ts::fleet_api

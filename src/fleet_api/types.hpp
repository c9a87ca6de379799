#pragma once
/// What the Fleet API client returns: plain values, parsed once from Tesla's JSON (shapes in
/// docs/fleet-api.md and fleet-api-and-pain-points §2). Immutable after parsing, any thread.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "signal/signal.hpp"

namespace ts::fleet_api {

/// `state` of GET /api/1/vehicles[/{vin}]. Since firmware 2024.20 Tesla often says `offline` for
/// a sleeping car, so treat both the same: do not poll, do not wake.
enum class VehicleState { Online, Asleep, Offline, Unknown };
std::string_view to_string(VehicleState state) noexcept;           ///< "online", "asleep", ...
VehicleState parse_vehicle_state(std::string_view text) noexcept;  ///< Unknown for anything else

struct Vehicle {
  std::int64_t id = 0;          ///< Fleet API id (paths accept it in place of the VIN)
  std::int64_t vehicle_id = 0;  ///< the id the car itself uses
  std::string vin;
  std::string display_name;
  VehicleState state = VehicleState::Unknown;
  std::string state_text;  ///< `state` as sent
  bool in_service = false;
  std::string access_type;  ///< "OWNER", "DRIVER", ...
};

/// An OAuth token from the token endpoint (not wrapped in {"response":…}).
struct Token {
  std::string access_token;
  std::string refresh_token;  ///< user tokens only; Tesla rotates it on every refresh
  std::string token_type;     ///< "Bearer"
  std::string scope;
  std::chrono::system_clock::time_point expires_at{};  ///< now + expires_in when received
};

/// One field of a fleet telemetry config (`config.fields.<Name>`).
struct FieldConfig {
  int interval_seconds = 0;
  std::optional<double> minimum_delta;         ///< firmware ≥ 2024.44.32
  std::optional<int> resend_interval_seconds;  ///< firmware ≥ 2024.44.32

  friend bool operator==(const FieldConfig&, const FieldConfig&) = default;
};

/// The `config` object of POST /api/1/vehicles/fleet_telemetry_config and of the GET response.
struct TelemetryConfig {
  std::string hostname;             ///< where the car connects (our telemetry-server)
  int port = 443;                   ///< sent as an integer: a string breaks streaming (FT#119)
  std::string ca;                   ///< PEM chain the *car* uses to verify our server
  std::optional<std::int64_t> exp;  ///< epoch seconds; Tesla drops configs after ~30 days
  std::optional<bool> prefer_typed;
  std::string delivery_policy;                ///< "latest" or "" (not sent)
  std::vector<std::string> alert_types;       ///< "service", "customer", "service-fix"
  std::map<std::string, FieldConfig> fields;  ///< by Field name, e.g. "VehicleSpeed"
  std::string iss;  ///< read-only, echoed by GET: base64 of the signing public key
  std::string aud;  ///< read-only, echoed by GET

  friend bool operator==(const TelemetryConfig&, const TelemetryConfig&) = default;
};

/// Response of config create (and of delete, where only updated_vehicles is set).
struct ConfigUpdate {
  int updated_vehicles = 0;
  /// reason ("missing_key", "unsupported_hardware", "unsupported_firmware", ...) -> VINs
  std::map<std::string, std::vector<std::string>> skipped_vehicles;
};

/// Response of GET /api/1/vehicles/{vin}/fleet_telemetry_config. `synced` true with no config
/// means the car rejected it or has none (FT#294).
struct TelemetryConfigStatus {
  bool synced = false;
  std::optional<TelemetryConfig> config;
  bool limit_reached = false;
  bool key_paired = false;
};

/// One error a car reported after receiving a config. Normalised from both shapes seen:
/// {created_at, error, error_name, name, txID, vin} and {vin, error_code, error_message,
/// reported_at}.
struct TelemetryError {
  std::string vin;
  std::string name;        ///< client/config name (often a UUID)
  std::string error_name;  ///< e.g. "config_manager_error" (or error_code)
  std::string error;       ///< e.g. "InvalidSignature: unknown issuer" (or error_message)
  std::string txid;
  std::string created_at;                          ///< as sent (RFC 3339)
  std::optional<signal::Timestamp> created_at_us;  ///< parsed, when it is RFC 3339
};

struct VehicleInfo {
  std::string firmware_version;
  std::string fleet_telemetry_version;
  std::optional<bool> vehicle_command_protocol_required;
  std::optional<int> total_number_of_keys;
  std::optional<bool> safety_screen_streaming_toggle_enabled;
};

/// Response of POST /api/1/vehicles/fleet_status.
struct FleetStatus {
  std::vector<std::string> key_paired_vins;
  std::vector<std::string> unpaired_vins;
  std::map<std::string, VehicleInfo> vehicle_info;  ///< by VIN
};

/// One value from vehicle_data, named like the telemetry Field it corresponds to.
struct PolledField {
  std::string name;  ///< Field name, e.g. "BatteryLevel"
  signal::Value value;
  signal::Timestamp ts = 0;  ///< the section's `timestamp` (ms → µs), else the response time

  friend bool operator==(const PolledField&, const PolledField&) = default;
};

/// Response of GET /api/1/vehicles/{vin}/vehicle_data.
struct VehicleData {
  Vehicle vehicle;                  ///< the top-level id/vin/state/display_name
  std::vector<PolledField> fields;  ///< in mapping-table order (docs/fleet-api.md)
  std::string raw_json;             ///< the `response` object as received, for debugging
};

}  // namespace ts::fleet_api

#include "fleet_api/vehicle_data.hpp"

#include <array>
#include <cmath>
#include <optional>
#include <string>

namespace ts::fleet_api {
namespace {

namespace json = boost::json;
using signal::Kind;
using signal::Value;

// Converts the JSON value of a rule's key (never null here) given its whole section.
using Convert = std::optional<Value> (*)(const json::object& section, const json::value& v);

struct Rule {
  FieldMapping mapping;
  Convert convert;
};

std::optional<double> number(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  if (v.is_double() && std::isfinite(v.get_double())) return v.get_double();
  return std::nullopt;
}

std::optional<bool> truth(const json::value& v) {
  if (v.is_bool()) return v.get_bool();
  if (auto n = number(v)) return *n != 0;  // vehicle_state door flags are 0/1
  return std::nullopt;
}

const json::value* member(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it == o.end() ? nullptr : &it->value();
}

std::optional<Value> as_float(const json::object&, const json::value& v) {
  if (auto n = number(v)) return Value::float64(*n);
  return std::nullopt;
}

std::optional<Value> as_int(const json::object&, const json::value& v) {
  if (auto n = number(v); n && std::nearbyint(*n) == *n && std::fabs(*n) < 9e15) {
    return Value::int64(static_cast<std::int64_t>(*n));
  }
  return std::nullopt;
}

std::optional<Value> as_bool(const json::object&, const json::value& v) {
  if (auto b = truth(v)) return Value::boolean(*b);
  return std::nullopt;
}

std::optional<Value> as_string(const json::object&, const json::value& v) {
  if (v.is_string()) return Value::string(std::string(v.get_string()));
  return std::nullopt;
}

// "2024.44.25.1 1b2c3d4e5f" -> "2024.44.25.1": the stream's Version has no build hash.
std::optional<Value> firmware(const json::object&, const json::value& v) {
  if (!v.is_string()) return std::nullopt;
  std::string_view s = v.get_string();
  return Value::string(std::string(s.substr(0, s.find(' '))));
}

// `prefix` + `text` when text is one of `known`, else prefix + "Unknown".
template <std::size_t N>
Value enum_value(std::string_view prefix, std::string_view text,
                 const std::array<std::string_view, N>& known) {
  for (auto k : known) {
    if (k == text) return Value::enumeration(std::string(prefix) + std::string(text));
  }
  return Value::enumeration(std::string(prefix) + "Unknown");
}

constexpr std::array<std::string_view, 6> kChargingStates = {"Disconnected", "NoPower",  "Starting",
                                                             "Charging",     "Complete", "Stopped"};

std::optional<Value> charge_state(const json::object&, const json::value& v) {
  if (!v.is_string()) return std::nullopt;
  return enum_value("ChargeState", v.get_string(), kChargingStates);
}

std::optional<Value> detailed_charge_state(const json::object&, const json::value& v) {
  if (!v.is_string()) return std::nullopt;
  return enum_value("DetailedChargeState", v.get_string(), kChargingStates);
}

std::optional<Value> shift_state(const json::object&, const json::value& v) {
  if (!v.is_string()) return std::nullopt;
  return enum_value("ShiftState", v.get_string(),
                    std::array<std::string_view, 5>{"P", "R", "N", "D", "SNA"});
}

std::optional<Value> charge_port_latch(const json::object&, const json::value& v) {
  if (!v.is_string()) return std::nullopt;
  return enum_value("ChargePortLatch", v.get_string(),
                    std::array<std::string_view, 4>{"SNA", "Disengaged", "Engaged", "Blocking"});
}

std::optional<Value> cable_type(const json::object&, const json::value& v) {
  if (!v.is_string()) return std::nullopt;
  std::string_view s = v.get_string();
  if (s == "<invalid>") return Value::enumeration("CableTypeSNA");
  return enum_value("CableType", s,
                    std::array<std::string_view, 5>{"IEC", "SAE", "GB_AC", "GB_DC", "SNA"});
}

std::optional<Value> car_type(const json::object&, const json::value& v) {
  if (!v.is_string()) return std::nullopt;
  std::string_view s = v.get_string();
  if (s.starts_with("models")) return Value::enumeration("CarTypeModelS");  // also "models2"
  if (s == "modelx") return Value::enumeration("CarTypeModelX");
  if (s == "model3") return Value::enumeration("CarTypeModel3");
  if (s == "modely") return Value::enumeration("CarTypeModelY");
  if (s == "cybertruck") return Value::enumeration("CarTypeCybertruck");
  if (s == "semi" || s == "tesla_semi") return Value::enumeration("CarTypeSemiTruck");
  return Value::enumeration("CarTypeUnknown");
}

std::optional<Value> climate_keeper(const json::object&, const json::value& v) {
  if (!v.is_string()) return std::nullopt;
  std::string_view s = v.get_string();
  if (s == "off") return Value::enumeration("ClimateKeeperModeStateOff");
  if (s == "on") return Value::enumeration("ClimateKeeperModeStateOn");
  if (s == "dog") return Value::enumeration("ClimateKeeperModeStateDog");
  if (s == "camp") return Value::enumeration("ClimateKeeperModeStateParty");
  return Value::enumeration("ClimateKeeperModeStateUnknown");
}

std::optional<Value> hvac_power(const json::object&, const json::value& v) {
  auto on = truth(v);
  if (!on) return std::nullopt;
  return Value::enumeration(*on ? "HvacPowerStateOn" : "HvacPowerStateOff");
}

// vehicle_state.sentry_mode is a boolean; the stream's SentryMode an enum.
std::optional<Value> sentry_mode(const json::object&, const json::value& v) {
  auto on = truth(v);
  if (!on) return std::nullopt;
  return Value::enumeration(*on ? "SentryModeStateArmed" : "SentryModeStateOff");
}

std::optional<Value> location(const json::object& section, const json::value& latitude) {
  const json::value* longitude = member(section, "longitude");
  auto lat = number(latitude);
  auto lon = longitude ? number(*longitude) : std::nullopt;
  if (!lat || !lon) return std::nullopt;
  return Value::location(*lat, *lon);
}

bool fast_charger(const json::object& section) {
  const json::value* v = member(section, "fast_charger_present");
  return v && truth(*v).value_or(false);
}

std::optional<Value> ac_power(const json::object& section, const json::value& v) {
  if (fast_charger(section)) return std::nullopt;
  return as_float(section, v);
}

std::optional<Value> dc_power(const json::object& section, const json::value& v) {
  if (!fast_charger(section)) return std::nullopt;
  return as_float(section, v);
}

// df, dr, pf, pr, ft, rt (0/1) -> the stream's DoorState object, keys in its order.
std::optional<Value> doors(const json::object& section, const json::value&) {
  constexpr std::array<std::pair<std::string_view, std::string_view>, 6> kDoors = {{
      {"df", "DriverFront"},
      {"dr", "DriverRear"},
      {"pf", "PassengerFront"},
      {"pr", "PassengerRear"},
      {"ft", "TrunkFront"},
      {"rt", "TrunkRear"},
  }};
  std::string out = "{";
  for (const auto& [key, name] : kDoors) {
    const json::value* v = member(section, key);
    auto open = v ? truth(*v) : std::nullopt;
    if (!open) return std::nullopt;  // all six or nothing
    if (out.size() > 1) out += ',';
    out += '"';
    out += name;
    out += "\":";
    out += *open ? "true" : "false";
  }
  out += '}';
  return Value::doors(std::move(out));
}

// The table. Order = output order; docs/fleet-api.md lists the same rows.
const std::array kRules{
    // charge_state
    Rule{{"charge_state", "battery_level", "BatteryLevel", Kind::Float, ""}, as_float},
    Rule{{"charge_state", "usable_battery_level", "Soc", Kind::Float,
          "usable level; the stream's Soc"},
         as_float},
    Rule{{"charge_state", "est_battery_range", "EstBatteryRange", Kind::Float, "miles"}, as_float},
    Rule{{"charge_state", "battery_range", "RatedRange", Kind::Float, "miles"}, as_float},
    Rule{{"charge_state", "ideal_battery_range", "IdealBatteryRange", Kind::Float, "miles"},
         as_float},
    Rule{{"charge_state", "charge_limit_soc", "ChargeLimitSoc", Kind::Int, ""}, as_int},
    Rule{{"charge_state", "charging_state", "ChargeState", Kind::Enum,
          "\"Charging\" → \"ChargeStateCharging\" (unknown text → ChargeStateUnknown)"},
         charge_state},
    Rule{{"charge_state", "charging_state", "DetailedChargeState", Kind::Enum,
          "\"Charging\" → \"DetailedChargeStateCharging\""},
         detailed_charge_state},
    Rule{{"charge_state", "charger_power", "ACChargingPower", Kind::Float,
          "kW; only when fast_charger_present is false"},
         ac_power},
    Rule{{"charge_state", "charger_power", "DCChargingPower", Kind::Float,
          "kW; only when fast_charger_present is true"},
         dc_power},
    Rule{{"charge_state", "charger_voltage", "ChargerVoltage", Kind::Float, "V"}, as_float},
    Rule{{"charge_state", "charger_actual_current", "ChargeAmps", Kind::Float, "A"}, as_float},
    Rule{{"charge_state", "charger_phases", "ChargerPhases", Kind::Int, ""}, as_int},
    Rule{{"charge_state", "charge_current_request", "ChargeCurrentRequest", Kind::Int, "A"},
         as_int},
    Rule{{"charge_state", "charge_current_request_max", "ChargeCurrentRequestMax", Kind::Int, "A"},
         as_int},
    Rule{{"charge_state", "charge_rate", "ChargeRateMilePerHour", Kind::Float, "mph of range"},
         as_float},
    Rule{{"charge_state", "time_to_full_charge", "TimeToFullCharge", Kind::Float, "hours"},
         as_float},
    Rule{{"charge_state", "fast_charger_present", "FastChargerPresent", Kind::Bool, ""}, as_bool},
    Rule{{"charge_state", "charge_port_door_open", "ChargePortDoorOpen", Kind::Bool, ""}, as_bool},
    Rule{{"charge_state", "charge_port_latch", "ChargePortLatch", Kind::Enum,
          "\"Engaged\" → \"ChargePortLatchEngaged\""},
         charge_port_latch},
    Rule{{"charge_state", "conn_charge_cable", "ChargingCableType", Kind::Enum,
          "\"IEC\" → \"CableTypeIEC\", \"<invalid>\" → \"CableTypeSNA\""},
         cable_type},
    // climate_state
    Rule{{"climate_state", "inside_temp", "InsideTemp", Kind::Float, "°C"}, as_float},
    Rule{{"climate_state", "outside_temp", "OutsideTemp", Kind::Float, "°C"}, as_float},
    Rule{{"climate_state", "driver_temp_setting", "HvacLeftTemperatureRequest", Kind::Float, "°C"},
         as_float},
    Rule{{"climate_state", "passenger_temp_setting", "HvacRightTemperatureRequest", Kind::Float,
          "°C"},
         as_float},
    Rule{{"climate_state", "is_climate_on", "HvacPowerState", Kind::Enum,
          "true → \"HvacPowerStateOn\", false → \"HvacPowerStateOff\""},
         hvac_power},
    Rule{{"climate_state", "climate_keeper_mode", "ClimateKeeperMode", Kind::Enum,
          "off/on/dog/camp → ClimateKeeperModeStateOff/On/Dog/Party"},
         climate_keeper},
    // drive_state
    Rule{{"drive_state", "speed", "VehicleSpeed", Kind::Float, "mph; null (not moving) → 0"},
         as_float},
    Rule{{"drive_state", "shift_state", "Gear", Kind::Enum,
          "\"D\" → \"ShiftStateD\" (P, R, N, SNA likewise); null → invalid"},
         shift_state},
    Rule{{"drive_state", "latitude", "Location", Kind::Location,
          "with drive_state.longitude; only present with the location_data endpoint"},
         location},
    Rule{{"drive_state", "heading", "GpsHeading", Kind::Float, "degrees"}, as_float},
    // vehicle_state
    Rule{{"vehicle_state", "odometer", "Odometer", Kind::Float, "miles"}, as_float},
    Rule{{"vehicle_state", "locked", "Locked", Kind::Bool, ""}, as_bool},
    Rule{{"vehicle_state", "sentry_mode", "SentryMode", Kind::Enum,
          "true → \"SentryModeStateArmed\", false → \"SentryModeStateOff\""},
         sentry_mode},
    Rule{{"vehicle_state", "df", "DoorState", Kind::Doors,
          "df, dr, pf, pr, ft, rt (0/1) → {\"DriverFront\":…,\"TrunkRear\":…}; all six needed"},
         doors},
    Rule{{"vehicle_state", "vehicle_name", "VehicleName", Kind::String, ""}, as_string},
    Rule{{"vehicle_state", "car_version", "Version", Kind::String,
          "first word: \"2024.44.25.1 abc\" → \"2024.44.25.1\""},
         firmware},
    Rule{{"vehicle_state", "tpms_pressure_fl", "TpmsPressureFl", Kind::Float, "bar"}, as_float},
    Rule{{"vehicle_state", "tpms_pressure_fr", "TpmsPressureFr", Kind::Float, "bar"}, as_float},
    Rule{{"vehicle_state", "tpms_pressure_rl", "TpmsPressureRl", Kind::Float, "bar"}, as_float},
    Rule{{"vehicle_state", "tpms_pressure_rr", "TpmsPressureRr", Kind::Float, "bar"}, as_float},
    // vehicle_config
    Rule{{"vehicle_config", "car_type", "CarType", Kind::Enum,
          "\"model3\" → \"CarTypeModel3\" (models, modelx, modely, cybertruck, semi)"},
         car_type},
    Rule{{"vehicle_config", "exterior_color", "ExteriorColor", Kind::String, ""}, as_string},
};

const std::array<FieldMapping, kRules.size()> kMappings = [] {
  std::array<FieldMapping, kRules.size()> out{};
  for (std::size_t i = 0; i < kRules.size(); ++i) out[i] = kRules[i].mapping;
  return out;
}();

signal::Timestamp section_time(const json::object& section, signal::Timestamp fallback) {
  const json::value* ts = member(section, "timestamp");
  if (ts == nullptr) return fallback;
  auto ms = number(*ts);
  if (!ms || *ms <= 0 || *ms > 1e15) return fallback;
  return static_cast<signal::Timestamp>(*ms) * 1000;
}

}  // namespace

std::span<const FieldMapping> vehicle_data_mappings() { return kMappings; }

std::vector<PolledField> map_vehicle_data(const json::object& response,
                                          signal::Timestamp fallback_ts) {
  std::vector<PolledField> out;
  out.reserve(kRules.size());
  for (const Rule& rule : kRules) {
    const json::value* section_value = member(response, rule.mapping.section);
    if (section_value == nullptr || !section_value->is_object()) continue;
    const json::object& section = section_value->get_object();
    const json::value* v = member(section, rule.mapping.key);
    if (v == nullptr) continue;
    const signal::Timestamp ts = section_time(section, fallback_ts);
    std::optional<Value> value;
    if (v->is_null()) {
      if (rule.mapping.field == "VehicleSpeed") {
        value = Value::float64(0);
      } else if (rule.convert == ac_power || rule.convert == dc_power || rule.convert == location) {
        // Which of AC/DC applies, or whether a location exists, is unknown: emit nothing.
        continue;
      } else {
        value = Value::invalid();
      }
    } else {
      value = rule.convert(section, *v);
    }
    if (!value) continue;  // a type we cannot read, or a conditional rule that does not apply
    out.push_back(PolledField{std::string(rule.mapping.field), std::move(*value), ts});
  }
  return out;
}

}  // namespace ts::fleet_api

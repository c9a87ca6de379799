// vehicle_data → Field mapping: every row of the table, nulls, conditional rows, the docs table.
#include "fleet_api/vehicle_data.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "fleet_api/responses.hpp"

namespace ts::fleet_api {
namespace {

using signal::Kind;
using signal::Value;

// Every key the table reads, with values that differ from each other.
constexpr std::string_view kFull = R"({"response":{
  "id": 100021, "vehicle_id": 99021, "vin": "5YJ3E1EA7JF000000", "display_name": "Sparky",
  "state": "online", "in_service": false, "access_type": "OWNER",
  "charge_state": {"timestamp": 1700000000123,
    "battery_level": 81, "usable_battery_level": 80, "est_battery_range": 241.52,
    "battery_range": 250.1, "ideal_battery_range": 260.2, "charge_limit_soc": 90,
    "charging_state": "Charging", "charger_power": 11, "charger_voltage": 240,
    "charger_actual_current": 32, "charger_phases": 1, "charge_current_request": 32,
    "charge_current_request_max": 48, "charge_rate": 28.5, "time_to_full_charge": 1.25,
    "fast_charger_present": false, "charge_port_door_open": true,
    "charge_port_latch": "Engaged", "conn_charge_cable": "SAE"},
  "climate_state": {"timestamp": 1700000000456, "inside_temp": 21.5, "outside_temp": 12.25,
    "driver_temp_setting": 20.5, "passenger_temp_setting": 21.0, "is_climate_on": true,
    "climate_keeper_mode": "dog"},
  "drive_state": {"timestamp": 1700000000789, "speed": 42, "shift_state": "D",
    "latitude": 37.412374, "longitude": -122.145867, "heading": 271},
  "vehicle_state": {"timestamp": 1700000001000, "odometer": 12345.678, "locked": false,
    "sentry_mode": true, "df": 1, "dr": 0, "pf": 0, "pr": 0, "ft": 0, "rt": 1,
    "vehicle_name": "Sparky", "car_version": "2024.44.25.1 1b2c3d4e5f",
    "tpms_pressure_fl": 2.9, "tpms_pressure_fr": 2.91, "tpms_pressure_rl": 2.85,
    "tpms_pressure_rr": 2.86},
  "vehicle_config": {"timestamp": 1700000001001, "car_type": "model3",
    "exterior_color": "MidnightSilver"}
}})";

std::map<std::string, PolledField> by_name(const std::vector<PolledField>& fields) {
  std::map<std::string, PolledField> out;
  for (const auto& f : fields) {
    EXPECT_TRUE(out.emplace(f.name, f).second) << "field twice: " << f.name;
  }
  return out;
}

TEST(VehicleData, MapsEveryRowOfTheTable) {
  auto data = parse_vehicle_data_response(kFull, 5);
  ASSERT_TRUE(data) << data.error().describe();
  EXPECT_EQ(data->vehicle.vin, "5YJ3E1EA7JF000000");
  EXPECT_EQ(data->vehicle.id, 100021);
  EXPECT_EQ(data->vehicle.state, VehicleState::Online);
  auto f = by_name(data->fields);

  const std::map<std::string, Value> expected = {
      {"BatteryLevel", Value::float64(81)},
      {"Soc", Value::float64(80)},
      {"EstBatteryRange", Value::float64(241.52)},
      {"RatedRange", Value::float64(250.1)},
      {"IdealBatteryRange", Value::float64(260.2)},
      {"ChargeLimitSoc", Value::int64(90)},
      {"ChargeState", Value::enumeration("ChargeStateCharging")},
      {"DetailedChargeState", Value::enumeration("DetailedChargeStateCharging")},
      {"ACChargingPower", Value::float64(11)},
      {"ChargerVoltage", Value::float64(240)},
      {"ChargeAmps", Value::float64(32)},
      {"ChargerPhases", Value::int64(1)},
      {"ChargeCurrentRequest", Value::int64(32)},
      {"ChargeCurrentRequestMax", Value::int64(48)},
      {"ChargeRateMilePerHour", Value::float64(28.5)},
      {"TimeToFullCharge", Value::float64(1.25)},
      {"FastChargerPresent", Value::boolean(false)},
      {"ChargePortDoorOpen", Value::boolean(true)},
      {"ChargePortLatch", Value::enumeration("ChargePortLatchEngaged")},
      {"ChargingCableType", Value::enumeration("CableTypeSAE")},
      {"InsideTemp", Value::float64(21.5)},
      {"OutsideTemp", Value::float64(12.25)},
      {"HvacLeftTemperatureRequest", Value::float64(20.5)},
      {"HvacRightTemperatureRequest", Value::float64(21.0)},
      {"HvacPowerState", Value::enumeration("HvacPowerStateOn")},
      {"ClimateKeeperMode", Value::enumeration("ClimateKeeperModeStateDog")},
      {"VehicleSpeed", Value::float64(42)},
      {"Gear", Value::enumeration("ShiftStateD")},
      {"Location", Value::location(37.412374, -122.145867)},
      {"GpsHeading", Value::float64(271)},
      {"Odometer", Value::float64(12345.678)},
      {"Locked", Value::boolean(false)},
      {"SentryMode", Value::enumeration("SentryModeStateArmed")},
      {"DoorState", Value::doors("{\"DriverFront\":true,\"DriverRear\":false,"
                                 "\"PassengerFront\":false,\"PassengerRear\":false,"
                                 "\"TrunkFront\":false,\"TrunkRear\":true}")},
      {"VehicleName", Value::string("Sparky")},
      {"Version", Value::string("2024.44.25.1")},
      {"TpmsPressureFl", Value::float64(2.9)},
      {"TpmsPressureFr", Value::float64(2.91)},
      {"TpmsPressureRl", Value::float64(2.85)},
      {"TpmsPressureRr", Value::float64(2.86)},
      {"CarType", Value::enumeration("CarTypeModel3")},
      {"ExteriorColor", Value::string("MidnightSilver")},
  };
  for (const auto& [name, value] : expected) {
    auto it = f.find(name);
    ASSERT_NE(it, f.end()) << name << " missing";
    EXPECT_EQ(it->second.value, value) << name << ": got " << signal::to_json(it->second.value);
  }
  EXPECT_EQ(f.size(), expected.size());  // DCChargingPower does not apply (AC charging)

  // Every table row except the DC twin of charger_power produced its field, with the kind the
  // table promises.
  for (const auto& m : vehicle_data_mappings()) {
    if (m.field == "DCChargingPower") continue;
    auto it = f.find(std::string(m.field));
    ASSERT_NE(it, f.end()) << m.section << "." << m.key;
    EXPECT_EQ(it->second.value.kind, m.kind) << m.field;
  }

  // Timestamps come from each section (ms → µs).
  EXPECT_EQ(f["BatteryLevel"].ts, 1700000000123000);
  EXPECT_EQ(f["InsideTemp"].ts, 1700000000456000);
  EXPECT_EQ(f["Location"].ts, 1700000000789000);
  EXPECT_EQ(f["Odometer"].ts, 1700000001000000);
  EXPECT_EQ(f["CarType"].ts, 1700000001001000);
  EXPECT_NE(data->raw_json.find("\"charge_state\""), std::string::npos);
}

TEST(VehicleData, NullsSleepingShapesAndFastCharging) {
  auto data = parse_vehicle_data_response(R"({"response":{"vin":"V1","state":"online",
    "drive_state":{"speed":null,"shift_state":null,"latitude":null,"longitude":null,"heading":90},
    "charge_state":{"battery_level":50,"charger_power":120,"fast_charger_present":true,
                    "charging_state":"SomethingNew","conn_charge_cable":"<invalid>",
                    "charge_limit_soc":null},
    "climate_state":{"inside_temp":"warm","climate_keeper_mode":"camp","is_climate_on":false},
    "vehicle_state":{"sentry_mode":false,"df":0,"car_version":"2025.2.6"}}})",
                                          777);
  ASSERT_TRUE(data) << data.error().describe();
  auto f = by_name(data->fields);
  EXPECT_EQ(f["VehicleSpeed"].value, Value::float64(0));  // null = not moving
  EXPECT_EQ(f["Gear"].value, Value::invalid());
  EXPECT_FALSE(f.contains("Location"));  // no location_data scope/endpoint
  EXPECT_EQ(f["GpsHeading"].ts, 777);    // no section timestamp
  EXPECT_FALSE(f.contains("ACChargingPower"));
  EXPECT_EQ(f["DCChargingPower"].value, Value::float64(120));
  EXPECT_EQ(f["ChargeState"].value, Value::enumeration("ChargeStateUnknown"));
  EXPECT_EQ(f["ChargingCableType"].value, Value::enumeration("CableTypeSNA"));
  EXPECT_EQ(f["ChargeLimitSoc"].value, Value::invalid());
  EXPECT_FALSE(f.contains("InsideTemp"));  // a string where a number belongs: skipped
  EXPECT_EQ(f["ClimateKeeperMode"].value, Value::enumeration("ClimateKeeperModeStateParty"));
  EXPECT_EQ(f["HvacPowerState"].value, Value::enumeration("HvacPowerStateOff"));
  EXPECT_EQ(f["SentryMode"].value, Value::enumeration("SentryModeStateOff"));
  EXPECT_FALSE(f.contains("DoorState"));  // needs all six door flags
  EXPECT_EQ(f["Version"].value, Value::string("2025.2.6"));
}

TEST(VehicleData, EmptyAndBrokenBodies) {
  auto empty = parse_vehicle_data_response(R"({"response":{"vin":"V1"}})", 1);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->fields.empty());
  EXPECT_EQ(parse_vehicle_data_response("<html>", 1).error().code,
            make_error_code(errc::bad_response));
  EXPECT_EQ(parse_vehicle_data_response(R"({"response":null,"error":"x"})", 1).error().code,
            make_error_code(errc::bad_response));
  EXPECT_EQ(parse_vehicle_data_response(R"({"response":[1]})", 1).error().code,
            make_error_code(errc::bad_response));
}

TEST(VehicleData, MappingTableHasNoDuplicatesAndUsesKnownSections) {
  std::set<std::string> fields;
  const std::set<std::string_view> sections = {"charge_state", "climate_state", "drive_state",
                                               "vehicle_state", "vehicle_config"};
  for (const auto& m : vehicle_data_mappings()) {
    EXPECT_TRUE(fields.insert(std::string(m.field)).second) << m.field;
    EXPECT_TRUE(sections.contains(m.section)) << m.section;
  }
}

// docs/fleet-api.md carries the same table: one row per mapping, `section.key` then `Field`.
TEST(VehicleData, DocsTableMatchesTheMappingTable) {
  std::ifstream in(std::string(TS_SOURCE_DIR) + "/docs/fleet-api.md");
  ASSERT_TRUE(in) << "docs/fleet-api.md not found";
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  std::size_t rows = 0;
  for (const auto& m : vehicle_data_mappings()) {
    const std::string row = "| `" + std::string(m.section) + "." + std::string(m.key) + "` | `" +
                            std::string(m.field) + "` | " + std::string(signal::kind_name(m.kind)) +
                            " |";
    EXPECT_NE(doc.find(row), std::string::npos) << "docs/fleet-api.md lacks the row: " << row;
    ++rows;
  }
  // …and no extra rows: count lines that look like mapping rows.
  std::size_t doc_rows = 0;
  std::istringstream lines(doc);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("| `") && line.find("_state.") != std::string::npos)
      ++doc_rows;
    else if (line.starts_with("| `vehicle_config."))
      ++doc_rows;
  }
  EXPECT_EQ(doc_rows, rows);
}

}  // namespace
}  // namespace ts::fleet_api

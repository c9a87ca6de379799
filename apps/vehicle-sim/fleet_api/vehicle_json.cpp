#include "fleet_api/vehicle_json.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <map>

#include "sim/rng.hpp"

namespace ts::vehicle_sim {
namespace {

namespace json = boost::json;

constexpr double kChargerVolts = 240;
constexpr int kMaxChargeAmps = 48;

double round_to(double v, double scale) { return std::round(v * scale) / scale; }

// The generator's record, by field.
class Record {
 public:
  Record(const SignalGenerator& g, std::int64_t now_ms) {
    g.fill_payload(payload_, field_catalogue().size(),
                   std::chrono::system_clock::time_point(std::chrono::milliseconds(now_ms)));
    for (const auto& d : payload_.data()) values_[d.key()] = &d.value();
  }
  const vd::Value& operator[](vd::Field f) const {
    auto it = values_.find(f);
    return it == values_.end() ? vd::Value::default_instance() : *it->second;
  }
  double number(vd::Field f) const {
    const vd::Value& v = (*this)[f];
    switch (v.value_case()) {
      case vd::Value::kDoubleValue:
        return v.double_value();
      case vd::Value::kFloatValue:
        return v.float_value();
      case vd::Value::kIntValue:
        return v.int_value();
      case vd::Value::kLongValue:
        return static_cast<double>(v.long_value());
      default:
        return 0;
    }
  }

 private:
  vd::Payload payload_;
  std::map<int, const vd::Value*> values_;
};

std::string shift_letter(vd::ShiftState s) {
  switch (s) {
    case vd::ShiftStateP:
      return "P";
    case vd::ShiftStateR:
      return "R";
    case vd::ShiftStateN:
      return "N";
    case vd::ShiftStateD:
      return "D";
    default:
      return "SNA";
  }
}

std::string car_type_of(const std::string& vin) {
  // VIN position 4 is the model line for Tesla (5YJ3… = Model 3, 5YJY… = Model Y, …).
  const char model = vin.size() > 3 ? vin[3] : '3';
  switch (model) {
    case 'S':
      return "models";
    case 'X':
      return "modelx";
    case 'Y':
      return "modely";
    default:
      return "model3";
  }
}

}  // namespace

bool is_vehicle_data_endpoint(const std::string& name) {
  static const std::set<std::string> kKnown = {"charge_state",
                                               "climate_state",
                                               "closures_state",
                                               "drive_state",
                                               "gui_settings",
                                               "location_data",
                                               "vehicle_config",
                                               "vehicle_state",
                                               "vehicle_data_combo",
                                               "charge_schedule_data",
                                               "preconditioning_schedule_data"};
  return kKnown.contains(name);
}

json::object vehicle_summary(const SimVehicle& v) {
  json::object o;
  o["id"] = v.id;
  o["vehicle_id"] = v.vehicle_id;
  o["vin"] = v.vin;
  o["color"] = nullptr;
  o["access_type"] = "OWNER";
  o["display_name"] = v.generator.profile().name;
  o["option_codes"] = nullptr;
  o["granular_access"] = json::object{{"hide_private", false}};
  o["tokens"] = json::array{};
  o["state"] = to_string(v.availability);
  o["in_service"] = false;
  o["id_s"] = std::to_string(v.id);
  o["calendar_enabled"] = true;
  o["api_version"] = 81;
  o["backseat_token"] = nullptr;
  o["backseat_token_updated_at"] = nullptr;
  return o;
}

json::object vehicle_data(const SimVehicle& v, const std::set<std::string>& requested,
                          std::int64_t now_ms) {
  const SignalGenerator& g = v.generator;
  const VehicleState& s = g.state();
  const VehicleProfile& p = g.profile();
  const Record rec(g, now_ms);
  auto want = [&](const char* section) {
    return requested.empty() || requested.contains(section) ||
           requested.contains("vehicle_data_combo");
  };
  const bool location = requested.contains("location_data");

  json::object o = vehicle_summary(v);
  o["user_id"] = 800001;

  if (want("charge_state")) {
    const bool charging = s.mode == Mode::Charging;
    const double power_kw = rec.number(vd::ACChargingPower);
    const double amps = charging ? std::round(power_kw * 1000.0 / kChargerVolts) : 0;
    const double soc = rec.number(vd::Soc);
    const int limit = p.charge_limit_soc;
    json::object c;
    c["battery_level"] = std::lround(rec.number(vd::BatteryLevel));
    c["usable_battery_level"] = std::lround(soc);
    c["battery_range"] = rec.number(vd::RatedRange);
    c["est_battery_range"] = rec.number(vd::EstBatteryRange);
    c["ideal_battery_range"] = rec.number(vd::RatedRange);
    c["charge_limit_soc"] = static_cast<std::int64_t>(rec.number(vd::ChargeLimitSoc));
    c["charge_limit_soc_std"] = 90;
    c["charge_limit_soc_min"] = 50;
    c["charge_limit_soc_max"] = 100;
    c["charging_state"] = owner_api_charging_state(rec[vd::ChargeState].charging_value());
    c["charger_power"] = std::lround(power_kw);
    c["charger_voltage"] = charging ? static_cast<std::int64_t>(kChargerVolts) : 0;
    c["charger_actual_current"] = static_cast<std::int64_t>(amps);
    c["charger_phases"] = charging ? json::value(1) : json::value(nullptr);
    c["charge_current_request"] =
        static_cast<std::int64_t>(std::round(p.ac_power_kw * 1000.0 / kChargerVolts));
    c["charge_current_request_max"] = kMaxChargeAmps;
    c["charge_rate"] = charging ? round_to(power_kw * p.rated_range_mi / p.pack_kwh, 10) : 0.0;
    c["charge_energy_added"] = 0.0;
    c["time_to_full_charge"] =
        charging && power_kw > 0 && soc < limit
            ? round_to((limit - soc) / 100.0 * p.pack_kwh / (power_kw * 0.92), 100)
            : 0.0;
    c["fast_charger_present"] = false;
    c["fast_charger_type"] = "<invalid>";
    c["charge_port_door_open"] = charging;
    c["charge_port_latch"] = charging ? "Engaged" : "Disengaged";
    c["conn_charge_cable"] = charging ? "SAE" : "<invalid>";
    c["scheduled_charging_pending"] = false;
    c["timestamp"] = now_ms;
    o["charge_state"] = std::move(c);
  }

  if (want("climate_state")) {
    const bool driving = s.mode == Mode::Driving;
    json::object c;
    c["inside_temp"] = rec.number(vd::InsideTemp);
    c["outside_temp"] = rec.number(vd::OutsideTemp);
    c["driver_temp_setting"] = 21.0;
    c["passenger_temp_setting"] = 21.0;
    c["is_climate_on"] = driving;
    c["is_auto_conditioning_on"] = driving;
    c["is_preconditioning"] = false;
    c["climate_keeper_mode"] = "off";
    c["fan_status"] = driving ? 3 : 0;
    c["timestamp"] = now_ms;
    o["climate_state"] = std::move(c);
  }

  if (want("drive_state") || location) {
    const vd::ShiftState gear = rec[vd::Gear].shift_state_value();
    const double speed = rec.number(vd::VehicleSpeed);
    json::object d;
    // vehicle_data reports no speed while the car stands still.
    d["speed"] = speed > 0 ? json::value(std::lround(speed)) : json::value(nullptr);
    d["shift_state"] = shift_letter(gear);
    d["heading"] = std::lround(rec.number(vd::GpsHeading));
    d["power"] = std::lround(rec.number(vd::PackVoltage) * rec.number(vd::PackCurrent) / 1000.0);
    if (location) {
      const auto& loc = rec[vd::Location].location_value();
      d["latitude"] = loc.latitude();
      d["longitude"] = loc.longitude();
      d["native_latitude"] = loc.latitude();
      d["native_longitude"] = loc.longitude();
      d["native_location_supported"] = 1;
      d["native_type"] = "wgs";
      d["gps_as_of"] = now_ms / 1000;
    }
    d["timestamp"] = now_ms;
    o["drive_state"] = std::move(d);
  }

  if (want("gui_settings")) {
    json::object gs;
    gs["gui_distance_units"] = "mi/hr";
    gs["gui_temperature_units"] = "C";
    gs["gui_charge_rate_units"] = "mi/hr";
    gs["gui_range_display"] = "Rated";
    gs["gui_24_hour_time"] = true;
    gs["timestamp"] = now_ms;
    o["gui_settings"] = std::move(gs);
  }

  if (want("vehicle_config")) {
    json::object c;
    c["car_type"] = car_type_of(v.vin);
    c["trim_badging"] = "74d";
    c["exterior_color"] = "MidnightSilver";
    c["wheel_type"] = "Pinwheel18";
    c["charge_port_type"] = "US";
    c["timestamp"] = now_ms;
    o["vehicle_config"] = std::move(c);
  }

  if (want("vehicle_state")) {
    const auto& doors = rec[vd::DoorState].door_value();
    json::object c;
    c["odometer"] = rec.number(vd::Odometer);
    c["locked"] = rec[vd::Locked].boolean_value();
    c["sentry_mode"] = rec[vd::SentryMode].sentry_mode_state_value() != vd::SentryModeStateOff;
    c["sentry_mode_available"] = true;
    c["df"] = doors.driverfront() ? 1 : 0;
    c["dr"] = doors.driverrear() ? 1 : 0;
    c["pf"] = doors.passengerfront() ? 1 : 0;
    c["pr"] = doors.passengerrear() ? 1 : 0;
    c["ft"] = doors.trunkfront() ? 1 : 0;
    c["rt"] = doors.trunkrear() ? 1 : 0;
    c["vehicle_name"] = rec[vd::VehicleName].string_value();
    c["car_version"] = fmt::format("{} {:010x}", rec[vd::Version].string_value(),
                                   fnv1a(rec[vd::Version].string_value()) & 0xffffffffffULL);
    c["tpms_pressure_fl"] = rec.number(vd::TpmsPressureFl);
    c["tpms_pressure_fr"] = rec.number(vd::TpmsPressureFr);
    c["tpms_pressure_rl"] = rec.number(vd::TpmsPressureRl);
    c["tpms_pressure_rr"] = rec.number(vd::TpmsPressureRr);
    c["is_user_present"] = s.mode == Mode::Driving;
    c["api_version"] = 81;
    c["timestamp"] = now_ms;
    o["vehicle_state"] = std::move(c);
  }
  return o;
}

}  // namespace ts::vehicle_sim

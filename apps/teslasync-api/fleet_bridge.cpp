#include "fleet_bridge.hpp"

#include "core/log.hpp"
#include "services.hpp"

namespace ts::api {
namespace {

polling::VehicleData failure(const fleet_api::Error& e) {
  polling::VehicleData d;
  switch (static_cast<fleet_api::errc>(e.code.value())) {
    case fleet_api::errc::vehicle_unavailable:
      d.outcome.kind = polling::PollOutcome::Kind::Asleep;
      break;
    case fleet_api::errc::rate_limited:
      d.outcome.kind = polling::PollOutcome::Kind::RateLimited;
      d.outcome.retry_after = e.retry_after;
      break;
    default:
      d.outcome.kind = polling::PollOutcome::Kind::Failed;
      break;
  }
  d.error = e.describe();
  return d;
}

polling::Activity activity_of(const std::vector<fleet_api::PolledField>& fields) {
  for (const auto& f : fields) {
    if (f.name == "Gear" && (f.value.text == "ShiftStateD" || f.value.text == "ShiftStateR")) {
      return polling::Activity::Driving;
    }
  }
  for (const auto& f : fields) {
    if ((f.name == "ChargeState" || f.name == "DetailedChargeState") &&
        f.value.text.find("Charging") != std::string::npos) {
      return polling::Activity::Charging;
    }
  }
  return polling::Activity::Idle;
}

}  // namespace

polling::VehicleData FleetVehicleSource::fetch(std::string_view vin) {
  auto vehicle = client_.vehicle(vin);
  if (!vehicle) return failure(vehicle.error());
  if (vehicle->state == fleet_api::VehicleState::Asleep ||
      vehicle->state == fleet_api::VehicleState::Offline) {
    polling::VehicleData d;
    d.outcome.kind = polling::PollOutcome::Kind::Asleep;
    return d;
  }
  auto data = client_.vehicle_data(vin);
  if (!data) return failure(data.error());
  polling::VehicleData d;
  d.outcome = {.kind = polling::PollOutcome::Kind::Ok, .activity = activity_of(data->fields)};
  for (auto& f : data->fields) {
    d.values.emplace_back(f.name, f.value);
    if (f.ts > d.measured_at) d.measured_at = f.ts;
  }
  return d;
}

std::string refresh_fleet_errors(Services& s) {
  if (!s.fleet) return "TESLA_FLEET_API_BASE_URL is not set";
  auto errors = s.fleet->partner_telemetry_errors();
  if (!errors) {
    return "Tesla fleet_telemetry_errors: " + errors.error().describe();
  }
  const auto now = signal::now();
  std::vector<storage::FleetError> rows;
  for (const auto& e : *errors) {
    rows.push_back({.vin = e.vin,
                    .error_name = e.error_name,
                    .error = e.error,
                    .created_at = e.created_at_us.value_or(0),
                    .name = e.name,
                    .txid = e.txid,
                    .fetched_at = now});
  }
  if (auto r = s.db.upsert_fleet_errors(rows); !r) return "storing errors: " + r.error().message();
  log::get("poller")->info("fetched {} fleet telemetry errors from Tesla", rows.size());
  return {};
}

std::string refresh_error_vins(Services& s) {
  if (!s.fleet) return "TESLA_FLEET_API_BASE_URL is not set";
  auto vins = s.fleet->partner_telemetry_error_vins();
  if (!vins) {
    return "Tesla fleet_telemetry_error_vins: " + vins.error().describe();
  }
  if (auto r = s.db.replace_error_vins(*vins, signal::now()); !r) {
    return "storing error VINs: " + r.error().message();
  }
  return {};
}

}  // namespace ts::api

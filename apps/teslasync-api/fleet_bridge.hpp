#pragma once
/// The Fleet API as the poller and the diagnostics see it.
#include "fleet_api/client.hpp"
#include "polling/poller.hpp"

namespace ts::api {

/// VehicleSource over the Fleet API client: GET /vehicles/{vin} first (does not wake the car);
/// asleep or offline -> Asleep without asking for data; else vehicle_data (408/504 -> Asleep).
/// Never calls wake_up. Activity from the polled Gear/ChargeState values.
class FleetVehicleSource final : public polling::VehicleSource {
 public:
  explicit FleetVehicleSource(fleet_api::Client& client) : client_(client) {}
  polling::VehicleData fetch(std::string_view vin) override;

 private:
  fleet_api::Client& client_;
};

}  // namespace ts::api

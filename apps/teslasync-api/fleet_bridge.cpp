#include "fleet_bridge.hpp"

#include <thread>

#include "auth.hpp"
#include "core/log.hpp"
#include "services.hpp"
#include "storage/database.hpp"

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

RefreshTokenChoice choose_refresh_token(std::string_view env_token,
                                        const std::optional<std::string>& saved,
                                        const std::optional<std::string>& saved_seed_sha256) {
  const bool have_saved = saved && !saved->empty();
  if (env_token.empty()) return {.token = have_saved ? *saved : std::string()};
  if (!have_saved) return {.token = std::string(env_token), .save_token = true, .save_seed = true};
  const auto env_hash = token_hash(env_token);
  if (!saved_seed_sha256) return {.token = *saved, .save_seed = true};
  if (*saved_seed_sha256 != env_hash) {
    return {.token = std::string(env_token), .save_token = true, .save_seed = true};
  }
  return {.token = *saved};
}

RefreshTokenStore::RefreshTokenStore(Write write, core::MetricsRegistry* metrics,
                                     std::vector<std::chrono::milliseconds> backoff, Sleep sleep)
    : write_(std::move(write)), backoff_(std::move(backoff)), sleep_(std::move(sleep)) {
  if (!sleep_) sleep_ = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  if (metrics) {
    failures_ = &metrics
                     ->counter("teslasync_fleet_api_refresh_token_save_failures_total",
                               "Failed attempts to save a rotated Tesla refresh token.")
                     .get();
  }
}

RefreshTokenStore::RefreshTokenStore(storage::Database& db, core::MetricsRegistry* metrics)
    : RefreshTokenStore([&db](std::string_view key,
                              std::string_view value) { return db.set_setting(key, value); },
                        metrics) {}

bool RefreshTokenStore::save(std::string_view refresh_token,
                             std::optional<std::string> seed_sha256) {
  std::lock_guard lock(mutex_);
  auto logger = log::get("poller");
  for (std::size_t attempt = 0;; ++attempt) {
    Result<void> r = write_(kRefreshTokenSetting, refresh_token);
    if (r && seed_sha256) r = write_(kRefreshTokenSeedSetting, *seed_sha256);
    if (r) {
      if (pending_) logger->info("the Tesla refresh token is saved again");
      pending_ = false;
      return true;
    }
    failures_->inc();
    if (attempt >= backoff_.size()) {
      pending_ = true;
      logger->error(
          "saving the rotated Tesla refresh token failed {} times ({}); it is in memory "
          "only and is saved with the next token refresh. A restart before then needs a "
          "new TESLA_REFRESH_TOKEN",
          attempt + 1, r.error().message());
      return false;
    }
    logger->error("saving the rotated Tesla refresh token failed ({}); retrying in {} ms",
                  r.error().message(), backoff_[attempt].count());
    sleep_(backoff_[attempt]);
  }
}

std::uint64_t RefreshTokenStore::failures() const { return failures_->value(); }

bool RefreshTokenStore::pending() const {
  std::lock_guard lock(mutex_);
  return pending_;
}

std::string load_refresh_token(storage::Database& db, std::string_view env_token,
                               RefreshTokenStore& store) {
  auto logger = log::get("poller");
  auto read = [&](std::string_view key) -> std::optional<std::string> {
    auto r = db.get_setting(key);
    if (!r) {
      logger->error("reading setting {} failed: {}", key, r.error().message());
      return std::nullopt;
    }
    return *r;
  };
  const auto saved = read(kRefreshTokenSetting);
  const auto seed = read(kRefreshTokenSeedSetting);
  auto choice = choose_refresh_token(env_token, saved, seed);
  if (choice.save_token) {
    if (saved && !saved->empty()) {
      logger->info(
          "TESLA_REFRESH_TOKEN changed since the saved token was seeded from it: using it");
    }
    store.save(choice.token, token_hash(env_token));
  } else if (choice.save_seed) {
    if (auto r = db.set_setting(kRefreshTokenSeedSetting, token_hash(env_token)); !r) {
      logger->warn("recording the TESLA_REFRESH_TOKEN seed failed: {}", r.error().message());
    }
  }
  return choice.token;
}

}  // namespace ts::api

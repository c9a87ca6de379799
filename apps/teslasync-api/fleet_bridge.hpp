#pragma once
/// The Fleet API as the poller and the diagnostics see it.
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/metrics.hpp"
#include "core/result.hpp"
#include "fleet_api/client.hpp"
#include "polling/poller.hpp"

namespace ts::storage {
class Database;
}

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

/// Settings keys of the Tesla user refresh token (docs/teslasync-api.md "Fleet API tokens").
inline constexpr std::string_view kRefreshTokenSetting = "tesla_refresh_token";
/// SHA-256 (hex) of the TESLA_REFRESH_TOKEN value the saved token descends from.
inline constexpr std::string_view kRefreshTokenSeedSetting = "tesla_refresh_token_env_sha256";

/// Which refresh token to start with. Tesla rotates refresh tokens, so the saved (rotated) one
/// normally wins; but when TESLA_REFRESH_TOKEN differs from the value the saved one was seeded
/// from, the operator has supplied a new one and it wins.
struct RefreshTokenChoice {
  std::string token;        ///< "" = none (the client then has only app credentials)
  bool save_token = false;  ///< the environment's token won: persist it as the current token
  bool save_seed = false;   ///< persist the hash of the environment's token as the seed
};
/// Pure. `env_token` is TESLA_REFRESH_TOKEN ("" = unset); `saved` and `saved_seed_sha256` are the
/// settings above. A saved token without a recorded seed (saved by an older version) keeps
/// winning, and the current environment value is recorded as its seed.
RefreshTokenChoice choose_refresh_token(std::string_view env_token,
                                        const std::optional<std::string>& saved,
                                        const std::optional<std::string>& saved_seed_sha256);

/// Persists rotated refresh tokens. A failed save is an error: logged at error, counted in
/// `teslasync_fleet_api_refresh_token_save_failures_total`, retried `backoff.size()` more times
/// (sleeping in between, on the calling thread: the Fleet API client's, i.e. the poller's), and,
/// if still failing, kept pending and written with the next token event (whose token supersedes
/// it). Thread-safe (one mutex; saves are serialized).
class RefreshTokenStore {
 public:
  using Write = std::function<Result<void>(std::string_view key, std::string_view value)>;
  using Sleep = std::function<void(std::chrono::milliseconds)>;

  RefreshTokenStore(Write write, core::MetricsRegistry* metrics,
                    std::vector<std::chrono::milliseconds> backoff =
                        {std::chrono::milliseconds(200), std::chrono::seconds(1),
                         std::chrono::seconds(3)},
                    Sleep sleep = nullptr);
  /// Over `db.set_setting`.
  RefreshTokenStore(storage::Database& db, core::MetricsRegistry* metrics);

  /// Saves a rotated token (and `seed_sha256` too when given). True once written; false when every
  /// attempt failed (the token is then pending until the next call).
  bool save(std::string_view refresh_token, std::optional<std::string> seed_sha256 = std::nullopt);
  /// Failed attempts so far.
  std::uint64_t failures() const;
  /// True while the newest token is not saved.
  bool pending() const;

 private:
  Write write_;
  std::vector<std::chrono::milliseconds> backoff_;
  Sleep sleep_;
  core::Counter own_failures_;
  core::Counter* failures_ = &own_failures_;
  mutable std::mutex mutex_;  // guards pending_ and serializes saves
  bool pending_ = false;
};

/// Start-up: reads the saved token and seed, picks with choose_refresh_token, and persists what
/// the choice says (through `store`, so a failure is reported and retried like any other).
/// Returns the token to give the Fleet API client. A database that cannot be read counts as
/// nothing saved (logged).
std::string load_refresh_token(storage::Database& db, std::string_view env_token,
                               RefreshTokenStore& store);

}  // namespace ts::api

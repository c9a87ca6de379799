#pragma once
/// Tesla Fleet API client for teslasync-api's poller and diagnostics (docs/fleet-api.md).
///
/// Owner: teslasync-api's composition root, which hands a reference to the poller and the
/// diagnostics handlers. Thread-safe: any thread may call any method, concurrently; calls are
/// blocking (HTTP/1.1 over TLS, or plain HTTP to loopback for vehicle-sim) and each is bounded
/// by `request_timeout` (plus one token request when a token must be fetched first, and one
/// retry after a 401). Never call it from an io_context shard: run it on the poller's own
/// thread (or a blocking pool).
///
/// Tokens: the partner token (client credentials) is fetched on first use and again shortly
/// before it expires; partner endpoints use it. The user token (vehicle endpoints) is refreshed
/// with the refresh token when missing or about to expire; Tesla rotates refresh tokens, so
/// every refresh hands the new pair to `on_user_token` for the caller to persist. A 401 makes the
/// client get a new token once and retry the request once; a second 401 is errc::unauthorized.
///
/// What the client never does: wake a car (vehicle_data of a sleeping car is
/// errc::vehicle_unavailable; only an explicit wake_up() wakes it, and the poller must not call
/// it), sleep or retry on 429 (errc::rate_limited carries Retry-After; the caller schedules the
/// next attempt), follow redirects.
///
/// Metrics (`teslasync_fleet_api_*`, docs/metrics.md) go to `metrics` if given.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "fleet_api/errc.hpp"
#include "fleet_api/http_transport.hpp"
#include "fleet_api/types.hpp"
#include "fleet_api/vehicle_data.hpp"

namespace ts::core {
class MetricsRegistry;
}

namespace ts::fleet_api {

/// Tesla's default token endpoint base (POST <auth_url>/oauth2/v3/token).
inline constexpr std::string_view kTeslaAuthUrl = "https://auth.tesla.com";

struct ClientOptions {
  /// Fleet API region (TESLA_FLEET_API_BASE_URL), e.g.
  /// https://fleet-api.prd.na.vn.cloud.tesla.com, or http://127.0.0.1:8443 for vehicle-sim.
  std::string base_url;
  /// Token endpoint base; POST <auth_url>/oauth2/v3/token. Empty = kTeslaAuthUrl. For
  /// vehicle-sim use the same URL as base_url.
  std::string auth_url;
  std::string client_id;      ///< TESLA_CLIENT_ID
  std::string client_secret;  ///< TESLA_CLIENT_SECRET (partner token only)
  /// Scopes asked for with the partner token.
  std::string scope = "openid user_data vehicle_device_data vehicle_location";
  /// `audience` of the partner token; empty = base_url (what Tesla expects).
  std::string audience;
  /// `?domain=` on the partner fleet_telemetry_errors / error_vins calls (optional).
  std::string partner_domain;

  /// The user's refresh token to start with (from the OAuth authorization-code flow, or the
  /// last one `on_user_token` persisted). Without one, vehicle endpoints fail unauthorized.
  std::string user_refresh_token;
  /// Optionally a still-valid user access token and its expiry, to avoid a refresh at start
  /// (no expiry = used until the API answers 401).
  std::string user_access_token;
  std::chrono::system_clock::time_point user_access_expires_at{};
  /// Called after every successful user-token refresh with the new pair (persist it: the old
  /// refresh token may no longer work). Runs on the calling thread with the client's token lock
  /// held: it must not call back into the client. Exceptions it throws are logged and ignored.
  std::function<void(const Token&)> on_user_token;

  std::string ca_file;               ///< trust anchors instead of the system store (tests)
  bool allow_insecure_http = false;  ///< http:// to a non-loopback host (never in production)
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds request_timeout{30'000};  ///< each request, incl. vehicle_data
  /// A token is renewed when it expires within this margin.
  std::chrono::seconds token_refresh_margin{60};
  core::MetricsRegistry* metrics = nullptr;  ///< must outlive the client; null = not exported
  std::string user_agent = "teslasync-telemetry";
};

class Client {
 public:
  /// Checks the options (URLs parse; http only to loopback unless allowed; a client_id is set)
  /// and prepares TLS; connects nothing. Throws std::invalid_argument / std::runtime_error naming
  /// the option.
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // --- tokens -------------------------------------------------------------------------------
  /// The cached partner token, fetched (grant_type=client_credentials) if missing or expiring.
  Result<Token> partner_token();
  /// Refreshes the user token now (grant_type=refresh_token) and reports it to on_user_token.
  Result<Token> refresh_user_token();

  // --- vehicles (user token) ----------------------------------------------------------------
  /// GET /api/1/vehicles, every page.
  Result<std::vector<Vehicle>> vehicles();
  /// GET /api/1/vehicles/{vin}: includes `state`; does not wake the car.
  Result<Vehicle> vehicle(std::string_view vin);
  /// GET /api/1/vehicles/{vin}/vehicle_data?endpoints=… (';'-separated). 408/504, or a 200
  /// whose `state` is asleep/offline (cached data), = errc::vehicle_unavailable: the car sleeps
  /// or is offline and was not woken.
  Result<VehicleData> vehicle_data(std::string_view vin,
                                   std::string_view endpoints = kPollEndpoints);
  /// POST /api/1/vehicles/{vin}/wake_up. Costly (Tesla bills wakes at 50x a data request) and it
  /// drains the 12 V battery: only for an explicit user action, never from the poller. Returns
  /// the vehicle as the API reports it right after the call (often still "asleep").
  Result<Vehicle> wake_up(std::string_view vin);

  // --- fleet telemetry config (user token) ----------------------------------------------------
  /// POST /api/1/vehicles/fleet_telemetry_config {"vins":[…],"config":{…}}. Real Tesla requires
  /// this to go through the vehicle-command proxy (HTTP 412 = errc::rejected otherwise): point
  /// base_url at the proxy, or sign the config and use create_telemetry_config_jws.
  Result<ConfigUpdate> create_telemetry_config(const std::vector<std::string>& vins,
                                               const TelemetryConfig& config);
  /// POST /api/1/vehicles/fleet_telemetry_config_jws {"vins":[…],"token":"<JWS>"}.
  Result<ConfigUpdate> create_telemetry_config_jws(const std::vector<std::string>& vins,
                                                   std::string_view jws);
  /// GET /api/1/vehicles/{vin}/fleet_telemetry_config.
  Result<TelemetryConfigStatus> telemetry_config(std::string_view vin);
  /// DELETE /api/1/vehicles/{vin}/fleet_telemetry_config (updated_vehicles: 1, or 0 if none).
  Result<ConfigUpdate> delete_telemetry_config(std::string_view vin);
  /// POST /api/1/vehicles/fleet_status {"vins":[…]}: key pairing and firmware per car.
  Result<FleetStatus> fleet_status(const std::vector<std::string>& vins);

  // --- diagnostics ----------------------------------------------------------------------------
  /// GET /api/1/vehicles/{vin}/fleet_telemetry_errors (user token).
  Result<std::vector<TelemetryError>> vehicle_telemetry_errors(std::string_view vin);
  /// GET /api/1/partner_accounts/fleet_telemetry_errors (partner token).
  Result<std::vector<TelemetryError>> partner_telemetry_errors();
  /// GET /api/1/partner_accounts/fleet_telemetry_error_vins (partner token), any of the three
  /// response shapes.
  Result<std::vector<std::string>> partner_telemetry_error_vins();

  const ClientOptions& options() const { return options_; }

 private:
  enum class Auth { Partner, User };
  struct Metrics;

  // Sends one API request with the token `auth` needs; on 401 renews the token and retries once.
  Result<HttpResponse> call(std::string_view endpoint, Auth auth, std::string method,
                            std::string target, std::string body = {});
  Result<std::string> access_token(Auth auth, const std::string& rejected);
  Result<Token> fetch_partner_token_locked();
  Result<Token> refresh_user_token_locked();
  Result<HttpResponse> token_request(std::string_view grant, std::string form);
  void count(std::string_view endpoint, const Result<HttpResponse>& r);
  void warn(std::string_view what, const std::string& text);

  ClientOptions options_;
  std::unique_ptr<HttpTransport> api_;   // base_url
  std::unique_ptr<HttpTransport> auth_;  // auth_url (its own connection pool)
  std::unique_ptr<Metrics> metrics_;
  std::mutex token_mutex_;  // guards partner_ and user_, and serialises token requests
  Token partner_;
  Token user_;
  std::mutex warn_mutex_;  // guards the warning rate limiter's state
  std::chrono::steady_clock::time_point last_warn_{};
  unsigned suppressed_warnings_ = 0;
};

}  // namespace ts::fleet_api

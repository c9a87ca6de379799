#pragma once
/// The Fleet API stand-in behind `vehicle-sim fleet-api` (DESIGN.md contract): Tesla's endpoints
/// with Tesla's response shapes, over simulated cars, plus unauthenticated `/sim/…` controls to
/// inject what the real API does to its clients (sleeping cars, 429s, 5xx, broken bodies,
/// expired tokens, fleet telemetry errors). Endpoints, switches and controls: apps/vehicle-sim/
/// README.md and docs/fleet-api.md.
///
/// `handle` maps one HTTP request to its response (the http::Server / TLS listener handler). It
/// and everything else here run on one thread, the io_context of the listener: not thread-safe.
/// Never throws for a bad request (answers 4xx); throws std::invalid_argument from the
/// constructor and the control setters for bad options.
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fleet_api/sim_fleet.hpp"
#include "fleet_api/tokens.hpp"
#include "http/server.hpp"

namespace ts::vehicle_sim {

/// An injected failure for the next `count` requests to `endpoint` (or to any API endpoint,
/// token endpoint included, when `endpoint` is empty).
struct Fault {
  enum class Kind {
    RateLimit,     ///< 429 with Retry-After: retry_after_s
    ServerError,   ///< `status` (5xx) with Tesla's error envelope
    Garbage,       ///< 200 with a body that is not JSON
    Unauthorized,  ///< 401 as for a revoked token (the token itself stays valid)
  };
  Kind kind = Kind::RateLimit;
  std::string endpoint;
  unsigned count = 1;
  unsigned status = 503;
  unsigned retry_after_s = 30;
};

struct StandInOptions {
  std::vector<std::string> vins;  ///< the account's cars (at least one)
  SimFleetOptions fleet;
  TokenOptions tokens;
  /// Shape of partner fleet_telemetry_error_vins: "fleet_telemetry_error_vins" (the documented
  /// {"response":{"fleet_telemetry_error_vins":[…]}}), "vins" ({"response":{"vins":[…]}}, as
  /// TeslaSync's Go code read it) or "bare" ([…], as one test double answers).
  std::string error_vins_shape = "fleet_telemetry_error_vins";
  /// Answer the unsigned POST …/fleet_telemetry_config with 412, as real Tesla does when the
  /// request did not go through the vehicle-command proxy (…_jws still works).
  bool require_jws = false;
  /// vehicle_data of an asleep/offline car answers 200 with its last data and its `state`
  /// ("may return cached data if offline", Tesla's docs) instead of 408. It still never wakes it.
  bool cached_when_unavailable = false;
};

class StandIn {
 public:
  /// `now` returns monotonic seconds (default: steady_clock); tests may pass their own.
  explicit StandIn(StandInOptions options, std::function<double()> now = {});

  http::Response handle(const http::Request& request);

  SimFleet& fleet() { return fleet_; }
  TokenIssuer& tokens() { return tokens_; }
  void add_fault(Fault fault);
  void clear_faults() { faults_.clear(); }
  void add_telemetry_error(SimVehicle& v, std::string error_name, std::string error);
  /// An explicit error-VIN list; nullopt = the VINs that have telemetry errors.
  void set_error_vins(std::optional<std::vector<std::string>> vins) {
    error_vins_ = std::move(vins);
  }
  void set_error_vins_shape(const std::string& shape);  ///< throws std::invalid_argument

  /// GET /sim/stats as JSON.
  std::string stats_json() const;

  /// The endpoint names used for faults and statistics (also fleet_api::Client's metric labels).
  static const std::vector<std::string_view>& endpoint_names();

 private:
  struct Route {
    std::string endpoint;  ///< "" = no such path
    std::string vehicle;   ///< {vin} segment, when the path has one
    bool method_ok = true;
  };
  static Route route(const std::string& method, const std::string& path);

  http::Response api(const http::Request& req, const Route& route, double now);
  http::Response control(const http::Request& req, const std::string& path);
  std::optional<http::Response> take_fault(const std::string& endpoint);
  std::optional<http::Response> check_auth(const http::Request& req, const std::string& endpoint,
                                           double now);

  http::Response token(const http::Request& req, double now);
  http::Response vehicles(const http::Request& req);
  http::Response vehicle_data(const http::Request& req, SimVehicle& v);
  http::Response config_create(const http::Request& req, bool jws);
  http::Response config_get(SimVehicle& v);
  http::Response config_delete(SimVehicle& v);
  http::Response fleet_status(const http::Request& req);
  http::Response vehicle_errors(SimVehicle& v);
  http::Response partner_errors();
  http::Response partner_error_vins();

  std::function<double()> now_;
  SimFleet fleet_;
  TokenIssuer tokens_;
  std::string error_vins_shape_;
  bool require_jws_;
  bool cached_when_unavailable_;
  std::optional<std::vector<std::string>> error_vins_;
  std::deque<Fault> faults_;
  std::uint64_t error_serial_ = 0;
  std::map<std::string, std::uint64_t> requests_;                       // by endpoint
  std::map<std::string, std::map<unsigned, std::uint64_t>> responses_;  // endpoint → status → n
  std::uint64_t faults_served_ = 0;
};

}  // namespace ts::vehicle_sim

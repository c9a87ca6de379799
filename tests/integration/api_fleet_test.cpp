// teslasync-api against vehicle-sim's Fleet API stand-in, with real processes (Mosquitto,
// telemetry-server, teslasync-api, vehicle-sim run and vehicle-sim fleet-api):
// - a stale stream starts the fallback poller (rows with source "poll", the stand-in's values)
//   and a stream that comes back stops it;
// - an asleep car is not woken and not polled for data, the poller backs off, and polling
//   resumes once the car is awake;
// - the fleet telemetry diagnostics: refresh on request and on schedule, the documented shapes,
//   upserts without duplicates, paging, and a clear error when Tesla answers 429 or 5xx.
//
// The stand-in's cars are frozen (--time-scale 0) and never fall asleep by themselves, so what a
// poll stores can be compared with what the stand-in serves, and only the test puts a car to
// sleep. Every wait is bounded; "nothing happens" is checked as a bounded wait that must not
// succeed, over a window derived from the configured intervals.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "api_pipeline.hpp"
#include "signal/signal.hpp"
#include "support/http_client.hpp"
#include "support/ports.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/wait_for.hpp"

namespace ts::integration {
namespace {

using namespace std::chrono_literals;
using testsupport::http_request;
using testsupport::wait_for;
namespace json = boost::json;

constexpr const char* kClientId = "teslasync-it";
constexpr const char* kClientSecret = "it-secret";
constexpr const char* kRefreshToken = "vehicle-sim-refresh-token";  // the stand-in's default
// A car of the Fleet API account that teslasync-api does not have registered.
constexpr const char* kOtherVin = "5YJ3E1EA7KF000103";

using Env = std::vector<std::pair<std::string, std::string>>;

/// `vehicle-sim fleet-api` on a free port, with the account's cars frozen and awake.
class FleetStandIn {
 public:
  explicit FleetStandIn(std::vector<std::string> vins) {
    port_ = testsupport::free_port();
    std::vector<std::string> argv = {std::string(TS_BIN_DIR) + "/vehicle-sim", "fleet-api",
                                     "--listen", "127.0.0.1:" + std::to_string(port_),
                                     "--client-id", kClientId, "--client-secret", kClientSecret,
                                     "--time-scale", "0", "--sleep-after", "0"};
    for (const auto& vin : vins) {
      argv.push_back("--vin");
      argv.push_back(vin);
    }
    process_ = std::make_unique<testsupport::Process>(testsupport::Process::start(
        {.argv = argv, .output_dir = dir_.path(), .name = "fleet-api"}));
    auto up = wait_for([this] { return testsupport::tcp_connectable(port_); }, 20s,
                       "the Fleet API stand-in listening");
    EXPECT_TRUE(up) << process_->stderr_text();
  }
  ~FleetStandIn() {
    if (process_ && process_->running()) process_->terminate(5s);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  /// teslasync-api's environment for this stand-in, plus `more`.
  Env api_env(Env more) const {
    Env env = {{"TESLA_FLEET_API_BASE_URL", url()},
               {"TESLA_AUTH_BASE_URL", url()},
               {"TESLA_CLIENT_ID", kClientId},
               {"TESLA_CLIENT_SECRET", kClientSecret},
               {"TESLA_REFRESH_TOKEN", kRefreshToken}};
    env.insert(env.end(), more.begin(), more.end());
    return env;
  }

  /// A /sim/ control; its JSON answer (a test failure unless 200).
  json::value control(const std::string& method, const std::string& target,
                      const std::string& body = {}) {
    auto r = http_request(port_, method, target, body);
    EXPECT_EQ(r.status, 200u) << method << " " << target << ": " << r.body;
    return json_of(r);
  }

  json::value stats() { return control("GET", "/sim/stats"); }

  /// Requests the stand-in received for one endpoint (its metric label name).
  std::uint64_t requests(const std::string& endpoint) {
    auto s = stats();
    const auto& by_endpoint = s.at("requests").as_object();
    auto it = by_endpoint.find(endpoint);
    return it == by_endpoint.end() ? 0 : it->value().to_number<std::uint64_t>();
  }

  std::uint64_t wake_ups(const std::string& vin) {
    return stats().at("wake_up").at(vin).to_number<std::uint64_t>();
  }

  std::string availability(const std::string& vin) {
    return std::string(control("GET", "/sim/vehicles/" + vin).at("state").as_string());
  }

  /// GET `target` of the Fleet API as a client would, with a fresh token of the given grant.
  json::value api_get(const std::string& target, bool partner) {
    const std::string form =
        partner ? std::string("grant_type=client_credentials&client_id=") + kClientId +
                      "&client_secret=" + kClientSecret
                : std::string("grant_type=refresh_token&client_id=") + kClientId +
                      "&refresh_token=" + kRefreshToken;
    auto token = http_request(port_, "POST", "/oauth2/v3/token", form,
                              {{"Content-Type", "application/x-www-form-urlencoded"}});
    EXPECT_EQ(token.status, 200u) << token.body;
    const std::string access(json_of(token).at("access_token").as_string());
    auto r = http_request(port_, "GET", target, {}, {{"Authorization", "Bearer " + access}});
    EXPECT_EQ(r.status, 200u) << target << ": " << r.body;
    return json_of(r);
  }

  const testsupport::Process& process() const { return *process_; }

 private:
  testsupport::TempDir dir_{"ts-fleet-api"};
  std::uint16_t port_ = 0;
  std::unique_ptr<testsupport::Process> process_;
};

std::int64_t time_us(const json::value& v) {
  auto t = signal::parse_time(v.as_string());
  EXPECT_TRUE(t) << v;
  return t.value_or(0);
}

/// The rows of `name` for `vin` in signal_log that came from `source`.
std::vector<json::object> rows_from(Pipeline& p, const std::string& name, const std::string& source,
                                    const std::string& vin = kRegistered) {
  std::vector<json::object> out;
  for (auto& row : history(p.api_port(), vin, name)) {
    if (row.at("source").as_string() == source) out.push_back(std::move(row));
  }
  return out;
}

/// GET /api/v1/vehicles: the poller's state of `vin` ("streaming", "polling", "asleep", …).
std::string poll_state(Pipeline& p, const std::string& vin = kRegistered) {
  auto doc = p.get("/api/v1/vehicles");
  for (const auto& v : doc.at("vehicles").as_array()) {
    if (v.at("vin").as_string() == vin) {
      const auto& state = v.at("poll_state");
      return state.is_string() ? std::string(state.as_string()) : "null";
    }
  }
  return "unregistered";
}

/// The "polling" stage of GET /api/v1/system/telemetry-pipeline.
json::object polling_stage(Pipeline& p) {
  auto doc = p.get("/api/v1/system/telemetry-pipeline");
  for (const auto& st : doc.at("stages").as_array()) {
    if (st.at("stage").as_string() == "polling") return st.as_object();
  }
  ADD_FAILURE() << "no polling stage in " << doc;
  return {};
}

double metric(const json::object& stage, const char* name) {
  return stage.at("metrics").at(name).to_number<double>();
}

// ---------------------------------------------------------------------------------------------
// Stale stream -> polling starts; stream back -> polling stops.

TEST(ApiFleet, StaleStreamIsPolledAndPollingStopsWhenTheStreamIsBack) {
  constexpr auto kStale = 5s;
  constexpr auto kInterval = 1s;
  FleetStandIn fleet({kRegistered});
  Pipeline p({.extra_env = fleet.api_env({{"FLEET_TELEMETRY_STALE_TIMEOUT", "5s"},
                                          {"FLEET_TELEMETRY_FALLBACK_POLL_INTERVAL", "1s"},
                                          {"TESLASYNC_ERRORS_REFRESH_INTERVAL", "0"}})});

  // 1. The vehicle streams; the poller sees a live stream.
  {
    auto sim = p.start_vehicles(2, 4, 8);
    ASSERT_TRUE(wait_for([&] { return !rows_from(p, "Odometer", "stream").empty(); }, 30s,
                         "streamed Odometer rows"))
        << sim.stderr_text();
    ASSERT_TRUE(wait_for([&] { return poll_state(p) == "streaming"; }, 10s,
                         "the poller sees the stream"));
    auto code = sim.wait(60s);
    ASSERT_EQ(code, 0) << sim.stderr_text();
  }
  const auto calls_at_stop = fleet.requests("vehicle_data");

  // 2. The stream stopped: after the stale timeout the API polls vehicle_data and records the
  // values with source "poll".
  ASSERT_TRUE(wait_for([&] { return poll_state(p) == "polling"; }, 30s, "the poller polls"))
      << p.api().stderr_text();
  std::int64_t last_stream_us = 0;  // every streamed message arrived a stale timeout ago
  for (const auto& row : rows_from(p, "Odometer", "stream")) {
    last_stream_us = std::max(last_stream_us, time_us(row.at("received_at")));
  }
  ASSERT_GT(last_stream_us, 0);
  auto polled_after_stop = [&] {
    std::vector<json::object> out;
    for (auto& row : rows_from(p, "Odometer", "poll")) {
      if (time_us(row.at("received_at")) > last_stream_us) out.push_back(std::move(row));
    }
    return out;
  };
  ASSERT_TRUE(wait_for([&] { return polled_after_stop().size() >= 2; }, 30s,
                       "two polls after the stream went quiet"))
      << p.api().stderr_text();
  EXPECT_GE(fleet.requests("vehicle_data"), calls_at_stop + 2);
  // Not before the stale timeout: the first poll after the last streamed message came at least
  // FLEET_TELEMETRY_STALE_TIMEOUT later (both times are the API's receive clock).
  {
    auto polled = polled_after_stop();
    std::int64_t first_poll_us = std::numeric_limits<std::int64_t>::max();
    for (const auto& row : polled) first_poll_us = std::min(first_poll_us, time_us(row.at("received_at")));
    EXPECT_GE(first_poll_us - last_stream_us, std::chrono::microseconds(kStale).count());
  }
  EXPECT_EQ(poll_state(p), "polling");
  // The pipeline summary shows the polling.
  {
    auto stage = polling_stage(p);
    EXPECT_EQ(stage.at("health").as_string(), "ok") << stage;
    EXPECT_TRUE(stage.at("metrics").at("configured").as_bool());
    EXPECT_EQ(metric(stage, "vehicles_polling"), 1) << stage;
    EXPECT_GE(metric(stage, "polls"), 2) << stage;
    EXPECT_EQ(metric(stage, "failed"), 0) << stage;
    EXPECT_TRUE(stage.at("metrics").at("last_poll_age_seconds").is_number()) << stage;
  }
  // L1 holds a polled value now.
  EXPECT_EQ(p.state().at("signals").at("Odometer").at("source").as_string(), "poll");

  // 3. The stream comes back: polling stops at once.
  auto sim = p.start_vehicles(2, 4, 120);
  ASSERT_TRUE(wait_for([&] { return poll_state(p) == "streaming"; }, 30s,
                       "the poller sees the stream again"))
      << sim.stderr_text();
  const auto calls_back = fleet.requests("vehicle_data");
  const auto polls_back = rows_from(p, "Odometer", "poll").size();
  const auto streamed_back = rows_from(p, "Odometer", "stream").size();
  // A poller that kept going would call vehicle_data every FLEET_TELEMETRY_FALLBACK_POLL_INTERVAL;
  // over 5 intervals at most one call (already in flight when the stream returned) may arrive.
  EXPECT_FALSE(wait_for([&] { return fleet.requests("vehicle_data") > calls_back + 1; },
                        5 * kInterval, "vehicle_data called again while the stream is live"));
  ASSERT_TRUE(sim.running()) << "the stream must stay live for the whole window";
  EXPECT_LE(rows_from(p, "Odometer", "poll").size(), polls_back + 1);
  EXPECT_GT(rows_from(p, "Odometer", "stream").size(), streamed_back) << "new rows are streamed";
  EXPECT_EQ(metric(polling_stage(p), "vehicles_polling"), 0);
  sim.terminate(5s);

  // 4. What was polled is what the stand-in serves for that (frozen) car.
  auto data = fleet.api_get(std::string("/api/1/vehicles/") + kRegistered +
                                "/vehicle_data?endpoints=charge_state%3Bvehicle_state",
                            false);
  const auto& charge = data.at("response").at("charge_state");
  const auto& vehicle = data.at("response").at("vehicle_state");
  auto polled = [&](const std::string& name) {
    auto rows = rows_from(p, name, "poll");
    EXPECT_FALSE(rows.empty()) << name;
    return rows;
  };
  for (const auto& row : polled("Odometer")) {
    EXPECT_DOUBLE_EQ(row.at("value").to_number<double>(), vehicle.at("odometer").to_number<double>());
  }
  for (const auto& row : polled("BatteryLevel")) {
    EXPECT_DOUBLE_EQ(row.at("value").to_number<double>(),
                     charge.at("battery_level").to_number<double>());
  }
  for (const auto& row : polled("Soc")) {
    EXPECT_DOUBLE_EQ(row.at("value").to_number<double>(),
                     charge.at("usable_battery_level").to_number<double>());
  }
  for (const auto& row : polled("ChargeLimitSoc")) {
    EXPECT_EQ(row.at("value").to_number<double>(), charge.at("charge_limit_soc").to_number<double>());
  }
  for (const auto& row : polled("VehicleName")) {
    EXPECT_EQ(row.at("value"), vehicle.at("vehicle_name"));
  }
  const std::string version(vehicle.at("car_version").as_string());
  for (const auto& row : polled("Version")) {
    EXPECT_EQ(row.at("value").as_string(), version.substr(0, version.find(' ')));
  }
  EXPECT_EQ(fleet.wake_ups(kRegistered), 0u);
}

// ---------------------------------------------------------------------------------------------
// An asleep car is not woken: the poller backs off, and resumes once the car is awake.

// Without telemetry (FLEET_TELEMETRY_ENABLED=false) polling is the only source: the API polls at
// once, without waiting for a stream, and never subscribes to MQTT.
TEST(ApiFleet, WithoutTelemetryPollingIsTheOnlySource) {
  FleetStandIn fleet({kRegistered});
  Pipeline p({.extra_env = fleet.api_env({{"FLEET_TELEMETRY_ENABLED", "false"},
                                          {"TESLASYNC_ERRORS_REFRESH_INTERVAL", "0"}})});
  ASSERT_TRUE(wait_for([&] { return !rows_from(p, "Odometer", "poll").empty(); }, 30s,
                       "a polled Odometer row"))
      << p.api().stderr_text();
  EXPECT_EQ(poll_state(p), "polling");
  EXPECT_GE(fleet.requests("vehicle_data"), 1u);
  EXPECT_EQ(fleet.wake_ups(kRegistered), 0u);
  // The state comes from the poll.
  auto state = p.state();
  EXPECT_EQ(state.at("signals").at("Odometer").at("source").as_string(), "poll");
  auto stage = polling_stage(p);
  EXPECT_EQ(stage.at("health").as_string(), "ok") << stage;
  EXPECT_EQ(metric(stage, "vehicles_polling"), 1) << stage;
  // Vehicles streaming meanwhile change nothing: the API does not read MQTT.
  auto report = p.drive(1, 4, 3);
  ASSERT_GT(report.at("acked").to_number<double>(), 0);
  EXPECT_TRUE(rows_from(p, "Odometer", "stream").empty());
}

TEST(ApiFleet, AsleepCarIsNotWokenAndPollingResumesWhenItWakes) {
  constexpr auto kInterval = 1s;
  constexpr auto kAsleepBackoff = 15s;
  FleetStandIn fleet({kRegistered});
  // No stream at all: the vehicle is stale one stale timeout after the start, and polled.
  Pipeline p({.extra_env = fleet.api_env({{"FLEET_TELEMETRY_STALE_TIMEOUT", "2s"},
                                          {"FLEET_TELEMETRY_FALLBACK_POLL_INTERVAL", "1s"},
                                          {"FLEET_TELEMETRY_ASLEEP_BACKOFF", "15s"},
                                          {"TESLASYNC_ERRORS_REFRESH_INTERVAL", "0"}})});
  ASSERT_TRUE(wait_for([&] { return rows_from(p, "Odometer", "poll").size() >= 2; }, 30s,
                       "the online car is polled"))
      << p.api().stderr_text();

  // The car falls asleep; the poller finds out without waking it.
  fleet.control("POST", std::string("/sim/vehicles/") + kRegistered + "/sleep");
  ASSERT_TRUE(wait_for([&] { return metric(polling_stage(p), "asleep") >= 1; }, 30s,
                       "a poll found the car asleep"));
  EXPECT_EQ(poll_state(p), "asleep");
  auto calls = [&] { return fleet.requests("vehicle") + fleet.requests("vehicle_data"); };
  const auto calls_asleep = calls();
  const auto served_asleep =
      fleet.stats().at("vehicle_data_served").at(kRegistered).to_number<std::uint64_t>();
  const auto polls_asleep = rows_from(p, "Odometer", "poll").size();

  // It backs off: a poller without back-off would ask every FLEET_TELEMETRY_FALLBACK_POLL_INTERVAL,
  // 6 times in this window; this one waits FLEET_TELEMETRY_ASLEEP_BACKOFF (15 s), so at most one
  // more request (had the asleep answer come a while before the test saw it).
  static_assert(6 * kInterval < kAsleepBackoff);
  EXPECT_FALSE(wait_for([&] { return calls() > calls_asleep + 1; }, 6 * kInterval,
                        "Fleet API requests about the asleep car at the poll interval"));
  EXPECT_EQ(fleet.wake_ups(kRegistered), 0u);
  EXPECT_EQ(fleet.requests("wake_up"), 0u);
  EXPECT_EQ(fleet.stats().at("vehicle_data_served").at(kRegistered).to_number<std::uint64_t>(),
            served_asleep)
      << "no data was served for the asleep car";
  EXPECT_EQ(rows_from(p, "Odometer", "poll").size(), polls_asleep) << "no poll rows while asleep";
  EXPECT_EQ(fleet.availability(kRegistered), "asleep") << "still asleep: nothing woke it";
  {
    auto stage = polling_stage(p);
    EXPECT_NE(stage.at("health").as_string(), "down") << stage;
    EXPECT_EQ(metric(stage, "vehicles_polling"), 1) << stage;
  }

  // The owner wakes the car: polling resumes (after the back-off) without a wake_up.
  fleet.control("POST", std::string("/sim/vehicles/") + kRegistered + "/wake");
  ASSERT_TRUE(wait_for([&] { return rows_from(p, "Odometer", "poll").size() > polls_asleep; },
                       4 * kAsleepBackoff, "polling resumes once the car is awake"))
      << p.api().stderr_text();
  EXPECT_TRUE(wait_for([&] { return poll_state(p) == "polling"; }, 10s, "poll state polling"));
  EXPECT_GT(fleet.stats().at("vehicle_data_served").at(kRegistered).to_number<std::uint64_t>(),
            served_asleep);
  EXPECT_EQ(fleet.wake_ups(kRegistered), 0u);
  EXPECT_EQ(fleet.requests("wake_up"), 0u);
}

// ---------------------------------------------------------------------------------------------
// Diagnostics: Tesla's partner fleet_telemetry_errors and fleet_telemetry_error_vins.

using ErrorKey = std::tuple<std::string, std::string, std::string, std::string, std::string>;

ErrorKey error_key(const json::value& e, const char* txid_key) {
  return {std::string(e.at("vin").as_string()), std::string(e.at("error_name").as_string()),
          std::string(e.at("error").as_string()), std::string(e.at("created_at").as_string()),
          std::string(e.at(txid_key).as_string())};
}

/// The errors the stand-in serves to a partner, as keys.
std::set<ErrorKey> tesla_errors(FleetStandIn& fleet) {
  std::set<ErrorKey> out;
  auto doc = fleet.api_get("/api/1/partner_accounts/fleet_telemetry_errors", true);
  for (const auto& e : doc.at("response").at("fleet_telemetry_errors").as_array()) {
    out.insert(error_key(e, "txID"));
  }
  return out;
}

json::array items(Pipeline& p, const std::string& target) {
  return p.get(target).at("items").as_array();
}

std::set<ErrorKey> stored_errors(Pipeline& p, const std::string& query = "") {
  std::set<ErrorKey> out;
  for (const auto& e : items(p, "/api/v1/tesla/fleet-telemetry/errors" + query)) {
    out.insert(error_key(e, "txid"));
  }
  return out;
}

testsupport::HttpResponse post(Pipeline& p, const std::string& target) {
  return http_request(p.api_port(), "POST", target, {}, auth(), 30s);
}

void seed_error(FleetStandIn& fleet, const std::string& vin, const std::string& name,
                const std::string& error) {
  fleet.control("POST", "/sim/vehicles/" + vin + "/telemetry_errors",
                json::serialize(json::object{{"error_name", name}, {"error", error}}));
}

std::set<std::string> error_vin_set(const json::array& list) {
  std::set<std::string> out;
  for (const auto& v : list) out.insert(std::string(v.at("vin").as_string()));
  return out;
}

TEST(ApiFleet, DiagnosticsRefreshOnRequestUpsertsAndPages) {
  FleetStandIn fleet({kRegistered, kOtherVin});
  Pipeline p({.extra_env = fleet.api_env({{"TESLASYNC_ERRORS_REFRESH_INTERVAL", "0"}})});
  const std::string errors = "/api/v1/tesla/fleet-telemetry/errors";
  const std::string error_vins = "/api/v1/tesla/fleet-telemetry/error-vins";

  seed_error(fleet, kRegistered, "config_manager_error", "InvalidSignature: unknown issuer");
  seed_error(fleet, kRegistered, "connection_error", "dial tcp: i/o timeout");
  seed_error(fleet, kRegistered, "config_manager_error", "certificate expired");
  seed_error(fleet, kOtherVin, "config_manager_error", "hostname mismatch");
  const auto tesla = tesla_errors(fleet);
  ASSERT_EQ(tesla.size(), 4u);

  // Nothing stored before a refresh (no schedule here).
  EXPECT_TRUE(items(p, errors).empty());
  auto r = post(p, errors + "/refresh");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(json_of(r).at("items").as_array().size(), 4u) << r.body;

  // The documented shape, with Tesla's values.
  auto listed = items(p, errors);
  ASSERT_EQ(listed.size(), 4u);
  for (const auto& e : listed) {
    for (const char* key : {"vin", "error_name", "error", "created_at", "name", "txid", "fetched_at"}) {
      EXPECT_TRUE(e.as_object().contains(key)) << key << " missing in " << e;
    }
    EXPECT_TRUE(signal::parse_time(e.at("created_at").as_string())) << e;
    EXPECT_TRUE(signal::parse_time(e.at("fetched_at").as_string())) << e;
    EXPECT_EQ(e.at("name").as_string(), "vehicle-sim-client");
  }
  EXPECT_EQ(stored_errors(p), tesla);
  // Newest first.
  for (std::size_t i = 1; i < listed.size(); ++i) {
    EXPECT_GE(time_us(listed[i - 1].at("created_at")), time_us(listed[i].at("created_at")));
  }

  // Refreshing again stores nothing twice.
  ASSERT_EQ(post(p, errors + "/refresh").status, 200u);
  ASSERT_EQ(post(p, errors + "/refresh").status, 200u);
  EXPECT_EQ(items(p, errors).size(), 4u);
  EXPECT_EQ(stored_errors(p), tesla);

  // ?vin= filters, limit/offset page without overlap or gaps.
  EXPECT_EQ(items(p, errors + "?vin=" + kOtherVin).size(), 1u);
  auto registered_only = stored_errors(p, std::string("?vin=") + kRegistered);
  EXPECT_EQ(registered_only.size(), 3u);
  std::set<ErrorKey> paged;
  std::size_t pages = 0;
  for (std::size_t offset = 0; offset < 10; offset += 2, ++pages) {
    auto page = stored_errors(p, std::string("?vin=") + kRegistered + "&limit=2&offset=" +
                                     std::to_string(offset));
    if (page.empty()) break;
    EXPECT_LE(page.size(), 2u);
    for (const auto& e : page) EXPECT_TRUE(paged.insert(e).second) << "seen on two pages";
  }
  EXPECT_EQ(pages, 2u);
  EXPECT_EQ(paged, registered_only);
  EXPECT_EQ(http_request(p.api_port(), "GET", errors + "?limit=0", {}, auth()).status, 400u);

  // Error VINs: the cars with errors, active, seen now, not resolved.
  r = post(p, error_vins + "/refresh");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto vins = items(p, error_vins);
  EXPECT_EQ(error_vin_set(vins), (std::set<std::string>{kRegistered, kOtherVin}));
  std::map<std::string, std::string> first_seen;
  for (const auto& v : vins) {
    EXPECT_TRUE(v.at("active").as_bool()) << v;
    EXPECT_TRUE(v.at("resolved_at").is_null()) << v;
    EXPECT_LE(time_us(v.at("first_seen_at")), time_us(v.at("last_seen_at"))) << v;
    first_seen[std::string(v.at("vin").as_string())] = std::string(v.at("first_seen_at").as_string());
  }
  // Twice: no duplicates, first_seen_at kept.
  ASSERT_EQ(post(p, error_vins + "/refresh").status, 200u);
  vins = items(p, error_vins);
  EXPECT_EQ(vins.size(), 2u);
  for (const auto& v : vins) {
    EXPECT_EQ(v.at("first_seen_at").as_string(), first_seen[std::string(v.at("vin").as_string())]);
  }
  // The other car's errors are cleared: it is resolved (listed with ?all=true).
  fleet.control("DELETE", std::string("/sim/vehicles/") + kOtherVin + "/telemetry_errors");
  ASSERT_EQ(post(p, error_vins + "/refresh").status, 200u);
  EXPECT_EQ(error_vin_set(items(p, error_vins)), (std::set<std::string>{kRegistered}));
  bool resolved_seen = false;
  for (const auto& v : items(p, error_vins + "?all=true")) {
    if (v.at("vin").as_string() != kOtherVin) continue;
    resolved_seen = true;
    EXPECT_FALSE(v.at("active").as_bool()) << v;
    EXPECT_TRUE(v.at("resolved_at").is_string()) << v;
  }
  EXPECT_TRUE(resolved_seen);
  // The other response shapes Tesla (and TeslaSync's Go code) used read the same.
  for (const char* shape : {"vins", "bare"}) {
    fleet.control("POST", std::string("/sim/error_vins?shape=") + shape);
    r = post(p, error_vins + "/refresh");
    ASSERT_EQ(r.status, 200u) << shape << ": " << r.body;
    EXPECT_EQ(error_vin_set(json_of(r).at("items").as_array()), (std::set<std::string>{kRegistered}))
        << shape;
  }

  // Tesla answers 429 or 5xx: a clear error, nothing stored changes, the API keeps running, and
  // the next refresh works.
  auto expect_upstream_error = [&](const std::string& target, const std::string& words) {
    auto res = post(p, target);
    EXPECT_EQ(res.status, 502u) << res.body;
    auto doc = json_of(res);
    ASSERT_TRUE(doc.is_object() && doc.as_object().contains("error")) << res.body;
    EXPECT_EQ(doc.at("error").at("code").as_string(), "bad_gateway") << res.body;
    const std::string message(doc.at("error").at("message").as_string());
    EXPECT_NE(message.find(words), std::string::npos) << message;
  };
  fleet.control("POST",
                "/sim/faults/rate_limit?count=1&retry_after=120&endpoint=partner_fleet_telemetry_errors");
  expect_upstream_error(errors + "/refresh", "fleet_telemetry_errors: rate_limited (HTTP 429, retry after 120 s)");
  fleet.control("POST",
                "/sim/faults/server_error?count=1&status=503&endpoint=partner_fleet_telemetry_errors");
  expect_upstream_error(errors + "/refresh", "fleet_telemetry_errors: server_error (HTTP 503)");
  fleet.control("POST",
                "/sim/faults/server_error?count=1&status=500&endpoint=partner_fleet_telemetry_error_vins");
  expect_upstream_error(error_vins + "/refresh", "fleet_telemetry_error_vins: server_error (HTTP 500)");
  fleet.control("POST",
                "/sim/faults/rate_limit?count=1&retry_after=60&endpoint=partner_fleet_telemetry_error_vins");
  expect_upstream_error(error_vins + "/refresh",
                        "fleet_telemetry_error_vins: rate_limited (HTTP 429, retry after 60 s)");
  EXPECT_EQ(fleet.stats().at("faults_pending").to_number<int>(), 0);
  EXPECT_EQ(http_request(p.api_port(), "GET", "/healthz").status, 200u);
  EXPECT_EQ(stored_errors(p), tesla);
  EXPECT_EQ(error_vin_set(items(p, error_vins)), (std::set<std::string>{kRegistered}));
  EXPECT_EQ(post(p, errors + "/refresh").status, 200u);
  EXPECT_EQ(post(p, error_vins + "/refresh").status, 200u);
  EXPECT_TRUE(p.api().running());
}

TEST(ApiFleet, DiagnosticsAreRefreshedOnSchedule) {
  FleetStandIn fleet({kRegistered, kOtherVin});
  Pipeline p({.extra_env = fleet.api_env({{"TESLASYNC_ERRORS_REFRESH_INTERVAL", "1s"}})});
  const std::string errors = "/api/v1/tesla/fleet-telemetry/errors";
  const std::string error_vins = "/api/v1/tesla/fleet-telemetry/error-vins";

  // A car reports an error after the API started; no one asks for a refresh.
  seed_error(fleet, kOtherVin, "config_manager_error", "InvalidSignature: unknown issuer");
  const auto tesla = tesla_errors(fleet);
  ASSERT_TRUE(wait_for([&] { return stored_errors(p) == tesla; }, 30s,
                       "the scheduled refresh stores the new error"))
      << p.api().stderr_text();
  ASSERT_TRUE(wait_for(
      [&] { return error_vin_set(items(p, error_vins)) == std::set<std::string>{kOtherVin}; }, 30s,
      "the scheduled refresh stores the error VIN"));

  // Later refreshes keep it once.
  const auto fetched = fleet.requests("partner_fleet_telemetry_errors");
  ASSERT_TRUE(wait_for([&] { return fleet.requests("partner_fleet_telemetry_errors") >= fetched + 2; },
                       30s, "two more scheduled refreshes"));
  EXPECT_EQ(items(p, errors).size(), 1u);
  EXPECT_EQ(items(p, error_vins).size(), 1u);

  // A scheduled refresh that fails (Tesla answers 503) does not stop the schedule.
  fleet.control("POST",
                "/sim/faults/server_error?count=1&status=503&endpoint=partner_fleet_telemetry_errors");
  ASSERT_TRUE(wait_for([&] { return fleet.stats().at("faults_pending").to_number<int>() == 0; }, 30s,
                       "a scheduled refresh got the 503"));
  EXPECT_EQ(stored_errors(p), tesla) << "a failed refresh changes nothing stored";
  seed_error(fleet, kRegistered, "connection_error", "dial tcp: i/o timeout");
  const auto both = tesla_errors(fleet);
  ASSERT_EQ(both.size(), 2u);
  ASSERT_TRUE(wait_for([&] { return stored_errors(p) == both; }, 30s,
                       "a later scheduled refresh stores the second error"))
      << p.api().stderr_text();
  EXPECT_EQ(error_vin_set(items(p, error_vins)), (std::set<std::string>{kRegistered, kOtherVin}));
  EXPECT_TRUE(p.api().running());
}

}  // namespace
}  // namespace ts::integration

// fleet_api::Client against the real stand-in (StandIn + Listener) on 127.0.0.1, in process:
// tokens and 401 handling, sleeping cars, 429, 5xx, broken bodies, vehicle_data mapping, fleet
// telemetry config and diagnostics, TLS verification, connection failures.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/json/parse.hpp>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/metrics.hpp"
#include "fleet_api/client.hpp"
#include "fleet_api/listener.hpp"
#include "fleet_api/stand_in.hpp"
#include "pki/dev_ca.hpp"

namespace ts::vehicle_sim {
namespace {

namespace json = boost::json;
namespace fa = ts::fleet_api;
using std::chrono::milliseconds;
using std::chrono::seconds;

const std::vector<std::string> kVins = {"5YJ3E1EA1TF100000", "5YJ3E1EA3TF100001",
                                        "5YJYE1EA5TF100002"};

class ScratchDir {
 public:
  ScratchDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "ts-fleet-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A stand-in on its own thread; everything reaches it over HTTP only.
class RunningStandIn {
 public:
  explicit RunningStandIn(StandInOptions options, ListenerOptions listen = {.port = 0})
      : standin_(std::move(options)),
        listener_(io_, std::move(listen),
                  [this](const http::Request& r) { return standin_.handle(r); }) {
    listener_.start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~RunningStandIn() {
    listener_.stop();
    io_.stop();
    thread_.join();
  }
  std::string url() const { return listener_.url(); }
  std::uint16_t port() const { return listener_.port(); }

 private:
  boost::asio::io_context io_;
  StandIn standin_;
  Listener listener_;
  std::thread thread_;
};

StandInOptions frozen_fleet(std::vector<std::string> vins = kVins) {
  StandInOptions o;
  o.vins = std::move(vins);
  o.fleet = {.seed = 11, .time_scale = 0, .sleep_after_s = 0};  // cars change only by control
  o.tokens = {.client_id = "teslasync", .client_secret = "s3cret", .refresh_token = "rt-initial"};
  return o;
}

struct FleetApi : ::testing::Test {
  std::unique_ptr<RunningStandIn> sim;
  core::MetricsRegistry metrics;
  std::vector<fa::Token> saved;  // on_user_token (called on the calling thread)
  std::mutex saved_mutex;
  std::unique_ptr<fa::Client> client;
  std::unique_ptr<fa::HttpTransport> control;

  void start(StandInOptions options = frozen_fleet()) {
    sim = std::make_unique<RunningStandIn>(std::move(options));
    client = std::make_unique<fa::Client>(client_options(sim->url()));
    control = std::make_unique<fa::HttpTransport>(fa::TransportOptions{.base_url = sim->url()});
  }
  void SetUp() override { start(); }

  fa::ClientOptions client_options(const std::string& url) {
    fa::ClientOptions o;
    o.base_url = url;
    o.auth_url = url;
    o.client_id = "teslasync";
    o.client_secret = "s3cret";
    o.user_refresh_token = "rt-initial";
    o.on_user_token = [this](const fa::Token& t) {
      std::lock_guard lock(saved_mutex);
      saved.push_back(t);
    };
    o.request_timeout = seconds(10);
    o.metrics = &metrics;
    return o;
  }

  // A `/sim/` control; returns the JSON answer (fails the test on a non-2xx).
  json::value sim_call(const std::string& method, const std::string& target,
                       const std::string& body = {}) {
    auto r = control->send({.method = method, .target = target, .body = body}, seconds(10));
    EXPECT_TRUE(r) << target << ": " << r.error().describe();
    if (!r) return nullptr;
    EXPECT_EQ(r->status, 200u) << target << ": " << r->body;
    return json::parse(r->body);
  }
  json::value stats() { return sim_call("GET", "/sim/stats"); }
  std::int64_t stat(std::initializer_list<std::string_view> path) {
    json::value v = stats();
    const json::value* cur = &v;
    for (auto key : path) {
      if (!cur->is_object() || !cur->as_object().contains(key)) return 0;
      cur = &cur->as_object().at(key);
    }
    return cur->as_int64();
  }
};

std::uint64_t metric(core::MetricsRegistry& m, const char* name, std::vector<std::string> labels,
                     std::vector<std::string> values) {
  return m.counter(name, "", std::move(labels)).with(values).value();
}

TEST_F(FleetApi, UserTokenRefreshesOn401AndPersistsTheRotatedToken) {
  auto list = client->vehicles();
  ASSERT_TRUE(list) << list.error().describe();
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].vin, kVins[0]);
  EXPECT_EQ((*list)[0].state, fa::VehicleState::Online);
  EXPECT_EQ(stat({"tokens", "user_issued"}), 1);
  {
    std::lock_guard lock(saved_mutex);
    ASSERT_EQ(saved.size(), 1u);
    EXPECT_FALSE(saved[0].refresh_token.empty());
    EXPECT_NE(saved[0].refresh_token, "rt-initial");  // rotated
  }

  // Every access token revoked: the next call gets 401, refreshes with the rotated refresh token
  // and succeeds on its one retry.
  sim_call("POST", "/sim/tokens/expire");
  auto v = client->vehicle(kVins[1]);
  ASSERT_TRUE(v) << v.error().describe();
  EXPECT_EQ(v->vin, kVins[1]);
  EXPECT_EQ(stat({"responses", "vehicle", "401"}), 1);
  EXPECT_EQ(stat({"responses", "vehicle", "200"}), 1);
  EXPECT_EQ(stat({"tokens", "user_issued"}), 2);
  EXPECT_EQ(
      metric(metrics, "teslasync_fleet_api_unauthorized_retries_total", {"endpoint"}, {"vehicle"}),
      1u);
  EXPECT_EQ(metric(metrics, "teslasync_fleet_api_token_refreshes_total", {"kind", "result"},
                   {"user", "ok"}),
            2u);
  {
    std::lock_guard lock(saved_mutex);
    ASSERT_EQ(saved.size(), 2u);
    EXPECT_NE(saved[1].refresh_token, saved[0].refresh_token);
  }
  // The partner token is separate and works for partner endpoints.
  auto vins = client->partner_telemetry_error_vins();
  ASSERT_TRUE(vins) << vins.error().describe();
  EXPECT_EQ(stat({"tokens", "partner_issued"}), 1);
  auto partner = client->partner_token();
  ASSERT_TRUE(partner);
  EXPECT_EQ(stat({"tokens", "partner_issued"}), 1);  // cached
}

TEST_F(FleetApi, UnauthorizedAfterOneRefreshAndRetry) {
  ASSERT_TRUE(client->vehicles());
  // Two 401s in a row: refresh + one retry, then give up.
  sim_call("POST", "/sim/faults/unauthorized?count=2&endpoint=vehicle_data");
  auto r = client->vehicle_data(kVins[0]);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(fa::errc::unauthorized)) << r.error().describe();
  EXPECT_EQ(r.error().status, 401u);
  EXPECT_EQ(stat({"requests", "vehicle_data"}), 2);
  // Refresh tokens revoked: the refresh itself fails, also unauthorized.
  sim_call("POST", "/sim/tokens/expire?refresh=true");
  auto refused = client->vehicle(kVins[0]);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().is(fa::errc::unauthorized)) << refused.error().describe();
  EXPECT_NE(refused.error().message.find("invalid_grant"), std::string::npos);
  EXPECT_EQ(metric(metrics, "teslasync_fleet_api_token_refreshes_total", {"kind", "result"},
                   {"user", "failed"}),
            1u);
}

TEST_F(FleetApi, WrongClientSecretIsUnauthorized) {
  auto options = client_options(sim->url());
  options.client_secret = "wrong";
  fa::Client bad(std::move(options));
  auto r = bad.partner_telemetry_errors();
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(fa::errc::unauthorized)) << r.error().describe();
  EXPECT_NE(r.error().message.find("invalid_client"), std::string::npos);
}

TEST_F(FleetApi, ConcurrentCallsAfterExpiryRefreshOnce) {
  ASSERT_TRUE(client->vehicles());
  sim_call("POST", "/sim/tokens/expire");
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      if (client->vehicle(kVins[static_cast<std::size_t>(i) % kVins.size()])) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 4);
  // Single-use refresh tokens: two refreshes with the same one would have failed.
  EXPECT_EQ(stat({"tokens", "user_issued"}), 2);
  EXPECT_EQ(stat({"tokens", "refused"}), 0);
}

TEST_F(FleetApi, AsleepCarAnswers408AndIsNeverWokenByPolling) {
  sim_call("POST", "/sim/vehicles/" + kVins[0] + "/sleep");
  auto v = client->vehicle(kVins[0]);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->state, fa::VehicleState::Asleep);
  for (int i = 0; i < 3; ++i) {
    auto data = client->vehicle_data(kVins[0]);
    ASSERT_FALSE(data);
    EXPECT_TRUE(data.error().is(fa::errc::vehicle_unavailable)) << data.error().describe();
    EXPECT_EQ(data.error().status, 408u);
  }
  EXPECT_EQ(stat({"wake_up", kVins[0]}), 0);
  EXPECT_EQ(client->vehicle(kVins[0])->state, fa::VehicleState::Asleep);
  EXPECT_EQ(metric(metrics, "teslasync_fleet_api_vehicle_unavailable_total", {"endpoint"},
                   {"vehicle_data"}),
            3u);

  // Only an explicit wake_up wakes it.
  auto woken = client->wake_up(kVins[0]);
  ASSERT_TRUE(woken) << woken.error().describe();
  EXPECT_EQ(woken->state, fa::VehicleState::Online);
  EXPECT_EQ(stat({"wake_up", kVins[0]}), 1);
  EXPECT_TRUE(client->vehicle_data(kVins[0]));

  // Offline: wake_up cannot reach it.
  sim_call("POST", "/sim/vehicles/" + kVins[1] + "/offline");
  EXPECT_TRUE(client->vehicle_data(kVins[1]).error().is(fa::errc::vehicle_unavailable));
  auto still = client->wake_up(kVins[1]);
  ASSERT_TRUE(still);
  EXPECT_EQ(still->state, fa::VehicleState::Offline);
  EXPECT_EQ(stat({"wake_up", kVins[1]}), 1);
}

TEST_F(FleetApi, CachedAnswersForSleepingCarsAreNotReadings) {
  StandInOptions options = frozen_fleet();
  options.cached_when_unavailable = true;
  start(std::move(options));
  sim_call("POST", "/sim/vehicles/" + kVins[2] + "/sleep");
  auto cached = client->vehicle_data(kVins[2]);
  ASSERT_FALSE(cached);
  EXPECT_TRUE(cached.error().is(fa::errc::vehicle_unavailable)) << cached.error().describe();
  EXPECT_EQ(cached.error().status, 200u);
  EXPECT_EQ(stat({"responses", "vehicle_data", "200"}), 1);
  EXPECT_EQ(stat({"wake_up", kVins[2]}), 0);
  EXPECT_EQ(client->vehicle(kVins[2])->state, fa::VehicleState::Asleep);
  EXPECT_TRUE(client->vehicle_data(kVins[0]));  // online cars answer as usual
}

TEST_F(FleetApi, RateLimitSurfacesRetryAfterWithoutRetrying) {
  ASSERT_TRUE(client->vehicles());
  sim_call("POST", "/sim/faults/rate_limit?count=1&retry_after=42&endpoint=vehicle_data");
  EXPECT_TRUE(client->vehicle(kVins[0]));  // other endpoints are not limited
  auto limited = client->vehicle_data(kVins[0]);
  ASSERT_FALSE(limited);
  EXPECT_TRUE(limited.error().is(fa::errc::rate_limited));
  EXPECT_EQ(limited.error().retry_after, seconds(42));
  EXPECT_EQ(limited.error().status, 429u);
  EXPECT_EQ(stat({"requests", "vehicle_data"}), 1);  // the client did not retry by itself
  EXPECT_EQ(
      metric(metrics, "teslasync_fleet_api_rate_limited_total", {"endpoint"}, {"vehicle_data"}),
      1u);
  EXPECT_TRUE(client->vehicle_data(kVins[0]));
  EXPECT_EQ(metric(metrics, "teslasync_fleet_api_requests_total", {"endpoint", "status"},
                   {"vehicle_data", "4xx"}),
            1u);
  EXPECT_EQ(metric(metrics, "teslasync_fleet_api_requests_total", {"endpoint", "status"},
                   {"vehicle_data", "2xx"}),
            1u);
  EXPECT_NE(metrics.render_prometheus().find(
                "teslasync_fleet_api_requests_total{endpoint=\"vehicle_data\",status=\"2xx\"} 1"),
            std::string::npos);
}

TEST_F(FleetApi, ServerErrorsAndUnparseableBodies) {
  ASSERT_TRUE(client->vehicles());
  sim_call("POST", "/sim/faults/server_error?count=1&status=503");
  auto down = client->vehicle(kVins[0]);
  ASSERT_FALSE(down);
  EXPECT_TRUE(down.error().is(fa::errc::server_error));
  EXPECT_EQ(down.error().status, 503u);
  EXPECT_EQ(down.error().message, "internal server error: vehicle-sim injected a failure");
  sim_call("POST", "/sim/faults/server_error?count=1&status=504&endpoint=vehicle_data");
  EXPECT_TRUE(client->vehicle_data(kVins[0]).error().is(fa::errc::vehicle_unavailable));
  sim_call("POST", "/sim/faults/garbage?count=1&endpoint=vehicle_data");
  auto garbage = client->vehicle_data(kVins[0]);
  ASSERT_FALSE(garbage);
  EXPECT_TRUE(garbage.error().is(fa::errc::bad_response)) << garbage.error().describe();
  sim_call("POST", "/sim/faults/garbage?count=1&endpoint=token");
  sim_call("POST", "/sim/tokens/expire");
  auto token_garbage = client->vehicle(kVins[0]);
  ASSERT_FALSE(token_garbage);
  EXPECT_TRUE(token_garbage.error().is(fa::errc::bad_response));
  EXPECT_TRUE(client->vehicle(kVins[0]));  // the next refresh works
  EXPECT_TRUE(client->vehicle("NOTAVIN0000000000").error().is(fa::errc::not_found));
}

// Every field the mapping table knows, from the simulated car's state, in each mode.
TEST_F(FleetApi, VehicleDataReflectsTheSimulatedCar) {
  std::set<std::string> mapped;
  for (const auto& m : fa::vehicle_data_mappings()) mapped.insert(std::string(m.field));
  mapped.erase("DCChargingPower");  // the sim charges on AC

  sim_call("POST", "/sim/vehicles/" + kVins[0] + "/mode?mode=driving");
  auto driving = client->vehicle_data(kVins[0]);
  ASSERT_TRUE(driving) << driving.error().describe();
  std::map<std::string, signal::Value> f;
  for (const auto& field : driving->fields) f[field.name] = field.value;
  std::set<std::string> names;
  for (const auto& [name, value] : f) names.insert(name);
  EXPECT_EQ(names, mapped);
  const std::string gear = f["Gear"].text;
  EXPECT_TRUE(gear == "ShiftStateD" || gear == "ShiftStateR") << gear;  // may leave in reverse
  EXPECT_EQ(f["ChargeState"], signal::Value::enumeration("ChargeStateDisconnected"));
  EXPECT_EQ(f["Locked"], signal::Value::boolean(true));
  EXPECT_EQ(f["HvacPowerState"], signal::Value::enumeration("HvacPowerStateOn"));
  EXPECT_EQ(f["Location"].kind, signal::Kind::Location);
  EXPECT_EQ(f["CarType"], signal::Value::enumeration("CarTypeModel3"));
  EXPECT_EQ(driving->vehicle.vin, kVins[0]);

  auto state = sim_call("GET", "/sim/vehicles/" + kVins[0]);
  EXPECT_EQ(f["Soc"], signal::Value::float64(std::round(state.at("soc").to_number<double>())));
  EXPECT_EQ(state.at("vehicle_data_served").as_int64(), 1);

  sim_call("POST", "/sim/vehicles/" + kVins[0] + "/mode?mode=charging");
  auto charging = client->vehicle_data(kVins[0]);
  ASSERT_TRUE(charging);
  f.clear();
  for (const auto& field : charging->fields) f[field.name] = field.value;
  EXPECT_EQ(f["ChargeState"], signal::Value::enumeration("ChargeStateStarting"));
  EXPECT_EQ(f["DetailedChargeState"], signal::Value::enumeration("DetailedChargeStateStarting"));
  EXPECT_EQ(f["ChargePortDoorOpen"], signal::Value::boolean(true));
  EXPECT_EQ(f["ChargePortLatch"], signal::Value::enumeration("ChargePortLatchEngaged"));
  EXPECT_EQ(f["Gear"], signal::Value::enumeration("ShiftStateP"));
  EXPECT_EQ(f["VehicleSpeed"], signal::Value::float64(0));

  sim_call("POST", "/sim/vehicles/" + kVins[0] + "/mode?mode=parked");
  auto parked = client->vehicle_data(kVins[0], "charge_state;vehicle_state");
  ASSERT_TRUE(parked);
  f.clear();
  for (const auto& field : parked->fields) f[field.name] = field.value;
  EXPECT_FALSE(f.contains("Location"));
  EXPECT_FALSE(f.contains("Gear"));
  EXPECT_EQ(f["ChargeState"], signal::Value::enumeration("ChargeStateDisconnected"));
  EXPECT_TRUE(f.contains("Odometer"));
}

TEST_F(FleetApi, PartnerErrorsAndErrorVinsInEveryShape) {
  sim_call("POST", "/sim/vehicles/" + kVins[1] + "/telemetry_errors",
           R"({"error_name":"config_manager_error","error":"crypto/ecdsa: verification error"})");
  auto errors = client->partner_telemetry_errors();
  ASSERT_TRUE(errors) << errors.error().describe();
  ASSERT_EQ(errors->size(), 1u);
  EXPECT_EQ((*errors)[0].vin, kVins[1]);
  EXPECT_EQ((*errors)[0].error_name, "config_manager_error");
  EXPECT_EQ((*errors)[0].error, "crypto/ecdsa: verification error");
  EXPECT_TRUE((*errors)[0].created_at_us);
  EXPECT_FALSE((*errors)[0].txid.empty());
  auto mine = client->vehicle_telemetry_errors(kVins[1]);
  ASSERT_TRUE(mine);
  EXPECT_EQ(mine->size(), 1u);
  EXPECT_TRUE(client->vehicle_telemetry_errors(kVins[0])->empty());

  const std::vector<std::string> one{kVins[1]};
  EXPECT_EQ(*client->partner_telemetry_error_vins(), one);
  sim_call("POST", "/sim/error_vins?shape=vins");
  EXPECT_EQ(*client->partner_telemetry_error_vins(), one);
  sim_call("POST", "/sim/error_vins?shape=bare");
  EXPECT_EQ(*client->partner_telemetry_error_vins(), one);
  sim_call("POST", "/sim/error_vins", R"(["A1","B2"])");
  EXPECT_EQ(*client->partner_telemetry_error_vins(), (std::vector<std::string>{"A1", "B2"}));
  sim_call("DELETE", "/sim/error_vins");
  sim_call("DELETE", "/sim/vehicles/" + kVins[1] + "/telemetry_errors");
  EXPECT_TRUE(client->partner_telemetry_error_vins()->empty());
  EXPECT_TRUE(client->partner_telemetry_errors()->empty());
}

TEST_F(FleetApi, TelemetryConfigCreateGetDelete) {
  sim_call("POST", "/sim/vehicles/" + kVins[2] + "/key?paired=false");
  sim_call("POST", "/sim/vehicles/" + kVins[1] + "/sleep");
  fa::TelemetryConfig config;
  config.hostname = "telemetry.example.com";
  config.port = 4443;
  config.ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  config.exp = 1'900'000'000;
  config.prefer_typed = true;
  config.delivery_policy = "latest";
  config.alert_types = {"service"};
  config.fields["VehicleSpeed"] = {.interval_seconds = 5, .minimum_delta = 0.5};
  config.fields["Soc"] = {.interval_seconds = 60, .resend_interval_seconds = 300};

  auto created = client->create_telemetry_config(kVins, config);
  ASSERT_TRUE(created) << created.error().describe();
  EXPECT_EQ(created->updated_vehicles, 2);
  EXPECT_EQ(created->skipped_vehicles.at("missing_key"), std::vector<std::string>{kVins[2]});

  auto got = client->telemetry_config(kVins[0]);
  ASSERT_TRUE(got) << got.error().describe();
  EXPECT_TRUE(got->synced);
  EXPECT_TRUE(got->key_paired);
  EXPECT_FALSE(got->limit_reached);
  ASSERT_TRUE(got->config);
  fa::TelemetryConfig echoed = *got->config;
  EXPECT_EQ(echoed.aud, "com.tesla.fleet.TelemetryClient");
  echoed.aud.clear();
  echoed.iss.clear();
  EXPECT_EQ(echoed, config);

  // The sleeping car adopts it when it next comes online.
  EXPECT_FALSE(client->telemetry_config(kVins[1])->synced);
  sim_call("POST", "/sim/vehicles/" + kVins[1] + "/wake");
  EXPECT_TRUE(client->telemetry_config(kVins[1])->synced);

  auto unpaired = client->telemetry_config(kVins[2]);
  ASSERT_TRUE(unpaired);
  EXPECT_FALSE(unpaired->key_paired);
  EXPECT_FALSE(unpaired->config);

  auto status = client->fleet_status(kVins);
  ASSERT_TRUE(status) << status.error().describe();
  EXPECT_EQ(status->unpaired_vins, std::vector<std::string>{kVins[2]});
  EXPECT_EQ(status->key_paired_vins.size(), 2u);
  EXPECT_FALSE(status->vehicle_info.at(kVins[0]).firmware_version.empty());
  EXPECT_EQ(status->vehicle_info.at(kVins[0]).vehicle_command_protocol_required, true);

  auto deleted = client->delete_telemetry_config(kVins[0]);
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->updated_vehicles, 1);
  EXPECT_FALSE(client->telemetry_config(kVins[0])->config);
  EXPECT_EQ(client->delete_telemetry_config(kVins[0])->updated_vehicles, 0);

  fa::TelemetryConfig bad = config;
  bad.fields["NoSuchField"] = {.interval_seconds = 1};
  auto rejected = client->create_telemetry_config({kVins[0]}, bad);
  ASSERT_FALSE(rejected);
  EXPECT_TRUE(rejected.error().is(fa::errc::rejected));
  EXPECT_EQ(rejected.error().status, 400u);
  EXPECT_EQ(rejected.error().message, "Unknown field NoSuchField");
}

TEST_F(FleetApi, VehiclesListFollowsPages) {
  std::vector<std::string> many = ts::pki::synthetic_vins(150);
  start(frozen_fleet(many));
  auto list = client->vehicles();
  ASSERT_TRUE(list) << list.error().describe();
  ASSERT_EQ(list->size(), 150u);
  EXPECT_EQ(list->back().vin, many.back());
  EXPECT_EQ(stat({"requests", "vehicles"}), 2);
}

TEST(FleetApiNetwork, ConnectionRefusedIsANetworkError) {
  std::uint16_t port = 0;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }  // closed: nothing listens there now
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  fa::Client c({.base_url = url,
                .auth_url = url,
                .client_id = "id",
                .user_access_token = "t",
                .request_timeout = seconds(5)});
  auto r = c.vehicle_data(kVins[0]);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(fa::errc::network)) << r.error().describe();
  EXPECT_EQ(r.error().cause, boost::asio::error::connection_refused);
  EXPECT_EQ(r.error().status, 0u);
}

TEST(FleetApiNetwork, SilentServerTimesOut) {
  // Accepted by the kernel (backlog), never answered.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const std::string url = "http://127.0.0.1:" + std::to_string(a.local_endpoint().port());
  fa::Client c({.base_url = url,
                .auth_url = url,
                .client_id = "id",
                .user_access_token = "t",
                .request_timeout = milliseconds(300)});
  auto r = c.vehicle(kVins[0]);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(fa::errc::network)) << r.error().describe();
  EXPECT_EQ(r.error().cause, boost::beast::error::timeout);
}

TEST(FleetApiTls, VerifiesTheServerCertificate) {
  ScratchDir good, other;
  ts::pki::write_dev_ca({.out_dir = good.path(), .vins = {}});
  ts::pki::write_dev_ca({.out_dir = other.path(), .vins = {}});
  RunningStandIn sim(frozen_fleet(), {.host = "127.0.0.1",
                                      .port = 0,
                                      .cert_file = (good.path() / "server.pem").string(),
                                      .key_file = (good.path() / "server.key").string()});
  ASSERT_TRUE(sim.url().starts_with("https://127.0.0.1:"));
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    const std::string url = "https://" + host + ":" + std::to_string(sim.port());
    fa::Client c({.base_url = url,
                  .auth_url = url,
                  .client_id = "teslasync",
                  .client_secret = "s3cret",
                  .user_refresh_token = "rt-initial",
                  .ca_file = (good.path() / "ca.pem").string()});
    auto list = c.vehicles();
    ASSERT_TRUE(list) << host << ": " << list.error().describe();
    EXPECT_EQ(list->size(), 3u);
    EXPECT_TRUE(c.partner_telemetry_errors());
  }
  // Another CA does not vouch for this server: refused before any token is sent.
  const std::string url = "https://127.0.0.1:" + std::to_string(sim.port());
  fa::Client untrusting({.base_url = url,
                         .auth_url = url,
                         .client_id = "teslasync",
                         .client_secret = "s3cret",
                         .ca_file = (other.path() / "ca.pem").string()});
  auto refused = untrusting.partner_token();
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().is(fa::errc::network));
  EXPECT_NE(refused.error().message.find("TLS handshake"), std::string::npos)
      << refused.error().describe();
  // Neither does the system store.
  fa::Client system(
      {.base_url = url, .auth_url = url, .client_id = "teslasync", .client_secret = "s3cret"});
  EXPECT_TRUE(system.partner_token().error().is(fa::errc::network));
}

}  // namespace
}  // namespace ts::vehicle_sim

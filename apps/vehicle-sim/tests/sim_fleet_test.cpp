// The Fleet API stand-in without sockets: the sleep model, tokens, and StandIn::handle for what
// the client tests do not reach (validation, method errors, JWS, pagination, control errors).
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "fleet_api/sim_fleet.hpp"
#include "fleet_api/stand_in.hpp"
#include "fleet_api/tokens.hpp"
#include "fleet_api/vehicle_json.hpp"

namespace ts::vehicle_sim {
namespace {

namespace json = boost::json;

const std::vector<std::string> kVins = {"5YJ3E1EA1TF100000", "5YJ3E1EA3TF100001",
                                        "5YJYE1EA5TF100002"};

TEST(SimFleet, ParkedCarsSleepUnlessPolledAndWakeWhenDriven) {
  SimFleet fleet({kVins[0]}, {.seed = 7, .time_scale = 1, .sleep_after_s = 100});
  SimVehicle& v = fleet.vehicles()[0];
  fleet.advance_to(0);
  fleet.set_mode(v, Mode::Parked);  // parks for at least 120 simulated seconds
  fleet.advance_to(60);
  fleet.polled(v);  // a poll restarts the idle timer
  fleet.advance_to(110);
  EXPECT_EQ(v.availability, Availability::Online);
  fleet.advance_to(161);
  EXPECT_EQ(v.availability, Availability::Asleep);
  EXPECT_FALSE(v.held);
  // Asleep on its own: the car wakes when its driver takes it out (parks last at most 480 s).
  fleet.advance_to(1000);
  EXPECT_EQ(v.availability, Availability::Online);
  EXPECT_NE(v.generator.state().mode, Mode::Parked);
}

TEST(SimFleet, HeldSleepFreezesUntilWakeUpAndWakeUpTakesItsTime) {
  SimFleet fleet({kVins[0]}, {.seed = 7, .time_scale = 1, .sleep_after_s = 0, .wake_s = 5});
  SimVehicle& v = fleet.vehicles()[0];
  fleet.advance_to(0);
  fleet.put_to_sleep(v);
  const double odometer = v.generator.state().odometer_mi;
  const double sim_time = v.generator.state().sim_time_s;
  fleet.advance_to(3600);
  EXPECT_EQ(v.availability, Availability::Asleep);
  EXPECT_EQ(v.generator.state().sim_time_s, sim_time);  // frozen
  EXPECT_EQ(v.generator.state().odometer_mi, odometer);
  fleet.wake_up(v);
  fleet.wake_up(v);  // a second call while waking changes nothing but the count
  EXPECT_EQ(v.wake_up_calls, 2u);
  fleet.advance_to(3603);
  EXPECT_EQ(v.availability, Availability::Asleep);
  fleet.advance_to(3606);
  EXPECT_EQ(v.availability, Availability::Online);
  EXPECT_FALSE(v.held);
}

TEST(SimFleet, OfflineCarsIgnoreWakeUpAndModesBringThemBack) {
  SimFleet fleet({kVins[0]}, {.seed = 7, .sleep_after_s = 0});
  SimVehicle& v = fleet.vehicles()[0];
  fleet.take_offline(v);
  fleet.wake_up(v);
  EXPECT_EQ(v.availability, Availability::Offline);
  EXPECT_EQ(v.wake_up_calls, 1u);
  fleet.set_mode(v, Mode::Charging);
  EXPECT_EQ(v.availability, Availability::Online);
  EXPECT_EQ(v.generator.state().mode, Mode::Charging);
}

TEST(SimFleet, FindsByVinOrId) {
  SimFleet fleet(kVins, {});
  SimVehicle& v = fleet.vehicles()[1];
  EXPECT_EQ(fleet.find(v.vin), &v);
  EXPECT_EQ(fleet.find(std::to_string(v.id)), &v);
  EXPECT_EQ(fleet.find("nope"), nullptr);
  EXPECT_NE(fleet.vehicles()[0].id, fleet.vehicles()[1].id);
}

TEST(VehicleJson, ReportsTheGeneratorsRecord) {
  SimFleet fleet({kVins[2]}, {.seed = 3});
  SimVehicle& v = fleet.vehicles()[0];
  fleet.set_mode(v, Mode::Charging);
  v.generator.advance(60);  // past "Starting"
  json::object all = vehicle_data(v,
                                  {"charge_state", "drive_state", "location_data", "vehicle_state",
                                   "climate_state", "vehicle_config"},
                                  1'700'000'000'000);
  const auto& s = v.generator.state();
  const auto& c = all.at("charge_state").as_object();
  EXPECT_EQ(c.at("charging_state").as_string(), "Charging");
  EXPECT_EQ(c.at("usable_battery_level").as_int64(), std::lround(s.soc));
  EXPECT_EQ(c.at("charge_limit_soc").as_int64(), v.generator.profile().charge_limit_soc);
  EXPECT_EQ(c.at("timestamp").as_int64(), 1'700'000'000'000);
  const auto& d = all.at("drive_state").as_object();
  EXPECT_EQ(d.at("shift_state").as_string(), "P");
  EXPECT_TRUE(d.at("speed").is_null());
  EXPECT_NEAR(d.at("latitude").as_double(), s.lat, 1e-6);
  EXPECT_EQ(all.at("vehicle_config").as_object().at("car_type").as_string(), "modely");
  EXPECT_EQ(all.at("vehicle_state").as_object().at("vehicle_name").as_string(),
            v.generator.profile().name);
  // Without location_data there is no position; without a list, every section but location.
  json::object plain = vehicle_data(v, {"drive_state"}, 1);
  EXPECT_FALSE(plain.at("drive_state").as_object().contains("latitude"));
  EXPECT_FALSE(plain.contains("charge_state"));
  json::object defaults = vehicle_data(v, {}, 1);
  EXPECT_TRUE(defaults.contains("charge_state"));
  EXPECT_TRUE(defaults.contains("gui_settings"));
  EXPECT_FALSE(defaults.at("drive_state").as_object().contains("latitude"));
}

TEST(Tokens, ClientCredentialsRefreshRotationAndExpiry) {
  TokenIssuer t({.client_id = "cid", .client_secret = "sec", .refresh_token = "r0", .ttl_s = 100});
  auto partner = t.grant(
      {{"grant_type", "client_credentials"}, {"client_id", "cid"}, {"client_secret", "sec"}}, 0);
  ASSERT_EQ(partner.status, 200u);
  auto access = json::parse(partner.body).at("access_token").as_string();
  EXPECT_EQ(t.validate(access, 50), TokenKind::Partner);
  EXPECT_FALSE(t.validate(access, 100));  // expired
  EXPECT_EQ(
      t.grant(
           {{"grant_type", "client_credentials"}, {"client_id", "cid"}, {"client_secret", "wrong"}},
           0)
          .status,
      401u);
  EXPECT_EQ(
      t.grant(
           {{"grant_type", "client_credentials"}, {"client_id", "other"}, {"client_secret", "sec"}},
           0)
          .status,
      401u);
  EXPECT_EQ(t.grant({{"grant_type", "password"}, {"client_id", "cid"}}, 0).status, 400u);

  auto first = json::parse(
      t.grant({{"grant_type", "refresh_token"}, {"client_id", "cid"}, {"refresh_token", "r0"}}, 0)
          .body);
  std::string r1(first.at("refresh_token").as_string());
  EXPECT_EQ(t.validate(first.at("access_token").as_string(), 1), TokenKind::User);
  // Rotated tokens are single use; the initial one stays valid.
  EXPECT_EQ(
      t.grant({{"grant_type", "refresh_token"}, {"client_id", "cid"}, {"refresh_token", r1}}, 0)
          .status,
      200u);
  auto reused =
      t.grant({{"grant_type", "refresh_token"}, {"client_id", "cid"}, {"refresh_token", r1}}, 0);
  EXPECT_EQ(reused.status, 401u);
  EXPECT_NE(reused.body.find("invalid_grant"), std::string::npos);
  EXPECT_EQ(
      t.grant({{"grant_type", "refresh_token"}, {"client_id", "cid"}, {"refresh_token", "r0"}}, 0)
          .status,
      200u);
  t.expire_all();
  EXPECT_FALSE(t.validate(first.at("access_token").as_string(), 1));
  t.revoke_refresh_tokens();
  EXPECT_EQ(
      t.grant({{"grant_type", "refresh_token"}, {"client_id", "cid"}, {"refresh_token", "r0"}}, 0)
          .status,
      401u);
  EXPECT_EQ(t.user_issued(), 3u);
  EXPECT_EQ(t.partner_issued(), 1u);
}

// Handler-level fixture with a fake clock.
struct Handler : ::testing::Test {
  double clock = 0;
  std::unique_ptr<StandIn> standin;
  std::string user_token;

  void make(StandInOptions options) {
    standin = std::make_unique<StandIn>(std::move(options), [this] { return clock; });
    auto r = call("POST", "/oauth2/v3/token",
                  "grant_type=refresh_token&client_id=c&refresh_token=vehicle-sim-refresh-token");
    ASSERT_EQ(r.status, 200u) << r.body;
    user_token = std::string(json::parse(r.body).at("access_token").as_string());
  }
  void SetUp() override { make({.vins = kVins, .fleet = {.time_scale = 0, .sleep_after_s = 0}}); }

  http::Response call(const std::string& method, const std::string& target,
                      const std::string& body = {}, bool auth = true) {
    http::Request r{method, target, body, {}};
    if (auth && !user_token.empty())
      r.headers.emplace_back("Authorization", "Bearer " + user_token);
    return standin->handle(r);
  }
  json::value body_of(const http::Response& r) { return json::parse(r.body); }
};

TEST_F(Handler, UnknownPathsMethodsVehiclesAndMissingTokens) {
  EXPECT_EQ(call("GET", "/api/1/nothing").status, 404u);
  EXPECT_EQ(call("GET", "/").status, 404u);
  EXPECT_EQ(call("POST", "/api/1/vehicles").status, 405u);
  EXPECT_EQ(call("PUT", "/api/1/vehicles/" + kVins[0] + "/fleet_telemetry_config").status, 405u);
  auto missing = call("GET", "/api/1/vehicles/NOPE/vehicle_data");
  EXPECT_EQ(missing.status, 404u);
  EXPECT_TRUE(body_of(missing).at("response").is_null());
  EXPECT_EQ(call("GET", "/api/1/vehicles", "", false).status, 401u);
  // A user token does not open partner endpoints.
  EXPECT_EQ(call("GET", "/api/1/partner_accounts/fleet_telemetry_errors").status, 403u);
  EXPECT_EQ(call("GET", "/api/1/vehicles/" + kVins[0] + "/vehicle_data?endpoints=bogus").status,
            400u);
  auto by_id = call("GET", "/api/1/vehicles/" + std::to_string(standin->fleet().vehicles()[0].id));
  ASSERT_EQ(by_id.status, 200u);
  EXPECT_EQ(body_of(by_id).at("response").at("vin").as_string(), kVins[0]);
}

TEST_F(Handler, AccessTokensExpireWithTheClock) {
  clock = 8 * 3600 + 1;
  EXPECT_EQ(call("GET", "/api/1/vehicles").status, 401u);
}

TEST_F(Handler, Pagination) {
  auto page = call("GET", "/api/1/vehicles?per_page=2&page=2");
  ASSERT_EQ(page.status, 200u);
  auto b = body_of(page);
  EXPECT_EQ(b.at("response").as_array().size(), 1u);
  EXPECT_EQ(b.at("count").as_int64(), 3);
  EXPECT_EQ(b.at("pagination").at("previous").as_int64(), 1);
  EXPECT_TRUE(b.at("pagination").at("next").is_null());
  EXPECT_EQ(call("GET", "/api/1/vehicles?page=x").status, 400u);
}

TEST_F(Handler, ConfigValidationLikeTesla) {
  const std::string path = "/api/1/vehicles/fleet_telemetry_config";
  auto body = [&](const std::string& config) {
    return R"({"vins":[")" + kVins[0] + R"("],"config":)" + config + "}";
  };
  auto unknown = call(
      "POST", path,
      body(
          R"({"hostname":"h","port":443,"fields":{"ChargeRateMilePerHourX":{"interval_seconds":1}}})"));
  EXPECT_EQ(unknown.status, 400u);
  EXPECT_EQ(body_of(unknown).at("error").as_string(), "Unknown field ChargeRateMilePerHourX");
  auto string_port =
      call("POST", path,
           body(R"({"hostname":"h","port":"443","fields":{"Soc":{"interval_seconds":1}}})"));
  EXPECT_EQ(string_port.status, 400u);
  EXPECT_EQ(body_of(string_port).at("error").as_string(), "config.port must be an integer");
  EXPECT_EQ(
      call("POST", path, body(R"({"port":443,"fields":{"Soc":{"interval_seconds":1}}})")).status,
      400u);
  EXPECT_EQ(call("POST", path, body(R"({"hostname":"h","port":443,"fields":{}})")).status, 400u);
  EXPECT_EQ(call("POST", path,
                 body(R"({"hostname":"h","port":443,"fields":{"Soc":{"interval_seconds":0}}})"))
                .status,
            400u);
  EXPECT_EQ(call("POST", path, R"({"vins":[],"config":{}})").status, 400u);
  EXPECT_EQ(call("POST", path, "not json").status, 400u);
  EXPECT_EQ(call("POST", path,
                 body(R"({"hostname":"h","port":443,"fields":{"Soc":{"interval_seconds":5}}})"))
                .status,
            200u);
  const std::string unknown_vin =
      R"({"vins":["NOPE"],"config":{"hostname":"h","port":443,"fields":{"Soc":{"interval_seconds":5}}}})";
  EXPECT_EQ(call("POST", path, unknown_vin).status, 404u);
}

TEST_F(Handler, RequireJwsAnswers412AndJwsClaimsAreStored) {
  make({.vins = kVins, .fleet = {.time_scale = 0, .sleep_after_s = 0}, .require_jws = true});
  auto direct = call(
      "POST", "/api/1/vehicles/fleet_telemetry_config",
      R"({"vins":[")" + kVins[1] +
          R"("],"config":{"hostname":"h","port":443,"fields":{"Soc":{"interval_seconds":5}}}})");
  EXPECT_EQ(direct.status, 412u);
  // header {"alg":"Tesla.SS256"} . claims . signature (not verified by the stand-in)
  const std::string claims =
      R"({"hostname":"t.example.com","port":4443,"fields":{"Gear":{"interval_seconds":1}},"aud":"com.tesla.vehicle.X.TelemetryClient","iss":"AAA"})";
  static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string encoded;
  unsigned buffer = 0;
  int bits = 0;
  for (unsigned char c : claims) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      encoded += kB64[(buffer >> bits) & 63];
    }
  }
  if (bits > 0) encoded += kB64[(buffer << (6 - bits)) & 63];
  auto jws = call("POST", "/api/1/vehicles/fleet_telemetry_config_jws",
                  R"({"vins":[")" + kVins[1] + R"("],"token":"eyJhbGciOiJUZXNsYS5TUzI1NiJ9.)" +
                      encoded + R"(.c2ln"})");
  ASSERT_EQ(jws.status, 200u) << jws.body;
  EXPECT_EQ(body_of(jws).at("response").at("updated_vehicles").as_int64(), 1);
  auto got = body_of(call("GET", "/api/1/vehicles/" + kVins[1] + "/fleet_telemetry_config"));
  EXPECT_EQ(got.at("response").at("config").at("hostname").as_string(), "t.example.com");
  EXPECT_EQ(got.at("response").at("config").at("aud").as_string(),
            "com.tesla.vehicle.X.TelemetryClient");
  EXPECT_EQ(call("POST", "/api/1/vehicles/fleet_telemetry_config_jws",
                 R"({"vins":[")" + kVins[1] + R"("],"token":"garbage"})")
                .status,
            400u);
}

TEST_F(Handler, FaultsApplyToTheirEndpointInOrderAndAreCounted) {
  standin->add_fault(
      {.kind = Fault::Kind::RateLimit, .endpoint = "vehicle", .count = 2, .retry_after_s = 9});
  standin->add_fault({.kind = Fault::Kind::ServerError, .count = 1, .status = 502});
  // vehicles is not "vehicle": the endpoint-less 502 applies first there.
  EXPECT_EQ(call("GET", "/api/1/vehicles").status, 502u);
  auto limited = call("GET", "/api/1/vehicles/" + kVins[0]);
  EXPECT_EQ(limited.status, 429u);
  ASSERT_EQ(limited.headers.size(), 1u);
  EXPECT_EQ(limited.headers[0], (std::pair<std::string, std::string>{"Retry-After", "9"}));
  EXPECT_EQ(call("GET", "/api/1/vehicles/" + kVins[0]).status, 429u);
  EXPECT_EQ(call("GET", "/api/1/vehicles/" + kVins[0]).status, 200u);
  auto stats = json::parse(standin->stats_json());
  EXPECT_EQ(stats.at("responses").at("vehicle").at("429").as_int64(), 2);
  EXPECT_EQ(stats.at("responses").at("vehicles").at("502").as_int64(), 1);
  EXPECT_EQ(stats.at("faults_served").as_int64(), 3);
  EXPECT_THROW(standin->add_fault({.endpoint = "nope"}), std::invalid_argument);
  EXPECT_THROW(standin->add_fault({.kind = Fault::Kind::ServerError, .status = 404}),
               std::invalid_argument);
}

TEST_F(Handler, ControlErrors) {
  EXPECT_EQ(call("POST", "/sim/vehicles/NOPE/sleep").status, 404u);
  EXPECT_EQ(call("POST", "/sim/vehicles/" + kVins[0] + "/mode?mode=flying").status, 400u);
  EXPECT_EQ(call("POST", "/sim/vehicles/" + kVins[0] + "/key?paired=maybe").status, 400u);
  EXPECT_EQ(call("POST", "/sim/faults/rate_limit?count=-1").status, 400u);
  EXPECT_EQ(call("POST", "/sim/faults/rate_limit?endpoint=nope").status, 400u);
  EXPECT_EQ(call("POST", "/sim/faults/meteor").status, 404u);
  EXPECT_EQ(call("POST", "/sim/error_vins?shape=xml").status, 400u);
  EXPECT_EQ(call("POST", "/sim/error_vins", "{}").status, 400u);
  EXPECT_EQ(call("GET", "/sim/nothing").status, 404u);
  auto list = body_of(call("GET", "/sim/vehicles"));
  ASSERT_EQ(list.as_array().size(), 3u);
  EXPECT_EQ(list.as_array()[0].at("state").as_string(), "online");
  EXPECT_THROW(StandIn({.vins = {}}), std::invalid_argument);
  EXPECT_THROW(StandIn({.vins = {"A", "A"}}), std::invalid_argument);
  EXPECT_THROW(StandIn({.vins = {"A"}, .error_vins_shape = "csv"}), std::invalid_argument);
}

}  // namespace
}  // namespace ts::vehicle_sim

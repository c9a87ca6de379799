// Response shapes and HTTP error classification (no sockets).
#include "fleet_api/responses.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace ts::fleet_api {
namespace {

using Clock = std::chrono::system_clock;
using std::chrono::seconds;

const Clock::time_point kNow = Clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT

TEST(Responses, StatusesMapToErrc) {
  auto code = [](unsigned status) {
    return error_from_response(status, R"({"response":null,"error":"e"})", "", kNow).code;
  };
  EXPECT_EQ(code(401), make_error_code(errc::unauthorized));
  EXPECT_EQ(code(404), make_error_code(errc::not_found));
  EXPECT_EQ(code(408), make_error_code(errc::vehicle_unavailable));
  EXPECT_EQ(code(504), make_error_code(errc::vehicle_unavailable));
  EXPECT_EQ(code(429), make_error_code(errc::rate_limited));
  EXPECT_EQ(code(400), make_error_code(errc::rejected));
  EXPECT_EQ(code(403), make_error_code(errc::rejected));
  EXPECT_EQ(code(412), make_error_code(errc::rejected));
  EXPECT_EQ(code(500), make_error_code(errc::server_error));
  EXPECT_EQ(code(503), make_error_code(errc::server_error));
  EXPECT_EQ(code(302), make_error_code(errc::bad_response));
}

TEST(Responses, ErrorMessagesComeFromTheEnvelopeOrTheRawBody) {
  Error e = error_from_response(
      408,
      R"({"response":null,"error":"vehicle unavailable: vehicle is offline or asleep","error_description":""})",
      "", kNow);
  EXPECT_EQ(e.message, "vehicle unavailable: vehicle is offline or asleep");
  EXPECT_EQ(e.status, 408u);
  EXPECT_EQ(e.retry_after, seconds(0));
  Error oauth = error_from_response(
      401, R"({"error":"invalid_grant","error_description":"refresh token revoked"})", "", kNow);
  EXPECT_EQ(oauth.message, "invalid_grant: refresh token revoked");
  Error html = error_from_response(502, "  <html>bad gateway</html>\n", "", kNow);
  EXPECT_EQ(html.message, "<html>bad gateway</html>");
  EXPECT_NE(html.describe().find("server_error (HTTP 502)"), std::string::npos);
}

TEST(Responses, RetryAfterSecondsDatesAndDefaults) {
  EXPECT_EQ(error_from_response(429, "{}", "30", kNow).retry_after, seconds(30));
  EXPECT_EQ(parse_retry_after(" 120 ", kNow), seconds(120));
  EXPECT_EQ(parse_retry_after("0", kNow), seconds(1));
  EXPECT_EQ(parse_retry_after("99999999999", kNow), seconds(2 * 86400));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", kNow), seconds(60));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", kNow), seconds(1));  // past
  EXPECT_EQ(parse_retry_after("", kNow), kDefaultRetryAfter);
  EXPECT_EQ(parse_retry_after("soon", kNow), kDefaultRetryAfter);
  Error e = error_from_response(429, "{}", "", kNow);
  EXPECT_EQ(e.retry_after, kDefaultRetryAfter);
  EXPECT_NE(e.describe().find("retry after 60 s"), std::string::npos);
}

TEST(Responses, TokenResponse) {
  auto t = parse_token_response(
      R"({"access_token":"a1","refresh_token":"r1","id_token":"x","expires_in":28800,"token_type":"Bearer","scope":"openid"})",
      kNow);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->access_token, "a1");
  EXPECT_EQ(t->refresh_token, "r1");
  EXPECT_EQ(t->token_type, "Bearer");
  EXPECT_EQ(t->expires_at, kNow + seconds(28800));
  EXPECT_FALSE(parse_token_response(R"({"token_type":"Bearer"})", kNow));
  EXPECT_FALSE(parse_token_response("nope", kNow));
}

TEST(Responses, VehiclesAndPagination) {
  auto page = parse_vehicles_response(R"({"response":[
      {"id":1,"vehicle_id":11,"vin":"V1","display_name":"A","state":"online","in_service":false},
      {"id_s":"2","vin":"V2","state":"asleep"},
      {"id":3,"vin":"V3","state":"offline","access_type":"DRIVER"}],
    "pagination":{"previous":null,"next":2,"current":1,"per_page":3,"count":5,"pages":2},"count":5})");
  ASSERT_TRUE(page);
  ASSERT_EQ(page->vehicles.size(), 3u);
  EXPECT_EQ(page->vehicles[0].vehicle_id, 11);
  EXPECT_EQ(page->vehicles[0].state, VehicleState::Online);
  EXPECT_EQ(page->vehicles[1].id, 2);
  EXPECT_EQ(page->vehicles[1].state, VehicleState::Asleep);
  EXPECT_EQ(page->vehicles[2].state, VehicleState::Offline);
  EXPECT_EQ(page->vehicles[2].access_type, "DRIVER");
  EXPECT_EQ(page->next_page, 2);
  auto last = parse_vehicles_response(R"({"response":[],"pagination":{"next":null}})");
  ASSERT_TRUE(last);
  EXPECT_FALSE(last->next_page);
  EXPECT_FALSE(parse_vehicles_response(R"({"response":{}})"));
  auto one = parse_vehicle_response(R"({"response":{"id":7,"vin":"V7","state":"waking"}})");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->state, VehicleState::Unknown);
  EXPECT_EQ(one->state_text, "waking");
}

TEST(Responses, ConfigCreateGetDelete) {
  auto created = parse_config_update_response(
      R"({"response":{"updated_vehicles":1,"skipped_vehicles":{"missing_key":["V2"],"unsupported_hardware":[],"unsupported_firmware":["V3"]}}})");
  ASSERT_TRUE(created);
  EXPECT_EQ(created->updated_vehicles, 1);
  EXPECT_EQ(created->skipped_vehicles.at("missing_key"), std::vector<std::string>{"V2"});
  EXPECT_TRUE(created->skipped_vehicles.at("unsupported_hardware").empty());
  auto deleted = parse_config_update_response(R"({"response":{"updated_vehicles":0}})");
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->updated_vehicles, 0);
  EXPECT_FALSE(parse_config_update_response(R"({"response":{}})"));

  auto status = parse_config_status_response(R"({"response":{"synced":true,"config":{
      "hostname":"t.example.com","ca":"PEM","port":4443,"exp":1753759258,"prefer_typed":true,
      "delivery_policy":"latest","alert_types":["service"],
      "fields":{"Soc":{"interval_seconds":300,"minimum_delta":0.1},
                "Gear":{"interval_seconds":5,"resend_interval_seconds":60}},
      "iss":"BASE64","aud":"com.tesla.fleet.TelemetryClient"},
    "limit_reached":false,"key_paired":true}})");
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->synced);
  EXPECT_TRUE(status->key_paired);
  ASSERT_TRUE(status->config);
  EXPECT_EQ(status->config->hostname, "t.example.com");
  EXPECT_EQ(status->config->port, 4443);
  EXPECT_EQ(status->config->exp, 1753759258);
  EXPECT_EQ(status->config->prefer_typed, true);
  EXPECT_EQ(status->config->fields.at("Soc").minimum_delta, 0.1);
  EXPECT_EQ(status->config->fields.at("Gear").resend_interval_seconds, 60);
  EXPECT_EQ(status->config->aud, "com.tesla.fleet.TelemetryClient");
  auto none = parse_config_status_response(
      R"({"response":{"synced":true,"config":null,"limit_reached":false,"key_paired":false}})");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->config);
}

TEST(Responses, ConfigJsonRoundTrips) {
  TelemetryConfig c;
  c.hostname = "t.example.com";
  c.port = 4443;
  c.ca = "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n";
  c.exp = 1753759258;
  c.prefer_typed = true;
  c.delivery_policy = "latest";
  c.alert_types = {"service", "customer"};
  c.fields["VehicleSpeed"] = {.interval_seconds = 5, .minimum_delta = 0.5};
  c.fields["Odometer"] = {.interval_seconds = 600, .resend_interval_seconds = 3600};
  const std::string json = telemetry_config_json(c);
  auto v = boost::json::parse(json);
  EXPECT_TRUE(v.at("port").is_int64());  // never a string (FT#119)
  auto back =
      parse_config_status_response(R"({"response":{"synced":false,"config":)" + json + "}}");
  ASSERT_TRUE(back);
  ASSERT_TRUE(back->config);
  EXPECT_EQ(*back->config, c);
  TelemetryConfig minimal{.hostname = "h", .port = 443};
  auto m = boost::json::parse(telemetry_config_json(minimal)).as_object();
  EXPECT_FALSE(m.contains("exp"));
  EXPECT_FALSE(m.contains("ca"));
  EXPECT_FALSE(m.contains("prefer_typed"));
  EXPECT_TRUE(m.contains("fields"));
}

TEST(Responses, TelemetryErrorsInBothShapes) {
  auto tesla = parse_telemetry_errors_response(R"({"response":{"fleet_telemetry_errors":[
      {"created_at":"2025-08-22T15:41:25.11Z","error":"error loading config file: crypto/ecdsa: verification error",
       "error_name":"config_manager_error","name":"3f2c","txID":"tx-1","vin":"V1"}]}})");
  ASSERT_TRUE(tesla);
  ASSERT_EQ(tesla->size(), 1u);
  const TelemetryError& e = (*tesla)[0];
  EXPECT_EQ(e.vin, "V1");
  EXPECT_EQ(e.error_name, "config_manager_error");
  EXPECT_EQ(e.name, "3f2c");
  EXPECT_EQ(e.txid, "tx-1");
  EXPECT_EQ(e.created_at, "2025-08-22T15:41:25.11Z");
  EXPECT_EQ(e.created_at_us, signal::parse_time("2025-08-22T15:41:25.110Z"));

  auto go = parse_telemetry_errors_response(R"({"response":{"errors":[
      {"vin":"V2","error_code":"InvalidSignature","error_message":"unknown issuer","reported_at":"2025-01-01T00:00:00Z"}],
      "updated_at":"2025-01-01T00:00:01Z"}})");
  ASSERT_TRUE(go);
  ASSERT_EQ(go->size(), 1u);
  EXPECT_EQ((*go)[0].error_name, "InvalidSignature");
  EXPECT_EQ((*go)[0].error, "unknown issuer");
  EXPECT_TRUE((*go)[0].created_at_us);

  auto empty = parse_telemetry_errors_response(R"({"response":{"fleet_telemetry_errors":null}})");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  EXPECT_FALSE(parse_telemetry_errors_response(R"({"response":{"fleet_telemetry_errors":3}})"));
}

TEST(Responses, ErrorVinsInEveryShape) {
  const std::vector<std::string> both{"V1", "V2"};
  EXPECT_EQ(
      *parse_error_vins_response(R"({"response":{"fleet_telemetry_error_vins":["V1","V2"]}})"),
      both);
  EXPECT_EQ(*parse_error_vins_response(R"({"response":{"vins":["V1","V2"],"updated_at":"x"}})"),
            both);
  EXPECT_EQ(*parse_error_vins_response(R"(["V1","V2"])"), both);
  EXPECT_EQ(*parse_error_vins_response(R"({"response":["V1","V2"]})"), both);
  EXPECT_TRUE(parse_error_vins_response(R"({"response":{"vins":[]}})")->empty());
  EXPECT_TRUE(parse_error_vins_response(R"({"response":null})")->empty());
  EXPECT_EQ(parse_error_vins_response(R"({"response":{"other":[]}})").error().code,
            make_error_code(errc::bad_response));
  EXPECT_EQ(parse_error_vins_response("[").error().code, make_error_code(errc::bad_response));
}

TEST(Responses, FleetStatus) {
  auto s =
      parse_fleet_status_response(R"({"response":{"key_paired_vins":["V1"],"unpaired_vins":["V2"],
    "vehicle_info":{"V1":{"firmware_version":"2026.20.1","fleet_telemetry_version":"1.0.0",
      "vehicle_command_protocol_required":true,"total_number_of_keys":8,
      "safety_screen_streaming_toggle_enabled":null}}}})");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->key_paired_vins, std::vector<std::string>{"V1"});
  EXPECT_EQ(s->unpaired_vins, std::vector<std::string>{"V2"});
  const VehicleInfo& info = s->vehicle_info.at("V1");
  EXPECT_EQ(info.firmware_version, "2026.20.1");
  EXPECT_EQ(info.fleet_telemetry_version, "1.0.0");
  EXPECT_EQ(info.vehicle_command_protocol_required, true);
  EXPECT_EQ(info.total_number_of_keys, 8);
  EXPECT_FALSE(info.safety_screen_streaming_toggle_enabled);
}

TEST(Responses, ErrorValueThrowsSystemErrorWithTheDescription) {
  Result<int> r = Error(errc::rate_limited, "slow down", 429);
  try {
    (void)r.value();
    FAIL() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("rate_limited (HTTP 429): slow down"), std::string::npos);
  }
}

}  // namespace
}  // namespace ts::fleet_api

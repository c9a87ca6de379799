// Base URLs, the clear-text rule, and options the client checks at construction (no sockets).
#include "fleet_api/http_transport.hpp"

#include <gtest/gtest.h>

#include "fleet_api/client.hpp"

namespace ts::fleet_api {
namespace {

TEST(HttpTransport, ParsesBaseUrls) {
  BaseUrl na = parse_base_url("https://fleet-api.prd.na.vn.cloud.tesla.com", "x");
  EXPECT_TRUE(na.tls);
  EXPECT_EQ(na.host, "fleet-api.prd.na.vn.cloud.tesla.com");
  EXPECT_EQ(na.port, 443);
  EXPECT_EQ(na.path, "");
  EXPECT_EQ(na.text(), "https://fleet-api.prd.na.vn.cloud.tesla.com");

  BaseUrl sim = parse_base_url("http://127.0.0.1:8443/", "x");
  EXPECT_FALSE(sim.tls);
  EXPECT_EQ(sim.port, 8443);
  EXPECT_EQ(sim.path, "");
  EXPECT_EQ(sim.text(), "http://127.0.0.1:8443");

  BaseUrl v6 = parse_base_url("https://[::1]:4443/proxy/", "x");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.path, "/proxy");
  EXPECT_EQ(v6.text(), "https://[::1]:4443/proxy");

  EXPECT_THROW(parse_base_url("fleet-api.example.com", "x"), std::invalid_argument);
  EXPECT_THROW(parse_base_url("ftp://h", "x"), std::invalid_argument);
  EXPECT_THROW(parse_base_url("https://u:p@h", "x"), std::invalid_argument);
  EXPECT_THROW(parse_base_url("https://h/?a=1", "x"), std::invalid_argument);
  try {
    parse_base_url("nope", "TESLA_FLEET_API_BASE_URL");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with("TESLA_FLEET_API_BASE_URL: "));
  }
}

TEST(HttpTransport, PlainHttpOnlyToLoopbackUnlessAllowed) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.1.2.3"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_FALSE(is_loopback_host("10.0.0.1"));
  EXPECT_FALSE(is_loopback_host("example.com"));
  EXPECT_NO_THROW(HttpTransport({.base_url = "http://127.0.0.1:8443"}));
  EXPECT_THROW(HttpTransport({.base_url = "http://10.0.0.1:8443"}), std::invalid_argument);
  EXPECT_NO_THROW(HttpTransport({.base_url = "http://10.0.0.1:8443", .allow_insecure_http = true}));
  EXPECT_THROW(HttpTransport({.base_url = "https://h", .ca_file = "/nonexistent/ca.pem"}),
               std::runtime_error);
}

TEST(Client, ChecksItsOptions) {
  EXPECT_THROW(Client({.base_url = "", .client_id = "id"}), std::invalid_argument);
  EXPECT_THROW(Client({.base_url = "http://127.0.0.1:1"}), std::invalid_argument);  // no client id
  EXPECT_THROW(Client({.base_url = "http://192.0.2.1:8443", .client_id = "id"}),
               std::invalid_argument);
  EXPECT_THROW(
      Client(
          {.base_url = "http://127.0.0.1:8443", .auth_url = "http://192.0.2.1", .client_id = "id"}),
      std::invalid_argument);
  Client ok({.base_url = "http://127.0.0.1:8443", .client_id = "id"});
  EXPECT_EQ(ok.options().auth_url, kTeslaAuthUrl);
  EXPECT_EQ(ok.options().audience, "http://127.0.0.1:8443");
}

TEST(Client, RefusesBadVinsWithoutSending) {
  // Port 1 on loopback: nothing is sent for an invalid VIN, so no connection error either.
  Client c({.base_url = "http://127.0.0.1:1", .client_id = "id", .user_access_token = "t"});
  auto r = c.vehicle_data("../../partner_accounts");
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(errc::invalid_request));
  EXPECT_TRUE(c.vehicle("").error().is(errc::invalid_request));
  EXPECT_TRUE(c.wake_up("V?x=1").error().is(errc::invalid_request));
}

TEST(Client, WithoutCredentialsTokensAreUnauthorizedBeforeAnyRequest) {
  Client c({.base_url = "http://127.0.0.1:1", .client_id = "id"});
  auto partner = c.partner_token();
  ASSERT_FALSE(partner);
  EXPECT_TRUE(partner.error().is(errc::unauthorized));
  EXPECT_NE(partner.error().message.find("client secret"), std::string::npos);
  auto v = c.vehicles();
  ASSERT_FALSE(v);
  EXPECT_TRUE(v.error().is(errc::unauthorized));
  EXPECT_NE(v.error().message.find("refresh token"), std::string::npos);
}

}  // namespace
}  // namespace ts::fleet_api

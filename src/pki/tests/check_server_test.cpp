// `tsctl check-server` logic against in-test servers on 127.0.0.1.
#include "pki/check_server.hpp"

#include <gtest/gtest.h>

#include <map>

#include "pki/dev_ca.hpp"
#include "pki/tests/test_pki.hpp"
#include "pki/tls_context.hpp"

namespace ts::pki {
namespace {

namespace ssl = boost::asio::ssl;
using test::KeyedCert;
using test::make_ca;
using test::make_leaf;

const std::string kServerAuth(kOidServerAuth);

std::map<std::string, CheckResult> by_name(const std::vector<CheckResult>& results) {
  std::map<std::string, CheckResult> map;
  for (const auto& r : results) map.emplace(r.check, r);
  return map;
}

std::string dump(const std::vector<CheckResult>& results) {
  std::string text;
  for (const auto& r : results) {
    text += std::string(to_string(r.status)) + " " + r.check + ": " + r.detail + "\n";
  }
  return text;
}

#define EXPECT_CHECK(results, name, expected_status)                                   \
  do {                                                                                 \
    auto map_ = by_name(results);                                                      \
    ASSERT_TRUE(map_.count(name)) << "no check " << name << "\n" << dump(results);     \
    EXPECT_EQ(map_.at(name).status, expected_status) << name << "\n" << dump(results); \
  } while (0)

class CheckDevServer : public ::testing::Test {
 protected:
  void SetUp() override {
    write_dev_ca({.out_dir = dir_.path(), .vins = {"5YJ3E1EA7JF000000"}});
    server_context_ = std::make_unique<VehicleServerContext>(
        make_vehicle_server_context({file("server.pem"), file("server.key"), file("ca.pem")}));
  }
  std::string file(const std::string& name) const { return (dir_.path() / name).string(); }
  CheckServerOptions options(std::uint16_t port) const {
    CheckServerOptions o;
    o.host = "127.0.0.1";
    o.port = port;
    o.server_name = "localhost";
    o.ca_file = file("ca.pem");
    o.timeout = std::chrono::seconds(5);
    return o;
  }
  test::TempDir dir_;
  std::unique_ptr<VehicleServerContext> server_context_;
};

TEST_F(CheckDevServer, HealthyServerPasses) {
  test::TestServer server(server_context_->context);
  auto results = check_server(options(server.port()));
  EXPECT_FALSE(has_failure(results)) << dump(results);
  for (const char* name :
       {"connect", "handshake", "chain", "hostname", "tls-version", "client-ca-list"}) {
    EXPECT_CHECK(results, name, CheckStatus::Pass);
  }
  auto map = by_name(results);
  EXPECT_NE(map.at("client-ca-list").detail.find("lists 1 acceptable CA name:"), std::string::npos)
      << map.at("client-ca-list").detail;
  EXPECT_NE(map.at("client-ca-list").detail.find("CN=Tesla Motors Product Issuing CA"),
            std::string::npos);
  EXPECT_NE(map.at("tls-version").detail.find("TLS 1.3"), std::string::npos);
  EXPECT_EQ(map.count("status"), 0u);  // no --cert
}

TEST_F(CheckDevServer, Tls12ServerRefusesWithoutCertificateAndStillGetsChecked) {
  // TLS 1.2: the handshake ends after the CertificateRequest when the client has no certificate.
  SSL_CTX_set_max_proto_version(server_context_->context.native_handle(), TLS1_2_VERSION);
  test::TestServer server(server_context_->context);
  auto results = check_server(options(server.port()));
  EXPECT_FALSE(has_failure(results)) << dump(results);
  EXPECT_CHECK(results, "handshake", CheckStatus::Pass);
  EXPECT_CHECK(results, "chain", CheckStatus::Pass);
  EXPECT_CHECK(results, "hostname", CheckStatus::Pass);
  EXPECT_CHECK(results, "tls-version", CheckStatus::Pass);
  EXPECT_CHECK(results, "client-ca-list", CheckStatus::Pass);
  EXPECT_NE(by_name(results).at("tls-version").detail.find("TLS 1.2"), std::string::npos);
  EXPECT_NE(by_name(results).at("client-ca-list").detail.find("lists 1 acceptable"),
            std::string::npos);
}

TEST_F(CheckDevServer, WithClientCertificateStatusSaysMtlsOk) {
  test::TestServer server(server_context_->context);
  auto o = options(server.port());
  o.cert_file = file("vehicle-5YJ3E1EA7JF000000.pem");
  o.key_file = file("vehicle-5YJ3E1EA7JF000000.key");
  auto results = check_server(o);
  EXPECT_FALSE(has_failure(results)) << dump(results);
  EXPECT_CHECK(results, "status", CheckStatus::Pass);
}

TEST_F(CheckDevServer, ForeignClientCertificateFailsStatus) {
  test::TestServer server(server_context_->context);
  KeyedCert other_ca = make_ca({{"CN", "Tesla Motors Products CA"}});
  KeyedCert vehicle =
      make_leaf({{"CN", "5YJ3E1EA7JF000009"}}, {std::string(kOidClientAuth)}, other_ca);
  auto o = options(server.port());
  o.cert_file = dir_.write("foreign.pem", to_pem(vehicle.cert.get()));
  o.key_file = dir_.write("foreign.key", to_pem(vehicle.key.get()));
  auto results = check_server(o);
  EXPECT_TRUE(has_failure(results)) << dump(results);
  EXPECT_CHECK(results, "chain", CheckStatus::Pass);
  // TLS 1.3 reports the rejection when reading the /status answer.
  EXPECT_CHECK(results, "status", CheckStatus::Fail);
}

TEST_F(CheckDevServer, WrongHostnameFails) {
  test::TestServer server(server_context_->context);
  auto o = options(server.port());
  o.server_name = "telemetry.example.com";
  auto results = check_server(o);
  EXPECT_TRUE(has_failure(results));
  EXPECT_CHECK(results, "hostname", CheckStatus::Fail);
  EXPECT_CHECK(results, "chain", CheckStatus::Pass);
  auto detail = by_name(results).at("hostname").detail;
  EXPECT_NE(detail.find("DNS:localhost"), std::string::npos) << detail;
}

TEST_F(CheckDevServer, HostIpIsCheckedAgainstIpSans) {
  test::TestServer server(server_context_->context);
  auto o = options(server.port());
  o.server_name.clear();  // verify 127.0.0.1 itself
  auto results = check_server(o);
  EXPECT_CHECK(results, "hostname", CheckStatus::Pass);
}

TEST_F(CheckDevServer, WrongCaFileFailsTheChain) {
  test::TestServer server(server_context_->context);
  KeyedCert other = make_ca({{"CN", "Some Other Root"}});
  auto o = options(server.port());
  o.ca_file = dir_.write("other-ca.pem", to_pem(other.cert.get()));
  auto results = check_server(o);
  EXPECT_CHECK(results, "chain", CheckStatus::Fail);
  EXPECT_NE(by_name(results).at("chain").detail.find("unable to get local issuer certificate"),
            std::string::npos)
      << dump(results);
}

TEST(CheckServer, ClosedPortFailsToConnect) {
  test::TempDir dir;
  KeyedCert ca = make_ca({{"CN", "Root"}});
  CheckServerOptions o;
  o.host = "127.0.0.1";
  o.port = test::unused_port();
  o.ca_file = dir.write("ca.pem", to_pem(ca.cert.get()));
  o.timeout = std::chrono::seconds(5);
  auto results = check_server(o);
  ASSERT_EQ(results.size(), 1u) << dump(results);
  EXPECT_EQ(results[0].check, "connect");
  EXPECT_EQ(results[0].status, CheckStatus::Fail);
  EXPECT_TRUE(has_failure(results));
}

TEST(CheckServer, SilentServerTimesOutInTheHandshake) {
  // The kernel completes the TCP handshake from the listen backlog; nobody ever speaks TLS.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  test::TempDir dir;
  KeyedCert ca = make_ca({{"CN", "Root"}});
  CheckServerOptions o;
  o.host = "127.0.0.1";
  o.port = silent.local_endpoint().port();
  o.ca_file = dir.write("ca.pem", to_pem(ca.cert.get()));
  o.timeout = std::chrono::milliseconds(300);
  auto results = check_server(o);
  ASSERT_EQ(results.size(), 2u) << dump(results);
  EXPECT_EQ(results[0].status, CheckStatus::Pass);
  EXPECT_EQ(results[1].check, "handshake");
  EXPECT_EQ(results[1].status, CheckStatus::Fail);
  EXPECT_NE(results[1].detail.find("no answer within 300 ms"), std::string::npos)
      << results[1].detail;
}

TEST(CheckServer, UnreadableCaFileThrows) {
  CheckServerOptions o;
  o.host = "127.0.0.1";
  o.port = 1;
  o.ca_file = "/nonexistent/ca.pem";
  EXPECT_THROW(check_server(o), std::runtime_error);
}

// Server chains: root -> intermediate -> leaf.
class CheckChains : public ::testing::Test {
 protected:
  CheckChains()
      : root_(make_ca({{"CN", "Example Root CA"}})),
        intermediate_(make_ca({{"CN", "Example Intermediate CA"}}, &root_)),
        leaf_(make_leaf({{"CN", "localhost"}}, {kServerAuth}, intermediate_, {"localhost"})),
        vehicle_ca_(make_ca({{"CN", "Tesla Motors Products CA"}})) {}

  // A vehicle server sending `chain_pem`; `ca_names` vehicle CAs in its tls.ca_file.
  VehicleServerContext server_with(const std::string& chain_pem, int ca_names = 1) {
    std::string cas = to_pem(vehicle_ca_.cert.get());
    for (int i = 1; i < ca_names; ++i) {
      KeyedCert extra = make_ca({{"CN", "Extra CA " + std::to_string(i)}});
      cas += to_pem(extra.cert.get());
    }
    return make_vehicle_server_context({dir_.write("server.pem", chain_pem),
                                        dir_.write("server.key", to_pem(leaf_.key.get())),
                                        dir_.write("vehicle-ca.pem", cas)});
  }
  std::vector<CheckResult> check(std::uint16_t port, X509* ca) {
    CheckServerOptions o;
    o.host = "127.0.0.1";
    o.port = port;
    o.server_name = "localhost";
    o.ca_file = dir_.write("trusted.pem", to_pem(ca));
    o.timeout = std::chrono::seconds(5);
    return check_server(o);
  }

  test::TempDir dir_;
  KeyedCert root_, intermediate_, leaf_, vehicle_ca_;
};

TEST_F(CheckChains, LeafPlusIntermediatesAgainstRootPasses) {
  auto context = server_with(test::pem_of({leaf_.cert.get(), intermediate_.cert.get()}));
  test::TestServer server(context.context);
  auto results = check(server.port(), root_.cert.get());
  EXPECT_CHECK(results, "chain", CheckStatus::Pass);
  EXPECT_NE(by_name(results).at("chain").detail.find("2 certificates"), std::string::npos);
}

TEST_F(CheckChains, LeafOnlyAgainstRootFailsWithAdvice) {
  auto context = server_with(test::pem_of({leaf_.cert.get()}));
  test::TestServer server(context.context);
  auto results = check(server.port(), root_.cert.get());
  EXPECT_CHECK(results, "chain", CheckStatus::Fail);
  EXPECT_NE(by_name(results).at("chain").detail.find("sends only its leaf"), std::string::npos)
      << dump(results);
}

TEST_F(CheckChains, OnlyAPartialChainValidatesIsAWarning) {
  auto context = server_with(test::pem_of({leaf_.cert.get()}));
  test::TestServer server(context.context);
  auto results = check(server.port(), intermediate_.cert.get());
  EXPECT_CHECK(results, "chain", CheckStatus::Warn);
  const auto detail = by_name(results).at("chain").detail;
  EXPECT_NE(detail.find("only a partial chain validates"), std::string::npos) << detail;
  EXPECT_NE(detail.find("leaf plus all intermediates"), std::string::npos) << detail;
}

TEST_F(CheckChains, LongClientCaListWarns) {
  auto context = server_with(test::pem_of({leaf_.cert.get(), intermediate_.cert.get()}), 12);
  test::TestServer server(context.context);
  auto results = check(server.port(), root_.cert.get());
  EXPECT_CHECK(results, "client-ca-list", CheckStatus::Warn);
  EXPECT_NE(by_name(results).at("client-ca-list").detail.find("lists 12 acceptable CA names"),
            std::string::npos)
      << dump(results);
  EXPECT_FALSE(has_failure(results)) << dump(results);
}

TEST_F(CheckChains, ServerWithoutClientAuthFails) {
  ssl::context plain(ssl::context::tls_server);
  const auto cert =
      dir_.write("plain.pem", test::pem_of({leaf_.cert.get(), intermediate_.cert.get()}));
  const auto key = dir_.write("plain.key", to_pem(leaf_.key.get()));
  plain.use_certificate_chain_file(cert);
  plain.use_private_key_file(key, ssl::context::pem);
  test::TestServer server(plain);
  auto results = check(server.port(), root_.cert.get());
  EXPECT_CHECK(results, "chain", CheckStatus::Pass);
  EXPECT_CHECK(results, "client-ca-list", CheckStatus::Fail);
  EXPECT_TRUE(has_failure(results));
}

TEST(CheckStatusText, Names) {
  EXPECT_EQ(to_string(CheckStatus::Pass), "PASS");
  EXPECT_EQ(to_string(CheckStatus::Warn), "WARN");
  EXPECT_EQ(to_string(CheckStatus::Fail), "FAIL");
}

}  // namespace
}  // namespace ts::pki

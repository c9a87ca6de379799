// spec §2.2 (TLS) and §2.3 (identity from the verified chain), over real handshakes on 127.0.0.1.
#include "pki/tls_context.hpp"

#include <gtest/gtest.h>

#include "pki/dev_ca.hpp"
#include "pki/tests/test_pki.hpp"

namespace ts::pki {
namespace {

namespace ssl = boost::asio::ssl;
using test::KeyedCert;
using test::make_ca;
using test::make_leaf;

const std::string kClientAuth(kOidClientAuth);
const std::string kServerAuth(kOidServerAuth);
const std::string kVehicleProd(kOidTeslaVehicleProd);

// A client context that trusts `ca_file` and presents nothing (or the given PEM files).
ssl::context bare_client(const std::string& ca_file, int max_version = 0) {
  ssl::context context(ssl::context::tls_client);
  context.load_verify_file(ca_file);
  context.set_verify_mode(ssl::verify_peer);
  SSL_CTX_set_security_level(context.native_handle(), 0);
  SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_VERSION);
  SSL_CTX_set_max_proto_version(context.native_handle(), max_version);
  return context;
}

// A dev-ca directory with two vehicles and a server context built from it.
class DevCaHandshake : public ::testing::Test {
 protected:
  void SetUp() override {
    write_dev_ca({.out_dir = dir_.path(), .vins = {"5YJ3E1EA7JF000000", "5YJ3.E1EA7.JF000001"}});
  }
  std::string file(const std::string& name) const { return (dir_.path() / name).string(); }
  ServerTlsOptions options() const {
    return {file("server.pem"), file("server.key"), file("ca.pem")};
  }
  test::TempDir dir_;
};

TEST_F(DevCaHandshake, VehicleCertificateHandshakesAndYieldsTheVin) {
  VehicleServerContext server_context = make_vehicle_server_context(options());
  EXPECT_EQ(server_context.ca_count, 1u);
  EXPECT_EQ(server_context.client_ca_names, 1u);
  EXPECT_EQ(server_context.chain_length, 1u);
  test::TestServer server(server_context.context);

  for (const auto& [cn, vin] : {std::pair{"5YJ3E1EA7JF000000", "5YJ3E1EA7JF000000"},
                                std::pair{"5YJ3.E1EA7.JF000001", "5YJ3-E1EA7-JF000001"}}) {
    ssl::context client =
        make_vehicle_client_context(file("ca.pem"), file(std::string("vehicle-") + cn + ".pem"),
                                    file(std::string("vehicle-") + cn + ".key"));
    test::ClientOutcome outcome = test::run_client(client, server.port());
    ASSERT_TRUE(outcome.finished);
    EXPECT_FALSE(outcome.handshake) << outcome.handshake.message();
    EXPECT_FALSE(outcome.exchange) << outcome.exchange.message();
    EXPECT_NE(outcome.response.find("\r\n\r\nmtls ok"), std::string::npos) << outcome.response;
  }
  auto outcomes = server.wait_for_outcomes(2);
  ASSERT_EQ(outcomes.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_FALSE(outcomes[i].handshake);
    ASSERT_TRUE(outcomes[i].id.has_value());
    ASSERT_TRUE(outcomes[i].id->has_value()) << outcomes[i].id->error().message();
    EXPECT_EQ(outcomes[i].alpn, "http/1.1");  // spec §2.2: WebSocket needs HTTP/1.1
  }
  EXPECT_EQ((*outcomes[0].id)->sender_id(), "vehicle_device.5YJ3E1EA7JF000000");
  EXPECT_EQ((*outcomes[1].id)->sender_id(), "vehicle_device.5YJ3-E1EA7-JF000001");
}

TEST_F(DevCaHandshake, ClientWithoutCertificateIsRefused) {
  VehicleServerContext server_context = make_vehicle_server_context(options());
  test::TestServer server(server_context.context);
  for (int max_version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    ssl::context client = bare_client(file("ca.pem"), max_version);
    test::ClientOutcome outcome = test::run_client(client, server.port());
    ASSERT_TRUE(outcome.finished);
    // TLS 1.2 fails in the handshake, TLS 1.3 on the first read after it.
    EXPECT_TRUE(outcome.handshake || outcome.exchange) << "version " << max_version;
    EXPECT_EQ(outcome.response.find("mtls ok"), std::string::npos);
  }
  auto outcomes = server.wait_for_outcomes(2);
  ASSERT_EQ(outcomes.size(), 2u);
  for (const auto& o : outcomes) {
    EXPECT_TRUE(o.handshake);
    EXPECT_FALSE(o.id.has_value());
  }
}

TEST_F(DevCaHandshake, ClientCertificateFromAnUnknownCaIsRefused) {
  VehicleServerContext server_context = make_vehicle_server_context(options());
  test::TestServer server(server_context.context);
  // Same subject as the dev CA, different key: only the signature tells them apart.
  KeyedCert other_ca =
      make_ca({{"O", std::string(kDevCaOrganization)}, {"CN", std::string(kDevCaCommonName)}});
  KeyedCert vehicle =
      make_leaf({{"CN", "5YJ3E1EA7JF000002"}}, {kClientAuth, kVehicleProd}, other_ca);
  auto cert = dir_.write("other.pem", to_pem(vehicle.cert.get()));
  auto key = dir_.write("other.key", to_pem(vehicle.key.get()));
  ssl::context client = make_vehicle_client_context(file("ca.pem"), cert, key);
  test::ClientOutcome outcome = test::run_client(client, server.port());
  ASSERT_TRUE(outcome.finished);
  EXPECT_TRUE(outcome.handshake || outcome.exchange);
  auto outcomes = server.wait_for_outcomes(1);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(outcomes[0].handshake);
  EXPECT_FALSE(outcomes[0].id.has_value());
}

TEST_F(DevCaHandshake, UnverifiedExtraCertificatesNeverBecomeTheIdentity) {
  // The reference's VIN-spoofing hole (spec §2.3): a valid vehicle certificate followed by a
  // certificate for another VIN. Only the verified leaf counts.
  VehicleServerContext server_context = make_vehicle_server_context(options());
  test::TestServer server(server_context.context);
  KeyedCert rogue_ca = make_ca({{"CN", "Tesla Motors Products CA"}});
  KeyedCert spoof = make_leaf({{"CN", "SPOOFEDVIN000000"}}, {kClientAuth}, rogue_ca);
  const std::string chain = to_pem(test::load_cert(file("vehicle-5YJ3E1EA7JF000000.pem")).get()) +
                            to_pem(spoof.cert.get());
  auto cert = dir_.write("chain.pem", chain);
  ssl::context client =
      make_vehicle_client_context(file("ca.pem"), cert, file("vehicle-5YJ3E1EA7JF000000.key"));
  test::ClientOutcome outcome = test::run_client(client, server.port());
  ASSERT_TRUE(outcome.finished);
  EXPECT_FALSE(outcome.handshake) << outcome.handshake.message();
  auto outcomes = server.wait_for_outcomes(1);
  ASSERT_EQ(outcomes.size(), 1u);
  ASSERT_TRUE(outcomes[0].id.has_value() && outcomes[0].id->has_value());
  EXPECT_EQ((*outcomes[0].id)->device_id, "5YJ3E1EA7JF000000");
}

TEST_F(DevCaHandshake, TlsBelow12IsRefused) {
  VehicleServerContext server_context = make_vehicle_server_context(options());
  test::TestServer server(server_context.context);
  ssl::context client = make_vehicle_client_context(
      file("ca.pem"), file("vehicle-5YJ3E1EA7JF000000.pem"), file("vehicle-5YJ3E1EA7JF000000.key"));
  SSL_CTX_set_security_level(client.native_handle(), 0);
  SSL_CTX_set_min_proto_version(client.native_handle(), TLS1_VERSION);
  SSL_CTX_set_max_proto_version(client.native_handle(), TLS1_1_VERSION);
  test::ClientOutcome outcome = test::run_client(client, server.port());
  ASSERT_TRUE(outcome.finished);
  EXPECT_TRUE(outcome.handshake);
}

TEST(VehicleServerContext, EveryCaFileCertificateIsATrustAnchor) {
  // spec §2.2: ca_file holds only an intermediate; its root is nowhere. Go accepts, so must we.
  test::TempDir dir;
  KeyedCert root = make_ca({{"CN", "Tesla Product Root CA"}});
  KeyedCert intermediate = make_ca({{"CN", "Tesla Motors Product Issuing CA"}}, &root);
  KeyedCert server_leaf =
      make_leaf({{"CN", "localhost"}}, {kServerAuth}, intermediate, {"localhost"}, {"127.0.0.1"});
  KeyedCert vehicle =
      make_leaf({{"CN", "5YJ3E1EA7JF000003"}}, {kClientAuth, kVehicleProd}, intermediate);
  ServerTlsOptions options{
      dir.write("server.pem", test::pem_of({server_leaf.cert.get(), intermediate.cert.get()})),
      dir.write("server.key", to_pem(server_leaf.key.get())),
      dir.write("ca.pem", test::pem_of({intermediate.cert.get()}))};
  VehicleServerContext server_context = make_vehicle_server_context(options);
  EXPECT_EQ(server_context.chain_length, 2u);
  test::TestServer server(server_context.context);

  ssl::context client =
      make_vehicle_client_context(dir.write("root.pem", test::pem_of({root.cert.get()})),
                                  dir.write("vehicle.pem", to_pem(vehicle.cert.get())),
                                  dir.write("vehicle.key", to_pem(vehicle.key.get())));
  test::ClientOutcome outcome = test::run_client(client, server.port());
  ASSERT_TRUE(outcome.finished);
  EXPECT_FALSE(outcome.handshake) << outcome.handshake.message();
  auto outcomes = server.wait_for_outcomes(1);
  ASSERT_EQ(outcomes.size(), 1u);
  ASSERT_TRUE(outcomes[0].id.has_value() && outcomes[0].id->has_value());
  EXPECT_EQ((*outcomes[0].id)->sender_id(), "vehicle_device.5YJ3E1EA7JF000003");
}

TEST(VehicleServerContext, ClientCertificateWithoutClientAuthIsRefused) {
  // spec §2.2: purpose sslclient; a serverAuth-only certificate is no vehicle.
  test::TempDir dir;
  KeyedCert ca = make_ca({{"CN", "Tesla Motors Products CA"}});
  KeyedCert server_leaf =
      make_leaf({{"CN", "localhost"}}, {kServerAuth}, ca, {"localhost"}, {"127.0.0.1"});
  KeyedCert not_a_client = make_leaf({{"CN", "5YJ3E1EA7JF000004"}}, {kServerAuth}, ca);
  auto ca_file = dir.write("ca.pem", test::pem_of({ca.cert.get()}));
  VehicleServerContext server_context = make_vehicle_server_context(
      {dir.write("server.pem", to_pem(server_leaf.cert.get())),
       dir.write("server.key", to_pem(server_leaf.key.get())), ca_file});
  test::TestServer server(server_context.context);
  ssl::context client =
      make_vehicle_client_context(ca_file, dir.write("client.pem", to_pem(not_a_client.cert.get())),
                                  dir.write("client.key", to_pem(not_a_client.key.get())));
  test::ClientOutcome outcome = test::run_client(client, server.port());
  ASSERT_TRUE(outcome.finished);
  EXPECT_TRUE(outcome.handshake || outcome.exchange);
  auto outcomes = server.wait_for_outcomes(1);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(outcomes[0].handshake);
}

TEST(VehicleServerContext, CountsCaCertificatesAndDistinctSubjects) {
  test::TempDir dir;
  KeyedCert a1 = make_ca({{"CN", "Tesla Motors Product Issuing CA"}});
  KeyedCert a2 = make_ca({{"CN", "Tesla Motors Product Issuing CA"}});  // eng/prod twins
  KeyedCert b = make_ca({{"CN", "Tesla Motors Products CA"}});
  KeyedCert leaf = make_leaf({{"CN", "localhost"}}, {kServerAuth}, b, {"localhost"});
  VehicleServerContext context = make_vehicle_server_context(
      {dir.write("server.pem", to_pem(leaf.cert.get())),
       dir.write("server.key", to_pem(leaf.key.get())),
       dir.write("ca.pem", test::pem_of({a1.cert.get(), a2.cert.get(), b.cert.get()}))});
  EXPECT_EQ(context.ca_count, 3u);
  EXPECT_EQ(context.client_ca_names, 2u);
  const STACK_OF(X509_NAME)* names = SSL_CTX_get_client_CA_list(context.context.native_handle());
  ASSERT_NE(names, nullptr);
  EXPECT_EQ(sk_X509_NAME_num(names), 2);
}

std::string error_of(const ServerTlsOptions& options) {
  try {
    make_vehicle_server_context(options);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "no exception";
}

TEST(VehicleServerContext, ErrorsNameTheConfigKey) {
  test::TempDir dir;
  KeyedCert ca = make_ca({{"CN", "Tesla Motors Products CA"}});
  KeyedCert leaf = make_leaf({{"CN", "localhost"}}, {kServerAuth}, ca, {"localhost"});
  KeyedCert other = make_leaf({{"CN", "other"}}, {kServerAuth}, ca);
  const auto cert = dir.write("server.pem", to_pem(leaf.cert.get()));
  const auto key = dir.write("server.key", to_pem(leaf.key.get()));
  const auto other_key = dir.write("other.key", to_pem(other.key.get()));
  const auto ca_file = dir.write("ca.pem", to_pem(ca.cert.get()));
  const auto garbage = dir.write("garbage.pem", "not pem\n");
  const auto missing = (dir.path() / "missing.pem").string();

  EXPECT_EQ(error_of({cert, key, ca_file}), "no exception");
  EXPECT_EQ(error_of({missing, key, ca_file}).rfind("tls.server_cert: cannot read", 0), 0u);
  EXPECT_EQ(error_of({garbage, key, ca_file}).rfind("tls.server_cert: no PEM certificate", 0), 0u);
  EXPECT_EQ(error_of({cert, missing, ca_file}).rfind("tls.server_key: cannot read", 0), 0u);
  EXPECT_EQ(error_of({cert, garbage, ca_file}).rfind("tls.server_key: no usable", 0), 0u);
  EXPECT_EQ(
      error_of({cert, other_key, ca_file}).rfind("tls.server_key: private key does not match", 0),
      0u);
  EXPECT_EQ(error_of({cert, key, missing}).rfind("tls.ca_file: cannot read", 0), 0u);
  EXPECT_EQ(error_of({cert, key, garbage}).rfind("tls.ca_file: no PEM certificate", 0), 0u);
  EXPECT_EQ(error_of({cert, key, ""}).rfind("tls.ca_file: not set", 0), 0u);
  EXPECT_EQ(error_of({cert, key, dir.path().string()}).rfind("tls.ca_file: cannot read", 0), 0u);
}

TEST(VerifiedClientLeaf, NoSslNoLeaf) {
  EXPECT_EQ(verified_client_leaf(nullptr), nullptr);
  auto id = identity_from_connection(nullptr);
  ASSERT_FALSE(id.has_value());
  EXPECT_EQ(id.error(), errc::missing_verified_client_certificate);
}

}  // namespace
}  // namespace ts::pki

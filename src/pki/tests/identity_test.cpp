// spec §2.3: identity from the leaf of the verified chain. Certificates are generated here in the
// shapes of shared/vectors/reference/README.md "Certificates and identity" (cases 01-54).
#include "pki/identity.hpp"

#include <gtest/gtest.h>

#include <string>
#include <system_error>
#include <vector>

#include "pki/tests/test_pki.hpp"

namespace ts::pki {
namespace {

using test::KeyedCert;
using test::make_ca;
using test::make_leaf;

const std::string kClientAuth(kOidClientAuth);
const std::string kVehicleProd(kOidTeslaVehicleProd);
const std::string kExcluded = "1.3.6.1.4.1.49279.2.5.1.1";

// The three CAs of the vectors' table.
class VectorCertificates : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    main_ca_ = new KeyedCert(make_ca({{"O", "Peer Test"}, {"CN", "Tesla Motors Products CA"}}));
    oid_ca_ =
        new KeyedCert(make_ca({{"O", "Peer Test"}, {"CN", "Tesla Motors Product Issuing CA"}}));
    unknown_ca_ = new KeyedCert(make_ca({{"O", "Peer Test"}, {"CN", "Peer Unknown Issuer CA"}}));
  }
  static void TearDownTestSuite() {
    delete main_ca_;
    delete oid_ca_;
    delete unknown_ca_;
  }
  static KeyedCert* main_ca_;
  static KeyedCert* oid_ca_;
  static KeyedCert* unknown_ca_;
};
KeyedCert* VectorCertificates::main_ca_ = nullptr;
KeyedCert* VectorCertificates::oid_ca_ = nullptr;
KeyedCert* VectorCertificates::unknown_ca_ = nullptr;

TEST_F(VectorCertificates, Cases01To49PlainVehicle) {
  auto leaf =
      make_leaf({{"O", "Peer Test"}, {"CN", "5YJ3E1EA7JF000000"}}, {kClientAuth}, *main_ca_);
  auto id = identity_from_leaf(leaf.cert.get());
  ASSERT_TRUE(id.has_value()) << id.error().message();
  EXPECT_EQ(id->device_id, "5YJ3E1EA7JF000000");
  EXPECT_EQ(id->client_type, "vehicle_device");
  EXPECT_EQ(id->sender_id(), "vehicle_device.5YJ3E1EA7JF000000");
}

TEST_F(VectorCertificates, Case50DotsInCommonNameBecomeDashes) {
  auto leaf =
      make_leaf({{"O", "Peer Test"}, {"CN", "5YJ3.E1EA7.JF000001"}}, {kClientAuth}, *main_ca_);
  auto id = identity_from_leaf(leaf.cert.get());
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->device_id, "5YJ3-E1EA7-JF000001");
  EXPECT_EQ(id->client_type, "vehicle_device");
}

TEST_F(VectorCertificates, Case51TeslaMotorsSnOuIsBoardDevice) {
  auto leaf =
      make_leaf({{"O", "Peer Test"}, {"OU", "Tesla Motors SN"}, {"CN", "5YJ3E1EA7JF000002"}},
                {kClientAuth}, *main_ca_);
  auto id = identity_from_leaf(leaf.cert.get());
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->device_id, "5YJ3E1EA7JF000002");
  EXPECT_EQ(id->client_type, "vehicle_board_device");
  EXPECT_EQ(id->sender_id(), "vehicle_board_device.5YJ3E1EA7JF000002");
}

TEST_F(VectorCertificates, Case52OidIssuerWithVehicleOid) {
  auto leaf = make_leaf({{"O", "Peer Test"}, {"CN", "5YJ3E1EA7JF000003"}},
                        {kClientAuth, kVehicleProd}, *oid_ca_);
  auto id = identity_from_leaf(leaf.cert.get());
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->device_id, "5YJ3E1EA7JF000003");
  EXPECT_EQ(id->client_type, "vehicle_device");
}

TEST_F(VectorCertificates, Case53UnknownIssuerIsUnauthorized) {
  auto leaf =
      make_leaf({{"O", "Peer Test"}, {"CN", "5YJ3E1EA7JF000004"}}, {kClientAuth}, *unknown_ca_);
  auto id = identity_from_leaf(leaf.cert.get());
  ASSERT_FALSE(id.has_value());
  EXPECT_EQ(id.error(), errc::unauthorized_certificate);
  EXPECT_EQ(id.error().message(), "unauthorized certificate");
}

TEST_F(VectorCertificates, Case54ExcludedOidBeforeVehicleOidIsRejected) {
  auto leaf = make_leaf({{"O", "Peer Test"}, {"CN", "5YJ3E1EA7JF000005"}},
                        {kClientAuth, kExcluded, kVehicleProd}, *oid_ca_);
  auto id = identity_from_leaf(leaf.cert.get());
  ASSERT_FALSE(id.has_value());
  EXPECT_EQ(id.error(), errc::excluded_certificate);
  EXPECT_EQ(id.error().message(), "excluded certificate");
}

TEST_F(VectorCertificates, VehicleOidBeforeExcludedOidStopsAtTheMatch) {
  // spec §2.3: OIDs are walked in certificate order and the walk stops at the first match.
  auto leaf = make_leaf({{"CN", "5YJ3E1EA7JF000006"}}, {kVehicleProd, kExcluded}, *oid_ca_);
  auto id = identity_from_leaf(leaf.cert.get());
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->client_type, "vehicle_device");
}

TEST_F(VectorCertificates, UnknownOidsAreSkipped) {
  auto leaf =
      make_leaf({{"CN", "X"}},
                {kClientAuth, "1.3.6.1.4.1.49279.2.5.99", "1.3.6.1.4.1.49279.2.5.11"}, *oid_ca_);
  auto id = identity_from_leaf(leaf.cert.get());
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->client_type, "vehicle_board_device");
}

TEST_F(VectorCertificates, OidIssuerWithoutTeslaOidIsUnauthorized) {
  auto with_client_auth = make_leaf({{"CN", "5YJ3E1EA7JF000007"}}, {kClientAuth}, *oid_ca_);
  auto without_eku = make_leaf({{"CN", "5YJ3E1EA7JF000008"}}, {}, *oid_ca_);
  for (X509* leaf : {with_client_auth.cert.get(), without_eku.cert.get()}) {
    auto id = identity_from_leaf(leaf);
    ASSERT_FALSE(id.has_value());
    EXPECT_EQ(id.error(), errc::unauthorized_certificate);
  }
}

TEST_F(VectorCertificates, OidIssuerIgnoresTheBoardOu) {
  // The Tesla Motors SN special case belongs to step 4 only.
  auto leaf = make_leaf({{"OU", "Tesla Motors SN"}, {"CN", "V"}}, {kVehicleProd}, *oid_ca_);
  auto id = identity_from_leaf(leaf.cert.get());
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->client_type, "vehicle_device");
}

TEST_F(VectorCertificates, BoardOuMustBeTheFirstOu) {
  auto leaf = make_leaf({{"OU", "Other"}, {"OU", "Tesla Motors SN"}, {"CN", "V"}}, {kClientAuth},
                        *main_ca_);
  auto id = identity_from_leaf(leaf.cert.get());
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->client_type, "vehicle_device");
}

TEST_F(VectorCertificates, NullLeafIsMissingVerifiedCertificate) {
  auto id = identity_from_leaf(nullptr);
  ASSERT_FALSE(id.has_value());
  EXPECT_EQ(id.error(), errc::missing_verified_client_certificate);
  EXPECT_EQ(id.error().message(), "missing_verified_client_certificate");
}

TEST_F(VectorCertificates, LastCommonNameWins) {
  // Go's pkix.Name keeps the last CN of the sequence.
  auto leaf = make_leaf({{"CN", "FIRST"}, {"CN", "SECOND"}}, {kClientAuth}, *main_ca_);
  auto id = identity_from_leaf(leaf.cert.get());
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->device_id, "SECOND");
}

// spec §2.3 step 4: the three vehicle issuers, compared exactly.
struct IssuerCase {
  std::string issuer_cn;
  std::vector<std::string> ous;
  std::string expected;  // client type, or "" for unauthorized
};

class IssuerTest : public ::testing::TestWithParam<IssuerCase> {};

TEST_P(IssuerTest, ClientTypeFromIssuer) {
  const auto& param = GetParam();
  // An empty issuer CN means an issuer without any CN attribute.
  std::vector<NameEntry> issuer{{"O", "Peer Test"}};
  if (!param.issuer_cn.empty()) issuer.push_back({"CN", param.issuer_cn});
  auto ca = make_ca(issuer);
  std::vector<NameEntry> subject;
  for (const auto& ou : param.ous) subject.push_back({"OU", ou});
  subject.push_back({"CN", "5YJ3E1EA7JF000009"});
  auto leaf = make_leaf(subject, {kClientAuth}, ca);
  auto id = identity_from_leaf(leaf.cert.get());
  if (param.expected.empty()) {
    ASSERT_FALSE(id.has_value());
    EXPECT_EQ(id.error(), errc::unauthorized_certificate);
  } else {
    ASSERT_TRUE(id.has_value()) << id.error().message();
    EXPECT_EQ(id->client_type, param.expected);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Spec23Step4, IssuerTest,
    ::testing::Values(IssuerCase{"TeslaMotors", {}, "vehicle_device"},
                      IssuerCase{"Tesla Issuing CA", {}, "vehicle_device"},
                      IssuerCase{"Tesla Motors Products CA", {}, "vehicle_device"},
                      IssuerCase{
                          "Tesla Motors Products CA", {"Tesla Motors SN"}, "vehicle_board_device"},
                      // the board special case needs the Products CA issuer
                      IssuerCase{"Tesla Issuing CA", {"Tesla Motors SN"}, "vehicle_device"},
                      IssuerCase{"TeslaMotors", {"Tesla Motors SN"}, "vehicle_device"},
                      // exact, case-sensitive comparisons
                      IssuerCase{"tesla motors products ca", {}, ""},
                      IssuerCase{"Tesla Motors Products CA ", {}, ""},
                      IssuerCase{"Tesla Root CA", {}, ""}, IssuerCase{"", {}, ""}));

// spec §2.3 step 3: every one of the 15 OID issuers classifies by OID.
class OidIssuerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(OidIssuerTest, VehicleOidMakesVehicleDevice) {
  auto ca = make_ca({{"CN", GetParam()}});
  auto with_oid = make_leaf({{"CN", "5YJ3E1EA7JF000010"}}, {kClientAuth, kVehicleProd}, ca);
  auto id = identity_from_leaf(with_oid.cert.get());
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->client_type, "vehicle_device");
  // Without an OID the same issuer does not fall back to step 4.
  auto without_oid = make_leaf({{"CN", "5YJ3E1EA7JF000010"}}, {kClientAuth}, ca);
  auto rejected = identity_from_leaf(without_oid.cert.get());
  ASSERT_FALSE(rejected.has_value());
  EXPECT_EQ(rejected.error(), errc::unauthorized_certificate);
}

INSTANTIATE_TEST_SUITE_P(
    Spec23Step3, OidIssuerTest,
    ::testing::Values("Tesla Motors Product Issuing CA", "Tesla Motors Product RSA Issuing CA",
                      "Tesla Motors GF3 Product Issuing CA",
                      "Tesla Motors GF3 Product RSA Issuing CA", "Tesla Energy Product Issuing CA",
                      "Tesla Energy GF0 Product Issuing CA", "Tesla Motors GF0 Product Issuing CA",
                      "Tesla Motors GF Austin Product Issuing CA",
                      "Tesla Motors GF Berlin Product Issuing CA",
                      "Tesla Product Access Issuing CA", "Tesla China Product Access Issuing CA",
                      "Tesla GF0 Product Access Issuing CA", "Tesla GF3 Product Access Issuing CA",
                      "Tesla GF Austin Product Access Issuing CA",
                      "Tesla GF Berlin Product Access Issuing CA"));

// spec §2.3 step 3 table: eng and prod OIDs.
struct OidCase {
  std::string oid;
  std::string client_type;
};

class OidTableTest : public ::testing::TestWithParam<OidCase> {};

TEST_P(OidTableTest, OidGivesClientType) {
  static const KeyedCert ca = make_ca({{"CN", "Tesla Energy GF0 Product Issuing CA"}});
  auto leaf = make_leaf({{"CN", "DEVICE.1"}}, {kClientAuth, GetParam().oid}, ca);
  auto id = identity_from_leaf(leaf.cert.get());
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->client_type, GetParam().client_type);
  EXPECT_EQ(id->device_id, "DEVICE-1");
}

INSTANTIATE_TEST_SUITE_P(
    Spec23Table, OidTableTest,
    ::testing::Values(OidCase{"1.3.6.1.4.1.49279.2.4.1", "vehicle_device"},
                      OidCase{"1.3.6.1.4.1.49279.2.5.1", "vehicle_device"},
                      OidCase{"1.3.6.1.4.1.49279.2.4.11", "vehicle_board_device"},
                      OidCase{"1.3.6.1.4.1.49279.2.5.11", "vehicle_board_device"},
                      OidCase{"1.3.6.1.4.1.49279.2.4.2", "energy_device"},
                      OidCase{"1.3.6.1.4.1.49279.2.5.2", "energy_device"},
                      OidCase{"1.3.6.1.4.1.49279.2.4.12", "das_device"},
                      OidCase{"1.3.6.1.4.1.49279.2.5.12", "das_device"},
                      OidCase{"1.3.6.1.4.1.49279.2.4.14", "vehicle_service"},
                      OidCase{"1.3.6.1.4.1.49279.2.5.14", "vehicle_service"},
                      OidCase{"1.3.6.1.4.1.49279.2.4.15", "das_service"},
                      OidCase{"1.3.6.1.4.1.49279.2.5.15", "das_service"},
                      OidCase{"1.3.6.1.4.1.49279.2.4.16", "energy_service"},
                      OidCase{"1.3.6.1.4.1.49279.2.5.16", "energy_service"},
                      OidCase{"1.3.6.1.4.1.49279.2.4.28", "robotics_device"},
                      OidCase{"1.3.6.1.4.1.49279.2.5.28", "robotics_device"}));

// spec §2.3 step 3: the OU overrides.
struct OuCase {
  std::vector<std::string> ous;
  std::string expected;
};

class OuOverrideTest : public ::testing::TestWithParam<OuCase> {};

TEST_P(OuOverrideTest, FirstOverridingOuWins) {
  static const KeyedCert ca = make_ca({{"CN", "Tesla Energy Product Issuing CA"}});
  std::vector<NameEntry> subject;
  for (const auto& ou : GetParam().ous) subject.push_back({"OU", ou});
  subject.push_back({"CN", "1234567-00-A--TG1234"});
  auto leaf = make_leaf(subject, {"1.3.6.1.4.1.49279.2.5.2"}, ca);
  auto id = identity_from_leaf(leaf.cert.get());
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->client_type, GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    Spec23Overrides, OuOverrideTest,
    ::testing::Values(OuCase{{"Solar Inverter"}, "solar_inverter_device"},
                      OuCase{{"Gen3 Wall Connector"}, "wall_connector_device"},
                      OuCase{{"Other", "Gen3 Wall Connector"}, "wall_connector_device"},
                      OuCase{{"Gen3 Wall Connector", "Solar Inverter"}, "wall_connector_device"},
                      OuCase{{"Solar Inverter", "Gen3 Wall Connector"}, "solar_inverter_device"},
                      OuCase{{"solar inverter"}, "energy_device"}, OuCase{{}, "energy_device"}));

TEST(IdentityOverrides, OuOverrideNeedsAnOidIssuer) {
  auto ca = make_ca({{"CN", "Tesla Motors Products CA"}});
  auto leaf = make_leaf({{"OU", "Solar Inverter"}, {"CN", "V"}}, {kClientAuth}, ca);
  auto id = identity_from_leaf(leaf.cert.get());
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->client_type, "vehicle_device");
}

TEST(PkiErrc, IsAnErrorCategoryForBoostAndStd) {
  boost::system::error_code ec = errc::excluded_certificate;
  EXPECT_STREQ(ec.category().name(), "ts.pki");
  EXPECT_EQ(ec.value(), 2);
  EXPECT_EQ(ec, errc::excluded_certificate);
  EXPECT_NE(ec, errc::unauthorized_certificate);
  std::error_code std_ec = errc::unauthorized_certificate;
  EXPECT_EQ(std_ec.message(), "unauthorized certificate");
  EXPECT_EQ(make_error_code(errc::missing_verified_client_certificate).value(), 1);
}

}  // namespace
}  // namespace ts::pki

namespace ts::pki {
namespace {

// L10: the device id becomes an MQTT topic level; a CN that would break or widen a topic, or
// smuggle control characters into logs, is refused at the handshake.
TEST_F(VectorCertificates, DeviceIdsUnfitForATopicLevelAreRefused) {
  const std::vector<std::string> bad = {
      "a/b", "+", "5YJ#", std::string("5YJ\0X", 5), "5YJ\nX", "5YJ\x7f", "5YJ\tX"};
  for (const auto& cn : bad) {
    auto leaf = make_leaf({{"CN", cn}}, {kClientAuth}, *main_ca_);
    auto id = identity_from_leaf(leaf.cert.get());
    ASSERT_FALSE(id.has_value()) << "CN of " << cn.size() << " bytes was accepted";
    EXPECT_EQ(id.error(), errc::invalid_device_id);
    EXPECT_NE(id.error().message().find("invalid device id"), std::string::npos);
  }
  // No CN at all gives an empty device id.
  auto no_cn = make_leaf({{"O", "Peer Test"}}, {kClientAuth}, *main_ca_);
  auto id = identity_from_leaf(no_cn.cert.get());
  ASSERT_FALSE(id.has_value());
  EXPECT_EQ(id.error(), errc::invalid_device_id);
}

TEST_F(VectorCertificates, DeviceIdOfSixtyFourBytesIsAccepted) {
  auto leaf = make_leaf({{"CN", std::string(64, 'A')}}, {kClientAuth}, *main_ca_);
  auto id = identity_from_leaf(leaf.cert.get());
  ASSERT_TRUE(id.has_value()) << id.error().message();
  EXPECT_EQ(id->device_id.size(), 64u);
}

// OpenSSL refuses to encode a CN over 64 characters (ub-common-name), so the length rule is
// checked on the function itself.
TEST(DeviceId, Rules) {
  EXPECT_TRUE(is_valid_device_id("5YJ3E1EA7JF000000"));
  EXPECT_TRUE(is_valid_device_id("device-1"));
  EXPECT_FALSE(is_valid_device_id(""));
  EXPECT_FALSE(is_valid_device_id("a b\x01"));
  EXPECT_FALSE(is_valid_device_id(std::string(65, 'x')));
}

}  // namespace
}  // namespace ts::pki

#include "pki/certificate.hpp"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include "pki/openssl.hpp"
#include "pki/tests/test_pki.hpp"

namespace ts::pki {
namespace {

std::vector<std::string> eku_oids(X509* cert) {
  std::vector<std::string> oids;
  auto* eku =
      static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr));
  for (int i = 0; eku != nullptr && i < sk_ASN1_OBJECT_num(eku); ++i) {
    char buf[80];
    OBJ_obj2txt(buf, sizeof buf, sk_ASN1_OBJECT_value(eku, i), 1);
    oids.emplace_back(buf);
  }
  sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
  return oids;
}

TEST(KeyGenerator, MakesDistinctP256Keys) {
  KeyGenerator keys;
  EvpPkeyPtr a = keys.generate();
  EvpPkeyPtr b = keys.generate();
  char group[32] = {};
  size_t len = 0;
  ASSERT_EQ(EVP_PKEY_get_utf8_string_param(a.get(), "group", group, sizeof group, &len), 1);
  EXPECT_STREQ(group, "prime256v1");
  EXPECT_NE(EVP_PKEY_eq(a.get(), b.get()), 1);
}

TEST(IssueCertificate, CaIsSelfSignedWithCaExtensions) {
  auto ca = test::make_ca({{"O", "Org"}, {"CN", "Root"}});
  EXPECT_EQ(X509_check_ca(ca.cert.get()), 1);
  EXPECT_EQ(X509_check_issued(ca.cert.get(), ca.cert.get()), X509_V_OK);
  EXPECT_EQ(X509_verify(ca.cert.get(), ca.key.get()), 1);
  EXPECT_NE(X509_get_key_usage(ca.cert.get()) & KU_KEY_CERT_SIGN, 0u);
  EXPECT_EQ(name_to_string(X509_get_subject_name(ca.cert.get())), "CN=Root,O=Org");
}

TEST(IssueCertificate, LeafKeepsEkuOrderAndSans) {
  auto ca = test::make_ca({{"CN", "Root"}});
  auto leaf =
      test::make_leaf({{"OU", "A"}, {"OU", "B"}, {"CN", "leaf"}},
                      {"1.3.6.1.5.5.7.3.2", "1.3.6.1.4.1.49279.2.5.1.1", "1.3.6.1.4.1.49279.2.5.1"},
                      ca, {"example.test"}, {"127.0.0.1", "::1"});
  EXPECT_EQ(X509_check_ca(leaf.cert.get()), 0);
  EXPECT_EQ(X509_check_issued(ca.cert.get(), leaf.cert.get()), X509_V_OK);
  EXPECT_EQ(X509_verify(leaf.cert.get(), ca.key.get()), 1);
  EXPECT_EQ(eku_oids(leaf.cert.get()),
            (std::vector<std::string>{"1.3.6.1.5.5.7.3.2", "1.3.6.1.4.1.49279.2.5.1.1",
                                      "1.3.6.1.4.1.49279.2.5.1"}));
  EXPECT_EQ(name_entries(X509_get_subject_name(leaf.cert.get()), NID_organizationalUnitName),
            (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(X509_check_host(leaf.cert.get(), "example.test", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(leaf.cert.get(), "other.test", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(leaf.cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf.cert.get(), "::1", 0), 1);
}

TEST(IssueCertificate, RejectsAnInvalidOid) {
  auto ca = test::make_ca({{"CN", "Root"}});
  EXPECT_THROW(test::make_leaf({{"CN", "x"}}, {"not-an-oid"}, ca), std::runtime_error);
}

TEST(Pem, RoundTripsCertificatesAndKeys) {
  auto ca = test::make_ca({{"CN", "Root"}});
  auto leaf = test::make_leaf({{"CN", "leaf"}}, {}, ca);
  auto certs = read_pem_certificates(test::pem_of({leaf.cert.get(), ca.cert.get()}));
  ASSERT_EQ(certs.size(), 2u);
  EXPECT_EQ(X509_cmp(certs[0].get(), leaf.cert.get()), 0);
  EXPECT_EQ(X509_cmp(certs[1].get(), ca.cert.get()), 0);
  EvpPkeyPtr key = read_pem_private_key(to_pem(leaf.key.get()));
  ASSERT_TRUE(key);
  EXPECT_EQ(EVP_PKEY_eq(key.get(), leaf.key.get()), 1);
  EXPECT_TRUE(read_pem_certificates("garbage").empty());
  EXPECT_FALSE(read_pem_private_key("garbage"));
}

TEST(Pem, P256FastPathIsByteIdenticalToOpenSslsEncoder) {
  KeyGenerator keys;
  for (int i = 0; i < 50; ++i) {
    EvpPkeyPtr key = keys.generate();
    ASSERT_TRUE(is_p256(key.get()));
    const std::string fast = to_pem(key.get());
    ASSERT_EQ(fast, to_pem_generic(key.get())) << "key " << i;
    EvpPkeyPtr back = read_pem_private_key(fast);
    ASSERT_TRUE(back);
    EXPECT_EQ(EVP_PKEY_eq(back.get(), key.get()), 1);
  }
}

TEST(Pem, OtherKeysTakeTheGenericPath) {
  EvpPkeyPtr p384(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  ASSERT_TRUE(p384);
  EXPECT_FALSE(is_p256(p384.get()));
  const std::string pem = to_pem(p384.get());
  EXPECT_EQ(pem, to_pem_generic(p384.get()));
  EvpPkeyPtr back = read_pem_private_key(pem);
  ASSERT_TRUE(back);
  EXPECT_EQ(EVP_PKEY_eq(back.get(), p384.get()), 1);
}

TEST(IssueCertificatePem, SameCertificateShapeWithTheRightKey) {
  auto ca = test::make_ca({{"CN", "Root"}});
  KeyGenerator keys;
  EvpPkeyPtr key = keys.generate();
  CertificateSpec spec;
  spec.subject = {{"CN", "5YJ3E1EA7JF000000"}};
  spec.ext_key_usage = {std::string(kOidClientAuth), std::string(kOidTeslaVehicleProd)};
  spec.not_before = std::chrono::system_clock::now() - std::chrono::hours(1);
  spec.not_after = std::chrono::system_clock::now() + std::chrono::hours(1);
  auto certs =
      read_pem_certificates(issue_certificate_pem(spec, key.get(), ca.cert.get(), ca.key.get()));
  ASSERT_EQ(certs.size(), 1u);
  X509* cert = certs.front().get();
  ASSERT_NE(X509_get0_pubkey(cert), nullptr);
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(cert), key.get()), 1);
  EXPECT_EQ(X509_check_private_key(cert, key.get()), 1);
  EXPECT_EQ(X509_verify(cert, ca.key.get()), 1);
  EXPECT_EQ(eku_oids(cert), spec.ext_key_usage);
  // The key identifier covers the same public key bits either way.
  X509Ptr decoded = issue_certificate(spec, key.get(), ca.cert.get(), ca.key.get());
  const ASN1_OCTET_STRING* a = X509_get0_subject_key_id(cert);
  const ASN1_OCTET_STRING* b = X509_get0_subject_key_id(decoded.get());
  ASSERT_TRUE(a != nullptr && b != nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(a, b), 0);
}

}  // namespace
}  // namespace ts::pki

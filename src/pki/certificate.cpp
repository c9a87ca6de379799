#include "pki/certificate.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <array>
#include <ctime>
#include <stdexcept>

namespace ts::pki {

namespace {

[[noreturn]] void fail(std::string_view what) {
  throw std::runtime_error(std::string(what) + ": " + take_openssl_errors());
}

void check(int rc, std::string_view what) {
  if (rc <= 0) fail(what);
}

std::time_t to_time_t(std::chrono::system_clock::time_point t) {
  return std::chrono::system_clock::to_time_t(t);
}

void set_serial(X509* cert) {
  std::array<unsigned char, 16> bytes{};
  check(RAND_bytes(bytes.data(), static_cast<int>(bytes.size())), "RAND_bytes");
  bytes[0] &= 0x7f;  // positive
  bytes[0] |= 0x40;  // never shorter than 16 bytes, never zero
  std::unique_ptr<BIGNUM, OpensslDeleter<BIGNUM, BN_free>> bn(
      BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    fail("serial number");
  }
}

void set_subject(X509* cert, const std::vector<NameEntry>& entries) {
  X509_NAME* name = X509_get_subject_name(cert);
  for (const auto& e : entries) {
    check(X509_NAME_add_entry_by_txt(name, e.field.c_str(), MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(e.value.data()),
                                     static_cast<int>(e.value.size()), -1, 0),
          "subject attribute " + e.field);
  }
}

void add_basic_constraints(X509* cert, bool is_ca) {
  std::unique_ptr<BASIC_CONSTRAINTS, OpensslDeleter<BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free>> bc(
      BASIC_CONSTRAINTS_new());
  if (!bc) fail("basicConstraints");
  bc->ca = is_ca ? 0xff : 0;
  check(X509_add1_ext_i2d(cert, NID_basic_constraints, bc.get(), 1, X509V3_ADD_DEFAULT),
        "basicConstraints");
}

void add_key_usage(X509* cert, bool is_ca) {
  std::unique_ptr<ASN1_BIT_STRING, OpensslDeleter<ASN1_BIT_STRING, ASN1_BIT_STRING_free>> ku(
      ASN1_BIT_STRING_new());
  if (!ku) fail("keyUsage");
  constexpr int kDigitalSignature = 0, kKeyCertSign = 5, kCrlSign = 6;  // RFC 5280 §4.2.1.3
  check(ASN1_BIT_STRING_set_bit(ku.get(), kDigitalSignature, 1), "keyUsage");
  if (is_ca) {
    check(ASN1_BIT_STRING_set_bit(ku.get(), kKeyCertSign, 1), "keyUsage");
    check(ASN1_BIT_STRING_set_bit(ku.get(), kCrlSign, 1), "keyUsage");
  }
  check(X509_add1_ext_i2d(cert, NID_key_usage, ku.get(), 1, X509V3_ADD_DEFAULT), "keyUsage");
}

void add_ext_key_usage(X509* cert, const std::vector<std::string>& oids) {
  if (oids.empty()) return;
  EXTENDED_KEY_USAGE* eku = sk_ASN1_OBJECT_new_null();
  if (eku == nullptr) fail("extendedKeyUsage");
  struct Free {
    EXTENDED_KEY_USAGE* p;
    ~Free() { sk_ASN1_OBJECT_pop_free(p, ASN1_OBJECT_free); }
  } guard{eku};
  for (const auto& oid : oids) {
    ASN1_OBJECT* obj = OBJ_txt2obj(oid.c_str(), 1);  // 1: dotted numbers only
    if (obj == nullptr) fail("extendedKeyUsage OID " + oid);
    if (sk_ASN1_OBJECT_push(eku, obj) <= 0) {
      ASN1_OBJECT_free(obj);
      fail("extendedKeyUsage");
    }
  }
  check(X509_add1_ext_i2d(cert, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT), "extendedKeyUsage");
}

void add_subject_alt_names(X509* cert, const CertificateSpec& spec) {
  if (spec.dns_names.empty() && spec.ip_addresses.empty()) return;
  GENERAL_NAMES* names = sk_GENERAL_NAME_new_null();
  if (names == nullptr) fail("subjectAltName");
  struct Free {
    GENERAL_NAMES* p;
    ~Free() { GENERAL_NAMES_free(p); }
  } guard{names};
  auto push = [&](int type, ASN1_STRING* value) {
    GENERAL_NAME* gen = GENERAL_NAME_new();
    if (gen == nullptr) {
      ASN1_STRING_free(value);
      fail("subjectAltName");
    }
    GENERAL_NAME_set0_value(gen, type, value);
    if (sk_GENERAL_NAME_push(names, gen) <= 0) {
      GENERAL_NAME_free(gen);
      fail("subjectAltName");
    }
  };
  for (const auto& dns : spec.dns_names) {
    ASN1_IA5STRING* value = ASN1_IA5STRING_new();
    if (value == nullptr || ASN1_STRING_set(value, dns.data(), static_cast<int>(dns.size())) != 1) {
      ASN1_IA5STRING_free(value);
      fail("subjectAltName DNS " + dns);
    }
    push(GEN_DNS, value);
  }
  for (const auto& ip : spec.ip_addresses) {
    ASN1_OCTET_STRING* value = a2i_IPADDRESS(ip.c_str());
    if (value == nullptr) fail("subjectAltName IP " + ip);
    push(GEN_IPADD, value);
  }
  check(X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT),
        "subjectAltName");
}

using OctetStringPtr =
    std::unique_ptr<ASN1_OCTET_STRING, OpensslDeleter<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>>;

// RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bit string.
OctetStringPtr key_identifier(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  check(X509_pubkey_digest(cert, EVP_sha1(), md, &len), "subjectKeyIdentifier");
  OctetStringPtr id(ASN1_OCTET_STRING_new());
  if (!id || ASN1_OCTET_STRING_set(id.get(), md, static_cast<int>(len)) != 1) {
    fail("subjectKeyIdentifier");
  }
  return id;
}

void add_key_identifiers(X509* cert, X509* issuer_cert) {
  OctetStringPtr ski = key_identifier(cert);
  check(X509_add1_ext_i2d(cert, NID_subject_key_identifier, ski.get(), 0, X509V3_ADD_DEFAULT),
        "subjectKeyIdentifier");
  std::unique_ptr<AUTHORITY_KEYID, OpensslDeleter<AUTHORITY_KEYID, AUTHORITY_KEYID_free>> akid(
      AUTHORITY_KEYID_new());
  if (!akid) fail("authorityKeyIdentifier");
  if (issuer_cert == nullptr) {
    akid->keyid = ski.release();
  } else if (const ASN1_OCTET_STRING* issuer_ski = X509_get0_subject_key_id(issuer_cert)) {
    akid->keyid = ASN1_OCTET_STRING_dup(issuer_ski);
  } else {
    akid->keyid = key_identifier(issuer_cert).release();
  }
  check(X509_add1_ext_i2d(cert, NID_authority_key_identifier, akid.get(), 0, X509V3_ADD_DEFAULT),
        "authorityKeyIdentifier");
}

}  // namespace

KeyGenerator::KeyGenerator() {
  ctx_ = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  if (ctx_ == nullptr) fail("EC key context");
  if (EVP_PKEY_keygen_init(ctx_) <= 0) {
    EVP_PKEY_CTX_free(ctx_);
    fail("EC keygen init");
  }
  char group[] = "P-256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_PKEY_CTX_set_params(ctx_, params) <= 0) {
    EVP_PKEY_CTX_free(ctx_);
    fail("EC group P-256");
  }
}

KeyGenerator::~KeyGenerator() { EVP_PKEY_CTX_free(ctx_); }

EvpPkeyPtr KeyGenerator::generate() {
  EVP_PKEY* key = nullptr;
  check(EVP_PKEY_generate(ctx_, &key), "EC key generation");
  return EvpPkeyPtr(key);
}

namespace {

// How the subject public key gets into the certificate.
enum class PublicKeyPath {
  // X509_set_pubkey: the X509 object also caches the decoded key (X509_get0_pubkey works).
  // In OpenSSL 3 this encodes through the provider encoder and decodes again: ~0.4 ms.
  Decoded,
  // P-256 only: SubjectPublicKeyInfo fields set directly from the encoded point, a few us. The
  // X509 object then has no decoded key, so it is only serialized, never handed out.
  EncodedOnly,
};

void set_public_key(X509* cert, EVP_PKEY* key, PublicKeyPath path) {
  if (path == PublicKeyPath::Decoded || !is_p256(key)) {
    check(X509_set_pubkey(cert, key), "public key");
    return;
  }
  unsigned char* point = nullptr;
  const std::size_t len = EVP_PKEY_get1_encoded_public_key(key, &point);
  if (len == 0) fail("public key");
  // RFC 5480 §2.1.1: id-ecPublicKey with the named curve as parameter; the point as bit string.
  if (X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(cert), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                             V_ASN1_OBJECT, OBJ_nid2obj(NID_X9_62_prime256v1), point,
                             static_cast<int>(len)) != 1) {
    OPENSSL_free(point);
    fail("public key");
  }
}

X509Ptr build_certificate(const CertificateSpec& spec, EVP_PKEY* subject_key, X509* issuer_cert,
                          EVP_PKEY* issuer_key, PublicKeyPath path) {
  X509Ptr cert(X509_new());
  if (!cert) fail("X509_new");
  check(X509_set_version(cert.get(), X509_VERSION_3), "version");
  set_serial(cert.get());
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()), to_time_t(spec.not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), to_time_t(spec.not_after)) == nullptr) {
    fail("validity");
  }
  set_subject(cert.get(), spec.subject);
  X509_NAME* issuer_name = issuer_cert != nullptr ? X509_get_subject_name(issuer_cert)
                                                  : X509_get_subject_name(cert.get());
  check(X509_set_issuer_name(cert.get(), issuer_name), "issuer name");
  set_public_key(cert.get(), subject_key, path);
  add_basic_constraints(cert.get(), spec.is_ca);
  add_key_usage(cert.get(), spec.is_ca);
  add_ext_key_usage(cert.get(), spec.ext_key_usage);
  add_subject_alt_names(cert.get(), spec);
  add_key_identifiers(cert.get(), issuer_cert);
  check(X509_sign(cert.get(), issuer_key, EVP_sha256()), "signing");
  return cert;
}

}  // namespace

X509Ptr issue_certificate(const CertificateSpec& spec, EVP_PKEY* subject_key, X509* issuer_cert,
                          EVP_PKEY* issuer_key) {
  return build_certificate(spec, subject_key, issuer_cert, issuer_key, PublicKeyPath::Decoded);
}

std::string issue_certificate_pem(const CertificateSpec& spec, EVP_PKEY* subject_key,
                                  X509* issuer_cert, EVP_PKEY* issuer_key) {
  X509Ptr cert =
      build_certificate(spec, subject_key, issuer_cert, issuer_key, PublicKeyPath::EncodedOnly);
  std::string pem = to_pem(cert.get());
  if (pem.empty()) fail("PEM encoding");
  return pem;
}

}  // namespace ts::pki

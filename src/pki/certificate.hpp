#pragma once
/// Issuing X.509 certificates with ECDSA P-256 keys: what `tsctl dev-ca` writes and what the tests
/// use to build the certificate shapes of spec §2.3 (vehicle, board, OID issuer, unknown issuer).
/// No I/O. `KeyGenerator` is owned by one thread at a time; `issue_certificate` is a free
/// function, safe on any thread. Failures inside OpenSSL throw std::runtime_error carrying
/// OpenSSL's error text: this is tool and test code, never data plane.
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "pki/openssl.hpp"

namespace ts::pki {

/// Extended-key-usage OIDs we write (RFC 5280 §4.2.1.12) and Tesla's (spec §2.3 table).
inline constexpr std::string_view kOidServerAuth = "1.3.6.1.5.5.7.3.1";
inline constexpr std::string_view kOidClientAuth = "1.3.6.1.5.5.7.3.2";
inline constexpr std::string_view kOidTeslaVehicleProd = "1.3.6.1.4.1.49279.2.5.1";

/// One attribute of a distinguished name, by OpenSSL short name ("C", "O", "OU", "CN").
struct NameEntry {
  std::string field;
  std::string value;
};

/// What a certificate says about its subject. Names keep their order (spec §2.3 reads the
/// *first* OU and walks EKU OIDs in certificate order).
struct CertificateSpec {
  std::vector<NameEntry> subject;
  bool is_ca = false;                      ///< basicConstraints CA:TRUE + keyCertSign, cRLSign
  std::vector<std::string> ext_key_usage;  ///< dotted OIDs, in this order; empty = no extension
  std::vector<std::string> dns_names;      ///< subjectAltName DNS entries
  std::vector<std::string> ip_addresses;   ///< subjectAltName IP entries ("127.0.0.1", "::1")
  std::chrono::system_clock::time_point not_before;  ///< required
  std::chrono::system_clock::time_point not_after;   ///< required
};

/// Generates ECDSA P-256 key pairs. Builds the key-generation context once and reuses it, which
/// makes thousands of keys cheap (`tsctl dev-ca --count 10000`). Not thread-safe: one per thread.
/// The constructor throws std::runtime_error if OpenSSL cannot set up P-256.
class KeyGenerator {
 public:
  KeyGenerator();
  ~KeyGenerator();
  KeyGenerator(const KeyGenerator&) = delete;
  KeyGenerator& operator=(const KeyGenerator&) = delete;

  /// A fresh key pair; throws std::runtime_error on failure.
  EvpPkeyPtr generate();

 private:
  EVP_PKEY_CTX* ctx_ = nullptr;  // owned
};

/// Builds and signs a v3 certificate for `subject_key` with SHA-256: random 127-bit serial,
/// subjectKeyIdentifier, authorityKeyIdentifier, keyUsage (critical), basicConstraints
/// (critical), and the EKU/SAN extensions the spec asks for. `issuer_cert == nullptr` makes it
/// self-signed (then `issuer_key` must be `subject_key`). Throws std::runtime_error on failure.
X509Ptr issue_certificate(const CertificateSpec& spec, EVP_PKEY* subject_key, X509* issuer_cert,
                          EVP_PKEY* issuer_key);

/// The same certificate as PEM, for bulk issuing (`tsctl dev-ca --count 10000`): with a P-256
/// `subject_key` it skips OpenSSL 3's encode-and-decode round trip of the public key, which is
/// most of the cost of issue_certificate. Throws std::runtime_error on failure.
std::string issue_certificate_pem(const CertificateSpec& spec, EVP_PKEY* subject_key,
                                  X509* issuer_cert, EVP_PKEY* issuer_key);

}  // namespace ts::pki

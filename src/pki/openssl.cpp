#include "pki/openssl.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ts::pki {

X509Ptr up_ref(X509* cert) {
  if (cert != nullptr) X509_up_ref(cert);
  return X509Ptr(cert);
}

std::string take_openssl_errors(std::string_view fallback) {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    if (!text.empty()) text += "; ";
    text += buf;
  }
  if (text.empty()) text = fallback;
  return text;
}

std::optional<std::string> read_file(const std::filesystem::path& path, std::string& error) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    error = "is a directory";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = std::strerror(errno);
    return std::nullopt;
  }
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) {
    error = std::strerror(errno);
    return std::nullopt;
  }
  return std::move(out).str();
}

namespace {
BioPtr memory_bio(std::string_view bytes) {
  return BioPtr(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}
}  // namespace

std::vector<X509Ptr> read_pem_certificates(std::string_view pem) {
  std::vector<X509Ptr> certs;
  BioPtr bio = memory_bio(pem);
  if (!bio) return certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.emplace_back(cert);
  }
  // The loop ends with "no start line" at the end of the input; that is not an error.
  ERR_clear_error();
  return certs;
}

EvpPkeyPtr read_pem_private_key(std::string_view pem) {
  BioPtr bio = memory_bio(pem);
  if (!bio) return nullptr;
  // An empty passphrase callback result makes encrypted keys fail instead of prompting on a tty.
  auto no_passphrase = [](char*, int, int, void*) -> int { return 0; };
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  return key;
}

namespace {
std::string drain(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(len));
}
}  // namespace

std::string to_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return {};
  return drain(bio.get());
}

bool is_p256(EVP_PKEY* key) {
  char group[32] = {};
  std::size_t len = 0;
  bool p256 = key != nullptr && EVP_PKEY_is_a(key, "EC") &&
              EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                             &len) == 1 &&
              std::string_view(group, len) == "prime256v1";
  ERR_clear_error();
  return p256;
}

namespace {

// PKCS#8 PrivateKeyInfo (RFC 5208) of a P-256 key, DER, exactly as OpenSSL 3 encodes it:
// AlgorithmIdentifier {id-ecPublicKey, prime256v1} and an RFC 5915 ECPrivateKey without
// parameters but with the public key. Every length is fixed for P-256, so this is a template
// plus 32 + 65 bytes. OpenSSL's generic encoder costs ~0.1 ms per key; this costs ~5 us.
std::string p256_private_key_pem(EVP_PKEY* key) {
  constexpr unsigned char kHead[] = {
      0x30, 0x81, 0x87,                                            // SEQUENCE (135)
      0x02, 0x01, 0x00,                                            //   version 0
      0x30, 0x13,                                                  //   AlgorithmIdentifier
      0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,        //     id-ecPublicKey
      0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,  //     prime256v1
      0x04, 0x6d,                                                  //   OCTET STRING (109)
      0x30, 0x6b,                                                  //     ECPrivateKey (107)
      0x02, 0x01, 0x01,                                            //       version 1
      0x04, 0x20,                                                  //       privateKey (32)
  };
  constexpr unsigned char kPublicHead[] = {0xa1, 0x44, 0x03, 0x42, 0x00};  // [1] BIT STRING
  constexpr std::size_t kScalar = 32, kPoint = 65;
  unsigned char der[sizeof kHead + kScalar + sizeof kPublicHead + kPoint];
  static_assert(sizeof der == 138);

  BIGNUM* priv = nullptr;
  if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &priv) != 1) return {};
  unsigned char* out = der;
  out = std::copy(std::begin(kHead), std::end(kHead), out);
  const bool scalar_ok = BN_bn2binpad(priv, out, kScalar) == static_cast<int>(kScalar);
  BN_clear_free(priv);
  out += kScalar;
  out = std::copy(std::begin(kPublicHead), std::end(kPublicHead), out);
  std::size_t point_len = 0;
  const bool point_ok = EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                                        out, kPoint, &point_len) == 1 &&
                        point_len == kPoint && out[0] == 0x04;  // uncompressed point
  std::string pem;
  if (scalar_ok && point_ok) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (bio && PEM_write_bio(bio.get(), "PRIVATE KEY", "", der, sizeof der) > 0) {
      pem = drain(bio.get());
    }
  }
  OPENSSL_cleanse(der, sizeof der);
  ERR_clear_error();
  return pem;
}

}  // namespace

std::string to_pem(EVP_PKEY* key) {
  if (is_p256(key)) {
    if (std::string pem = p256_private_key_pem(key); !pem.empty()) return pem;
  }
  return to_pem_generic(key);
}

std::string to_pem_generic(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return {};
  }
  return drain(bio.get());
}

namespace {
std::string entry_utf8(const X509_NAME_ENTRY* entry) {
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(entry);
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return {};
  std::string value(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return value;
}
}  // namespace

std::string last_name_entry(const X509_NAME* name, int nid) {
  std::string value;
  if (name == nullptr) return value;
  for (int i = X509_NAME_get_index_by_NID(name, nid, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(name, nid, i)) {
    value = entry_utf8(X509_NAME_get_entry(name, i));
  }
  return value;
}

std::vector<std::string> name_entries(const X509_NAME* name, int nid) {
  std::vector<std::string> values;
  if (name == nullptr) return values;
  for (int i = X509_NAME_get_index_by_NID(name, nid, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(name, nid, i)) {
    values.push_back(entry_utf8(X509_NAME_get_entry(name, i)));
  }
  return values;
}

std::string name_to_string(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || name == nullptr) return {};
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  return drain(bio.get());
}

}  // namespace ts::pki

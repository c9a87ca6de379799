#include "pki/openssl.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>

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

std::string to_pem(EVP_PKEY* key) {
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

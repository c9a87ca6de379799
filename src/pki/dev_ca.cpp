#include "pki/dev_ca.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <set>
#include <stdexcept>

#include "pki/certificate.hpp"
#include "core/file.hpp"
#include "pki/openssl.hpp"

namespace ts::pki {

namespace fs = std::filesystem;
using std::chrono::system_clock;
using Days = std::chrono::days;

namespace {

constexpr Days kCaValidity{3650};
constexpr Days kServerValidity{825};  // the longest validity many TLS clients accept
constexpr Days kVehicleValidity{3650};
constexpr std::chrono::hours kBackdate{1};  // tolerate clock skew between machines

[[noreturn]] void fail(const fs::path& path, const std::string& what) {
  throw std::runtime_error(path.string() + ": " + what);
}

void write_file(const fs::path& path, const std::string& content, mode_t mode) {
  core::write_file_atomically(path, content, mode);
}

void write_key(const fs::path& path, EVP_PKEY* key) {
  std::string pem = to_pem(key);
  if (pem.empty()) fail(path, "cannot encode private key: " + take_openssl_errors());
  write_file(path, pem, 0600);
}

void write_cert(const fs::path& path, X509* cert) {
  std::string pem = to_pem(cert);
  if (pem.empty()) fail(path, "cannot encode certificate: " + take_openssl_errors());
  write_file(path, pem, 0644);
}

bool is_ip_literal(const std::string& name) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, name.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

bool is_valid_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253 || name.front() == '.' || name.back() == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '*';
  });
}

// True if `cert` was issued and signed by `ca`.
bool issued_by(X509* cert, X509* ca, EVP_PKEY* ca_public_key) {
  bool ok = X509_check_issued(ca, cert) == X509_V_OK && X509_verify(cert, ca_public_key) == 1;
  ERR_clear_error();
  return ok;
}

X509Ptr load_cert(const fs::path& path) {
  std::string error;
  auto pem = read_file(path, error);
  if (!pem) fail(path, error);
  auto certs = read_pem_certificates(*pem);
  if (certs.empty()) return nullptr;
  return std::move(certs.front());
}

EvpPkeyPtr load_key(const fs::path& path) {
  std::string error;
  auto pem = read_file(path, error);
  if (!pem) fail(path, error);
  return read_pem_private_key(*pem);
}

system_clock::time_point not_after_of(X509* cert, system_clock::time_point now) {
  int days = 0, seconds = 0;
  if (ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(cert)) != 1) return now;
  return now + Days(days) + std::chrono::seconds(seconds);
}

// The CA used for this run: the existing pair in DIR, or a new one.
struct Ca {
  X509Ptr cert;
  EvpPkeyPtr key;
  bool created = false;
};

Ca load_or_create_ca(const fs::path& dir, KeyGenerator& keys, system_clock::time_point now) {
  const fs::path pem_path = dir / "ca.pem";
  const fs::path key_path = dir / "ca.key";
  const bool has_pem = fs::exists(pem_path);
  const bool has_key = fs::exists(key_path);
  if (has_pem != has_key) {
    fail(has_pem ? key_path : pem_path,
         "missing while " + (has_pem ? pem_path : key_path).filename().string() +
             " exists; restore it or remove both to create a new CA");
  }
  Ca ca;
  if (has_pem) {
    ca.cert = load_cert(pem_path);
    if (!ca.cert) fail(pem_path, "no PEM certificate in it");
    if (X509_check_ca(ca.cert.get()) < 1) fail(pem_path, "is not a CA certificate");
    ca.key = load_key(key_path);
    if (!ca.key) fail(key_path, "no usable PEM private key in it");
    if (X509_check_private_key(ca.cert.get(), ca.key.get()) != 1) {
      ERR_clear_error();
      fail(key_path, "does not match " + pem_path.string());
    }
    return ca;
  }
  CertificateSpec spec;
  spec.subject = {{"O", std::string(kDevCaOrganization)}, {"CN", std::string(kDevCaCommonName)}};
  spec.is_ca = true;
  spec.not_before = now - kBackdate;
  spec.not_after = now + kCaValidity;
  ca.key = keys.generate();
  ca.cert = issue_certificate(spec, ca.key.get(), nullptr, ca.key.get());
  ca.created = true;
  write_key(key_path, ca.key.get());
  write_cert(pem_path, ca.cert.get());
  return ca;
}

bool server_cert_fits(const fs::path& pem_path, const fs::path& key_path, const Ca& ca,
                      EVP_PKEY* ca_public_key, const std::string& name) {
  if (!fs::exists(pem_path) || !fs::exists(key_path)) return false;
  X509Ptr cert = load_cert(pem_path);
  if (!cert || !issued_by(cert.get(), ca.cert.get(), ca_public_key)) return false;
  EvpPkeyPtr key = load_key(key_path);
  bool fits = key && X509_check_private_key(cert.get(), key.get()) == 1 &&
              (is_ip_literal(name)
                   ? X509_check_ip_asc(cert.get(), name.c_str(), 0) == 1
                   : X509_check_host(cert.get(), name.data(), name.size(), 0, nullptr) == 1) &&
              X509_check_ip_asc(cert.get(), "127.0.0.1", 0) == 1;
  ERR_clear_error();
  return fits;
}

}  // namespace

bool is_valid_dev_vin(std::string_view vin) {
  if (vin.empty() || vin.size() > 64 || vin.front() == '.' || vin.front() == '-') return false;
  return std::all_of(vin.begin(), vin.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

char vin_check_digit(std::string_view vin) {
  if (vin.size() != 17) return '?';
  // ISO 3779 transliteration (I, O, Q never appear) and the position weights.
  constexpr std::array<int, 17> kWeights = {8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2};
  constexpr std::string_view kLetters = "ABCDEFGHJKLMNPRSTUVWXYZ";
  constexpr std::array<int, 23> kLetterValues = {1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4,
                                                 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9};
  int sum = 0;
  for (std::size_t i = 0; i < vin.size(); ++i) {
    const char c = vin[i];
    int value = 0;
    if (c >= '0' && c <= '9') {
      value = c - '0';
    } else if (auto pos = kLetters.find(c); pos != std::string_view::npos) {
      value = kLetterValues[pos];
    } else {
      return '?';
    }
    sum += value * kWeights[i];
  }
  const int rest = sum % 11;
  return rest == 10 ? 'X' : static_cast<char>('0' + rest);
}

std::vector<std::string> synthetic_vins(std::size_t count, std::size_t first_serial) {
  if (first_serial + count > 1'000'000) {
    throw std::invalid_argument("synthetic VINs: at most 999999 serials (6 digits)");
  }
  std::vector<std::string> vins;
  vins.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    char serial[8];
    std::snprintf(serial, sizeof serial, "%06zu", first_serial + i);
    std::string vin = std::string("5YJ3E1EA") + "0" + "T" + "F" + serial;
    vin[8] = vin_check_digit(vin);  // position 9 weighs 0, so the placeholder does not matter
    vins.push_back(std::move(vin));
  }
  return vins;
}

DevCaResult write_dev_ca(const DevCaOptions& options) {
  if (options.out_dir.empty()) throw std::runtime_error("dev-ca: output directory not set");
  const std::string& name = options.server_name;
  if (!is_ip_literal(name) && !is_valid_dns_name(name)) {
    throw std::runtime_error("dev-ca: invalid server name '" + name + "'");
  }
  for (const auto& vin : options.vins) {
    if (!is_valid_dev_vin(vin)) {
      throw std::runtime_error("dev-ca: invalid VIN '" + vin +
                               "' (1-64 characters from A-Z a-z 0-9 . - _)");
    }
  }

  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec) fail(options.out_dir, ec.message());
  const fs::path dir = fs::absolute(options.out_dir).lexically_normal();

  DevCaResult result;
  result.ca_file = dir / "ca.pem";
  result.server_cert = dir / "server.pem";
  result.server_key = dir / "server.key";

  KeyGenerator keys;
  const auto now = system_clock::now();
  Ca ca = load_or_create_ca(dir, keys, now);
  result.ca_created = ca.created;
  EVP_PKEY* ca_public_key = X509_get0_pubkey(ca.cert.get());
  const auto ca_not_after = not_after_of(ca.cert.get(), now);
  auto capped = [&](Days validity) { return std::min(now + validity, ca_not_after); };

  if (!server_cert_fits(result.server_cert, result.server_key, ca, ca_public_key, name)) {
    CertificateSpec spec;
    spec.subject = {{"O", std::string(kDevCaOrganization)}, {"CN", name}};
    spec.ext_key_usage = {std::string(kOidServerAuth)};
    if (is_ip_literal(name)) {
      spec.ip_addresses = {name};
    } else {
      spec.dns_names = {name};
    }
    if (name != "127.0.0.1") spec.ip_addresses.emplace_back("127.0.0.1");
    spec.not_before = now - kBackdate;
    spec.not_after = capped(kServerValidity);
    EvpPkeyPtr key = keys.generate();
    std::string cert_pem = issue_certificate_pem(spec, key.get(), ca.cert.get(), ca.key.get());
    write_key(result.server_key, key.get());
    write_file(result.server_cert, cert_pem, 0644);
    result.server_written = true;
  }

  // spec §2.3: a vehicle certificate names the VIN as subject CN and carries the prod
  // vehicle_device OID; the issuer CN is an OID issuer, so the OID decides the client type.
  CertificateSpec vehicle;
  vehicle.ext_key_usage = {std::string(kOidClientAuth), std::string(kOidTeslaVehicleProd)};
  vehicle.not_before = now - kBackdate;
  vehicle.not_after = capped(kVehicleValidity);
  std::set<std::string> seen;
  for (const auto& vin : options.vins) {
    if (!seen.insert(vin).second) continue;
    const fs::path pem_path = dir / ("vehicle-" + vin + ".pem");
    const fs::path key_path = dir / ("vehicle-" + vin + ".key");
    if (fs::exists(pem_path) && fs::exists(key_path)) {
      X509Ptr existing = load_cert(pem_path);
      if (existing && issued_by(existing.get(), ca.cert.get(), ca_public_key)) {
        result.vehicles_kept.push_back(vin);
        continue;
      }
    }
    vehicle.subject = {{"CN", vin}};
    EvpPkeyPtr key = keys.generate();
    std::string cert_pem = issue_certificate_pem(vehicle, key.get(), ca.cert.get(), ca.key.get());
    write_key(key_path, key.get());
    write_file(pem_path, cert_pem, 0644);
    result.vehicles_written.push_back(vin);
  }
  return result;
}

}  // namespace ts::pki

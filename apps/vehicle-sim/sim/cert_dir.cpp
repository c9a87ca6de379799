#include "sim/cert_dir.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>
#include <system_error>

namespace ts::vehicle_sim {
namespace {

constexpr std::string_view kPrefix = "vehicle-";
constexpr std::string_view kCertSuffix = ".pem";
constexpr std::string_view kKeySuffix = ".key";

}  // namespace

std::string dev_ca_hint(const std::filesystem::path& dir, std::size_t count) {
  return fmt::format("tsctl dev-ca --out {} --count {}", dir.string(), count);
}

CertDir scan_cert_dir(const std::filesystem::path& dir, std::size_t wanted) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw CertDirError(fmt::format("certificate directory {} does not exist; create it with `{}`",
                                   dir.string(), dev_ca_hint(dir, wanted)));
  }
  CertDir out;
  out.dir = dir;
  out.ca_file = dir / "ca.pem";
  if (!fs::is_regular_file(out.ca_file, ec)) {
    throw CertDirError(
        fmt::format("{} not found (the CA that signed the server certificate); "
                    "create the directory with `{}`",
                    out.ca_file.string(), dev_ca_hint(dir, wanted)));
  }

  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with(kPrefix) || !name.ends_with(kCertSuffix)) continue;
    std::string vin =
        name.substr(kPrefix.size(), name.size() - kPrefix.size() - kCertSuffix.size());
    if (vin.empty()) continue;
    VehicleCert cert{vin, it->path(), dir / (std::string(kPrefix) + vin + std::string(kKeySuffix))};
    if (std::error_code key_ec; !fs::is_regular_file(cert.key_file, key_ec)) {
      throw CertDirError(fmt::format("{} has no private key: {} is missing",
                                     cert.cert_file.string(), cert.key_file.string()));
    }
    out.vehicles.push_back(std::move(cert));
  }
  if (ec) {
    throw CertDirError(fmt::format("cannot list {}: {}", dir.string(), ec.message()));
  }
  if (out.vehicles.empty()) {
    throw CertDirError(
        fmt::format("no vehicle certificates (vehicle-<VIN>.pem) in {}; create them "
                    "with `{}`",
                    dir.string(), dev_ca_hint(dir, wanted)));
  }
  std::sort(out.vehicles.begin(), out.vehicles.end(),
            [](const VehicleCert& a, const VehicleCert& b) { return a.vin < b.vin; });
  return out;
}

std::vector<VehicleIdentity> assign_identities(const CertDir& certs, std::size_t vehicles,
                                               bool reuse) {
  const std::size_t available = certs.vehicles.size();
  if (available == 0) {
    throw CertDirError(fmt::format("no vehicle certificates in {}; create them with `{}`",
                                   certs.dir.string(), dev_ca_hint(certs.dir, vehicles)));
  }
  if (vehicles > available && !reuse) {
    throw CertDirError(fmt::format(
        "{} vehicles requested but {} has only {} vehicle certificate{}; run `{}` to make more, "
        "or pass --reuse-certs to let vehicles share certificates",
        vehicles, certs.dir.string(), available, available == 1 ? "" : "s",
        dev_ca_hint(certs.dir, vehicles)));
  }
  std::vector<VehicleIdentity> out;
  out.reserve(vehicles);
  for (std::size_t i = 0; i < vehicles; ++i) {
    VehicleIdentity id;
    id.index = i;
    id.cert_index = i % available;
    id.copy = i / available;
    id.vin = certs.vehicles[id.cert_index].vin;
    id.txid_prefix = id.copy == 0 ? id.vin : fmt::format("{}.{}", id.vin, id.copy);
    out.push_back(std::move(id));
  }
  return out;
}

}  // namespace ts::vehicle_sim

#pragma once
/// The certificate directory written by `tsctl dev-ca --out DIR` (DESIGN.md): `ca.pem` and, per
/// vehicle, `vehicle-<VIN>.pem` with its key `vehicle-<VIN>.key`. Start-up code: reads the
/// directory listing only (not the files' contents) and reports problems by throwing
/// `CertDirError` with a message meant for the user. Any thread.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace ts::vehicle_sim {

struct VehicleCert {
  std::string vin;
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
};

struct CertDir {
  std::filesystem::path dir;
  std::filesystem::path ca_file;
  std::vector<VehicleCert> vehicles;  ///< sorted by VIN
};

/// Who one simulated vehicle is: which certificate it presents, and the ids derived from it.
struct VehicleIdentity {
  std::size_t index = 0;       ///< 0..N-1, also the connection order
  std::size_t cert_index = 0;  ///< into CertDir::vehicles
  std::string vin;
  std::size_t copy = 0;  ///< > 0 when --reuse-certs gave this certificate to an earlier vehicle
  /// Prefix of every txid this vehicle sends (`<vin>` or `<vin>.<copy>`), unique in the run.
  std::string txid_prefix;
};

class CertDirError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Lists DIR. Throws CertDirError when DIR or `ca.pem` is missing, when a `vehicle-<VIN>.pem`
/// has no `.key` next to it, or when there is no vehicle certificate at all. `wanted` only
/// shapes the advice in the messages (`tsctl dev-ca --out DIR --count <wanted>`).
CertDir scan_cert_dir(const std::filesystem::path& dir, std::size_t wanted);

/// Gives `vehicles` identities certificates in VIN order. With fewer certificates than vehicles
/// this throws CertDirError telling the user to make more, unless `reuse` is set: then the
/// certificates are handed out round-robin (vehicle i gets certificate i % M).
std::vector<VehicleIdentity> assign_identities(const CertDir& certs, std::size_t vehicles,
                                               bool reuse);

/// The `tsctl dev-ca` command line that makes `count` vehicle certificates in `dir`.
std::string dev_ca_hint(const std::filesystem::path& dir, std::size_t count);

}  // namespace ts::vehicle_sim

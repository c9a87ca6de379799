#pragma once
/// The development CA behind `tsctl dev-ca` (DESIGN.md contract): a self-signed ECDSA P-256 CA
/// whose CN is one of spec §2.3's OID issuers, a server certificate, and vehicle certificates
/// shaped like Tesla's (CN=VIN, EKU clientAuth + the prod vehicle_device OID), so that a
/// telemetry-server with `tls.ca_file: DIR/ca.pem` accepts them and takes the VIN from them.
/// Tool code: runs on the caller's thread, blocking file I/O, throws std::runtime_error naming the
/// path at fault. Not safe to run twice on one directory at the same time.
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace ts::pki {

/// Subject of the development CA. The CN must be an OID issuer (spec §2.3 step 3) so identity is
/// derived exactly as for a real car; the O says loudly that this is not Tesla.
inline constexpr std::string_view kDevCaOrganization = "TeslaSync Development (not Tesla)";
inline constexpr std::string_view kDevCaCommonName = "Tesla Motors Product Issuing CA";

struct DevCaOptions {
  std::filesystem::path out_dir;          ///< created if missing
  std::vector<std::string> vins;          ///< one vehicle certificate each (CN = VIN)
  std::string server_name = "localhost";  ///< DNS (or IP) SAN of server.pem, next to 127.0.0.1
};

/// What `write_dev_ca` did, for the tool to print.
struct DevCaResult {
  std::filesystem::path ca_file;              ///< DIR/ca.pem (absolute): the value for tls.ca_file
  std::filesystem::path server_cert;          ///< DIR/server.pem (absolute)
  std::filesystem::path server_key;           ///< DIR/server.key (absolute)
  bool ca_created = false;                    ///< false: an existing ca.pem/ca.key was reused
  bool server_written = false;                ///< false: the existing server.pem fits and was kept
  std::vector<std::string> vehicles_written;  ///< VINs whose files were (re)written
  std::vector<std::string> vehicles_kept;     ///< VINs whose existing files were left alone
};

/// Writes DIR/ca.pem, ca.key, server.pem, server.key and vehicle-<VIN>.pem/.key. Keys are PKCS#8
/// PEM with mode 0600, written to a temporary name and renamed into place.
/// If DIR already holds ca.pem and ca.key, that CA is reused (VINs can be added later). Existing
/// vehicle files are never overwritten when they were issued by the current CA; server.pem is kept
/// when it was issued by the current CA and matches `server_name`. Files issued by some other CA
/// (e.g. ca.pem was deleted) are replaced, since they could never verify.
/// Throws std::runtime_error: invalid VIN or server name, only one of ca.pem/ca.key present, a
/// ca.pem that is not a CA or does not match ca.key, any I/O failure.
DevCaResult write_dev_ca(const DevCaOptions& options);

/// True if `vin` can be a certificate CN and a file name: 1-64 characters from [A-Za-z0-9.-_],
/// not starting with '.' or '-'. (Real VINs are 17 characters; tests also use ids like
/// "device-1" or the dotted CN of spec §2.3.)
bool is_valid_dev_vin(std::string_view vin);

/// ISO 3779 / FMVSS 115 check digit (position 9) of a 17-character VIN: '0'-'9' or 'X'; '?' if
/// a character cannot appear in a VIN.
char vin_check_digit(std::string_view vin);

/// `count` distinct synthetic Model 3 VINs with valid check digits for load tests:
/// "5YJ3E1EA" + check digit + "T" (model year) + "F" (plant) + a 6-digit serial from
/// `first_serial` on. Throws std::invalid_argument if the serials would exceed 999999.
std::vector<std::string> synthetic_vins(std::size_t count, std::size_t first_serial = 100000);

}  // namespace ts::pki

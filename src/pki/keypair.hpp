#pragma once
/// The application's Fleet API key pair (fleet-api-and-pain-points §2.1): an EC P-256 (prime256v1)
/// key whose public half Tesla fetches from
/// `https://<domain>/.well-known/appspecific/com.tesla.3p.public-key.pem` and whose private half
/// signs fleet telemetry configs and vehicle commands. `tsctl keygen` writes it; teslasync-api
/// uses `inspect_pem` to refuse to start when TESLA_PUBLIC_KEY_FILE holds a private key, and
/// `validate_public_key_pem` for what it serves.
///
/// Free functions without shared state, any thread. Inspection and validation are pure and report
/// through their result (`key_errc`); generation and the file writers are tool/start-up code that
/// throw std::runtime_error naming the file at fault.
#include <boost/system/error_code.hpp>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/result.hpp"

namespace ts::pki {

enum class key_errc {
  private_key_present = 1,  ///< the PEM holds private key material (never serve it)
  no_public_key,            ///< no parseable "PUBLIC KEY" block
  no_private_key,           ///< no parseable private key
  not_p256,                 ///< a key, but not EC on P-256 (Tesla accepts only prime256v1)
};

/// The category named "ts.pki.key".
const boost::system::error_category& key_category() noexcept;

inline boost::system::error_code make_error_code(key_errc e) noexcept {
  return {static_cast<int>(e), key_category()};
}

/// What a PEM (or DER) text holds, as far as keys go.
struct PemInspection {
  /// Any PEM block whose label contains "PRIVATE KEY" ("PRIVATE KEY", "EC PRIVATE KEY",
  /// "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "OPENSSH PRIVATE KEY", ...), or text that
  /// OpenSSL parses as an unencrypted private key (PEM or DER). Damaged blocks count: a label
  /// is enough to refuse.
  bool private_key = false;
  /// At least one "PUBLIC KEY" block that parses as a SubjectPublicKeyInfo.
  bool public_key = false;
  /// The label of every "-----BEGIN <label>-----" line, in order.
  std::vector<std::string> labels;
};

PemInspection inspect_pem(std::string_view text);

/// inspect_pem of a file's contents. Throws std::runtime_error "<path>: <reason>" when the file
/// cannot be read.
PemInspection inspect_pem_file(const std::filesystem::path& path);

/// The public key to serve: `pem` must hold an EC P-256 public key ("-----BEGIN PUBLIC KEY-----")
/// and no private key material. Returns the key re-encoded by OpenSSL (canonical PEM, one
/// trailing newline). Errors: private_key_present, no_public_key, not_p256.
ts::Result<std::string> validate_public_key_pem(std::string_view pem);

/// The public PEM ("-----BEGIN PUBLIC KEY-----") of the private P-256 key in `private_pem`
/// (PKCS#8 or SEC1, unencrypted). Errors: no_private_key, not_p256.
ts::Result<std::string> derive_public_key_pem(std::string_view private_pem);

/// A fresh key pair as PEM text.
struct KeyPairPem {
  std::string private_pem;  ///< PKCS#8 "-----BEGIN PRIVATE KEY-----"
  std::string public_pem;   ///< SubjectPublicKeyInfo "-----BEGIN PUBLIC KEY-----"
};

/// Generates an EC P-256 key pair. Throws std::runtime_error with OpenSSL's error text if
/// OpenSSL fails (e.g. no entropy).
KeyPairPem generate_p256_key_pair();

/// Thrown by the writers below when a target exists and `force` is not set. Nothing was written.
class KeyFileExists : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct KeyPairFiles {
  std::filesystem::path private_key;  ///< absolute; mode 0600
  std::filesystem::path public_key;   ///< absolute; mode 0644
};

/// Generates a key pair and writes it: the private key with mode 0600, the public key with mode
/// 0644, each through a temporary file renamed into place; parent directories are created.
/// Without `force`, throws KeyFileExists (writing nothing) if either file exists. The two paths
/// must differ. Throws std::runtime_error naming the path on any I/O failure.
KeyPairFiles write_key_pair(const std::filesystem::path& private_key,
                            const std::filesystem::path& public_key, bool force);

/// Writes the public half of the existing private key file `private_key` to `public_key`
/// (mode 0644) and returns its absolute path. Throws KeyFileExists without `force` if
/// `public_key` exists, and std::runtime_error if the private key cannot be read or is not an
/// unencrypted P-256 key.
std::filesystem::path write_public_key_from(const std::filesystem::path& private_key,
                                            const std::filesystem::path& public_key, bool force);

}  // namespace ts::pki

template <>
struct boost::system::is_error_code_enum<ts::pki::key_errc> : std::true_type {};

template <>
struct std::is_error_code_enum<ts::pki::key_errc> : std::true_type {};

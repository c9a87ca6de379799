#pragma once
/// Who is on the other end of a vehicle connection, from its *verified* client certificate
/// (spec §2.3). Pure functions of the certificate; no I/O; any thread. Failures are values
/// (ts::pki::errc), never exceptions, because an attacker can choose every input.
#include <openssl/x509.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "pki/errc.hpp"

namespace ts::pki {

/// The "request identity" of spec §2.3 step 5 (minus the HTTP `Version` header, which the
/// session adds). `device_id` is what everything downstream calls the VIN.
struct Identity {
  std::string device_id;    ///< subject CN with every '.' replaced by '-'
  std::string client_type;  ///< e.g. "vehicle_device", "vehicle_board_device"

  /// spec §2.3 step 5: SenderID = client_type + "." + device_id.
  std::string sender_id() const;

  friend bool operator==(const Identity&, const Identity&) = default;
};

/// Longest device id accepted (bytes).
inline constexpr std::size_t kMaxDeviceIdBytes = 64;

/// Whether `device_id` may become an MQTT topic level, a metric label and a log field: 1 to 64
/// bytes, none of them '/', '+', '#', NUL or another control character (0x00-0x1f, 0x7f).
bool is_valid_device_id(std::string_view device_id);

/// Applies spec §2.3 steps 2-4 to `leaf`, which must be the leaf of the verified chain (see
/// `verified_client_leaf` in pki/tls_context.hpp), never a certificate the peer merely sent.
/// `leaf == nullptr` -> errc::missing_verified_client_certificate (step 1). A device id that
/// fails is_valid_device_id -> errc::invalid_device_id (ours: the reference accepts any CN; the
/// server then closes the connection as for any identity error).
ts::Result<Identity> identity_from_leaf(X509* leaf);

}  // namespace ts::pki

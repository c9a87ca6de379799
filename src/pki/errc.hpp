#pragma once
/// Error codes of the pki module: why a verified client certificate does not give an identity
/// (spec §2.3). Registered as a Boost.System error category (so also usable as std::error_code),
/// so callers can log the text and count by value. Immutable, any thread.
#include <boost/system/error_code.hpp>

#include <type_traits>

namespace ts::pki {

enum class errc {
  missing_verified_client_certificate = 1,  ///< spec §2.3 step 1: no verified chain / leaf
  excluded_certificate,                     ///< spec §2.3 step 3: OID 1.3.6.1.4.1.49279.2.5.1.1
  unauthorized_certificate,                 ///< spec §2.3 steps 3-4: not a known issuer / OID
  invalid_device_id,  ///< ours: a device id unfit for a topic level (pki/identity.hpp)
};

/// The category named "ts.pki"; messages are the spec's error names.
const boost::system::error_category& pki_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), pki_category()};
}

}  // namespace ts::pki

template <>
struct boost::system::is_error_code_enum<ts::pki::errc> : std::true_type {};

template <>
struct std::is_error_code_enum<ts::pki::errc> : std::true_type {};

#pragma once
/// Error codes of the HTTP layer and their one mapping to status codes and to the `code` string of
/// the JSON error body `{"error":{"code":"not_found","message":"…"}}`.
///
/// Registered as a Boost.System error category (so `ts::Result<T>` can carry them, e.g. from an
/// Authenticator). Immutable; any thread.
#include <boost/system/error_code.hpp>

#include <string_view>
#include <type_traits>

namespace ts::http {

enum class errc {
  bad_request = 1,         ///< 400
  unauthorized,            ///< 401 (sent with `WWW-Authenticate: Bearer`)
  forbidden,               ///< 403
  not_found,               ///< 404
  method_not_allowed,      ///< 405 (sent with `Allow`)
  conflict,                ///< 409
  payload_too_large,       ///< 413
  unsupported_media_type,  ///< 415
  unprocessable,           ///< 422: well-formed but invalid values
  too_many_requests,       ///< 429
  headers_too_large,       ///< 431
  internal,                ///< 500
  bad_gateway,             ///< 502: an upstream (e.g. Tesla's Fleet API) failed
  unavailable,             ///< 503: overloaded or stopping
  gateway_timeout,         ///< 504
};

/// The category named "ts.http"; messages are short English phrases ("not found").
const boost::system::error_category& http_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), http_category()};
}

/// The HTTP status for a code (the only place this mapping lives).
unsigned status_of(errc e) noexcept;
/// The machine-readable `code` of the JSON error body, e.g. "not_found".
std::string_view code_of(errc e) noexcept;

}  // namespace ts::http

template <>
struct boost::system::is_error_code_enum<ts::http::errc> : std::true_type {};

template <>
struct std::is_error_code_enum<ts::http::errc> : std::true_type {};

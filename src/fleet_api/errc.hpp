#pragma once
/// Errors of the Fleet API client: what a caller needs to decide what to do next (retry later,
/// back off for a sleeping car, re-authenticate, give up), plus the details for logs.
/// Immutable values, any thread.
#include <boost/assert/source_location.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <string>
#include <type_traits>

namespace ts::fleet_api {

enum class errc {
  unauthorized = 1,     ///< 401 after one token refresh and one retry; no usable credentials; or
                        ///< the token endpoint refused them (invalid_client, invalid_grant)
  vehicle_unavailable,  ///< 408 or 504: the car is asleep or offline. The client never wakes it
  rate_limited,         ///< 429: Error::retry_after says how long to wait (the client never sleeps)
  not_found,            ///< 404: unknown VIN, or no such endpoint
  rejected,             ///< another 4xx: 400 bad request, 403 missing scope, 412 needs the
                        ///< vehicle-command proxy, 422 ... (Error::message has Tesla's text)
  server_error,         ///< 5xx other than 504
  bad_response,         ///< a 2xx (or error) body that is not the JSON we expect
  network,              ///< no HTTP response: resolve, connect, TLS (incl. certificate
                        ///< verification), write or read failed or timed out (Error::cause)
  invalid_request,      ///< not sent: an argument cannot go into a request (e.g. a bad VIN)
};

/// The category named "ts.fleet_api".
const boost::system::error_category& category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), category()};
}

/// One failed call.
struct Error {
  boost::system::error_code code;   ///< always an errc value
  boost::system::error_code cause;  ///< errc::network: the transport's error (Asio, SSL, timeout)
  unsigned status = 0;              ///< HTTP status; 0 when there was no response
  /// errc::rate_limited: how long to wait before the next request (Retry-After as seconds or an
  /// HTTP date; kDefaultRetryAfter when the header is missing or unreadable). 0 otherwise.
  std::chrono::seconds retry_after{0};
  std::string message;  ///< Tesla's `error` (+ `error_description`), or the transport's text

  Error() = default;
  Error(errc e, std::string msg, unsigned http_status = 0)
      : code(make_error_code(e)), status(http_status), message(std::move(msg)) {}

  bool is(errc e) const noexcept { return code == make_error_code(e); }
  /// One line for logs: "rate_limited (HTTP 429, retry after 30 s): <message>".
  std::string describe() const;
};

inline constexpr std::chrono::seconds kDefaultRetryAfter{60};

/// What every client call returns. `value()` on an error throws std::system_error (via
/// throw_exception_from_error) carrying `code` and `describe()`.
template <class T>
using Result = boost::system::result<T, Error>;

[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

}  // namespace ts::fleet_api

template <>
struct boost::system::is_error_code_enum<ts::fleet_api::errc> : std::true_type {};

template <>
struct std::is_error_code_enum<ts::fleet_api::errc> : std::true_type {};

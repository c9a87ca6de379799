#pragma once
/// The request and response values handlers see, and the parsing helpers behind them
/// (percent-decoding, query strings, `Authorization: Bearer`, cookies).
///
/// Plain values with no I/O: any thread may use its own copy. A Request is filled by the Server
/// (method, target, headers, body, remote) and then by the Router (params, query_params,
/// principal) before a handler sees it.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace ts::http {

/// Name/value pairs in arrival order (header names keep their spelling; lookups ignore case).
using Fields = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;  ///< as sent, e.g. "GET"
  std::string target;  ///< path and query as sent (not decoded)
  std::string body;
  Fields headers;
  std::string remote;  ///< peer "address:port"; "" when the request did not come from a socket

  // Filled by the Router before the authenticator and handler run.
  Fields params;          ///< `{name}` path segments, percent-decoded
  Fields query_params;    ///< the query string, percent-decoded ('+' is a space), in order
  std::string principal;  ///< what the Authenticator returned; "" on public routes

  /// The path without the query string (not decoded).
  std::string path() const { return target.substr(0, target.find('?')); }
  /// The raw query string after '?', "" when there is none.
  std::string_view query_string() const;
  /// The first header with this name (case-insensitive).
  std::optional<std::string_view> header(std::string_view name) const;
  /// The first query parameter with this name (decoded).
  std::optional<std::string_view> query(std::string_view name) const;
  /// A path parameter by name; "" when the route has no such parameter.
  std::string_view param(std::string_view name) const;
  /// The token of `Authorization: Bearer <token>` (scheme case-insensitive), if present.
  std::optional<std::string_view> bearer_token() const;
  /// The value of cookie `name` from the `Cookie` header(s), if present (not decoded).
  std::optional<std::string_view> cookie(std::string_view name) const;
};

struct Response {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  Fields headers;  ///< extra headers, e.g. {"Allow", "GET, HEAD"}
};

/// Decodes %XX escapes (and '+' as a space when `plus_is_space`, as in query strings).
/// Fails with errc::bad_request on a truncated or non-hex escape.
ts::Result<std::string> percent_decode(std::string_view in, bool plus_is_space = false);

/// Splits `a=1&b=x%20y&c` into decoded pairs ({"c", ""} for a bare name; empty parts skipped).
/// Fails with errc::bad_request on a bad escape.
ts::Result<Fields> parse_query(std::string_view query);

/// ASCII case-insensitive equality (header names, auth schemes).
bool iequals(std::string_view a, std::string_view b) noexcept;

}  // namespace ts::http

#pragma once
/// Routes requests by method and path pattern to handlers, applies the authenticator to every
/// route not explicitly marked public, and owns the one JSON error shape:
/// `{"error":{"code":"not_found","message":"…"}}` (status from `status_of(errc)`).
///
/// Patterns are '/'-separated segments: literals, `{name}` (one non-empty segment, percent-decoded
/// into `Request::params`), or a last `{name...}` (the rest of the path, possibly empty). When
/// several routes match, the more specific wins (literal > `{name}` > `{name...}`, left to right).
/// A path that matches only with other methods answers 405 with `Allow`; none answers 404. HEAD is
/// served by the GET route (the Server sends the headers only).
///
/// Built once at start-up (adding routes throws std::invalid_argument on a bad or duplicate
/// pattern), then immutable: `match`, `call` and `handle` may run concurrently on any thread
/// (io threads and the blocking pool). Handlers, the authenticator and stream callbacks must be
/// thread-safe accordingly.
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/result.hpp"
#include "http/errc.hpp"
#include "http/request.hpp"
#include "http/sse.hpp"

namespace ts::http {

using Handler = std::function<Response(const Request&)>;

/// Decides whether a request to an authenticated route may proceed: returns the principal (stored
/// in Request::principal, e.g. "admin") or an error — errc::unauthorized (401 with
/// `WWW-Authenticate: Bearer`), errc::forbidden (403), or any other http errc. Must be
/// thread-safe; runs where the route's handler runs (inline or on the blocking pool).
using Authenticator = std::function<ts::Result<std::string>(const Request&)>;

enum class Access {
  Authenticated,  ///< default: the Authenticator must accept the request
  Public,         ///< no authentication (health checks, the public key)
};

enum class Execution {
  Inline,    ///< default: runs on the connection's io thread; must not block
  Blocking,  ///< runs on the Server's worker pool (SQLite, libpq, files); the connection waits
};

struct RouteOptions {
  Access access = Access::Authenticated;
  Execution execution = Execution::Inline;
  std::size_t body_limit = 0;  ///< bytes; 0 = ServerOptions::body_limit
};

/// Shorthands: `router.get("/healthz", h, kPublic)`, `router.get("/x", h, kBlocking)`.
inline const RouteOptions kPublic{.access = Access::Public};
inline const RouteOptions kBlocking{.execution = Execution::Blocking};

/// Thrown by handlers (and SSE key/snapshot callbacks) to answer with the JSON error body.
class Error : public std::runtime_error {
 public:
  Error(errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  errc code() const noexcept { return code_; }

 private:
  errc code_;
};

/// `{"error":{"code":…,"message":…}}` with the status of `code`; an empty message uses the
/// code's default text. 401 adds `WWW-Authenticate: Bearer`.
Response error_response(errc code, std::string_view message = {});
/// Maps any error_code: ts.http codes as above, anything else to 500 with `ec.message()`.
Response error_response(const boost::system::error_code& ec, std::string_view message = {});
/// A JSON response (`application/json`) with `body` as given.
Response json_response(unsigned status, std::string body);
/// `s` as a JSON string literal, quotes included (escapes `"`, `\` and control characters).
std::string json_quote(std::string_view s);

class Router {
 public:
  struct Route;

  /// Without an authenticator every authenticated route answers 401: a route is reachable
  /// without credentials only when it says so (Access::Public).
  explicit Router(Authenticator authenticator = nullptr);
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  /// Any method token ("GET", "POST", …; "HEAD" overrides the automatic HEAD of a GET route).
  Router& route(std::string_view method, std::string_view pattern, Handler handler,
                RouteOptions options = {});
  Router& get(std::string_view pattern, Handler h, RouteOptions o = {}) {
    return route("GET", pattern, std::move(h), o);
  }
  Router& post(std::string_view pattern, Handler h, RouteOptions o = {}) {
    return route("POST", pattern, std::move(h), o);
  }
  Router& put(std::string_view pattern, Handler h, RouteOptions o = {}) {
    return route("PUT", pattern, std::move(h), o);
  }
  Router& patch(std::string_view pattern, Handler h, RouteOptions o = {}) {
    return route("PATCH", pattern, std::move(h), o);
  }
  Router& del(std::string_view pattern, Handler h, RouteOptions o = {}) {
    return route("DELETE", pattern, std::move(h), o);
  }
  /// A GET route answered as an SSE stream from `sse.hub` (see sse.hpp). Authentication and
  /// `sse.key` run before any byte of the stream is sent (so they can still answer 401/404);
  /// with Execution::Blocking, they and `sse.snapshot` run on the worker pool. HEAD runs the same
  /// authentication and key (same 401/404 as GET) and then answers the stream's headers only.
  Router& stream(std::string_view pattern, SseRoute sse, RouteOptions options = {});
  /// Answers every request that no route's pattern matches (instead of 404), any method.
  Router& fallback(Handler handler, RouteOptions options = {});

  /// The whole dispatch for one request without a socket: match, authenticate, call. For stream
  /// routes it answers 500 (streams need http::Server). HEAD gets the GET response with its body
  /// (the Server drops it). Fills the request's params, query_params and principal.
  Response handle(Request& request) const;

  // ---- Used by http::Server (also handy in tests) ----

  struct Match {
    const Route* route = nullptr;  ///< null: `error` says why
    errc error = errc::not_found;
    std::string allow;  ///< for 405: "GET, HEAD, POST"
  };
  /// Finds the route and fills params and query_params (a bad escape answers 400).
  Match match(Request& request) const;
  /// The response for a failed match (404, or 405 with Allow, or 400).
  static Response no_route(const Match& m);
  /// Authentication then the handler, with http::Error and other exceptions turned into the JSON
  /// error (500 is logged). Never throws.
  Response call(const Route& route, Request& request) const;
  /// For a stream route: authentication then the key; the key, or the error response.
  std::variant<Response, std::string> open_stream(const Route& route, Request& request) const;
  /// For a stream route: the snapshot events, or the error response. Never throws.
  static std::variant<Response, std::vector<Event>> take_snapshot(const Route& route,
                                                                  const Request& request);
  /// True if any route runs on the worker pool.
  bool has_blocking_routes() const;
  /// The largest RouteOptions::body_limit of any route (0 if none sets one).
  std::size_t max_body_limit() const;

  struct Segment {
    enum class Kind { Literal, Param, Rest } kind;
    std::string text;  ///< the literal, or the parameter name
  };
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    RouteOptions options;
    Handler handler;                  ///< ordinary routes
    std::shared_ptr<const SseRoute> sse;  ///< stream routes
  };

 private:
  std::optional<Response> authenticate(const Route& route, Request& request) const;

  Authenticator authenticator_;
  std::vector<std::unique_ptr<Route>> routes_;
  std::unique_ptr<Route> fallback_;
};

}  // namespace ts::http

#include "http/router.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "core/log.hpp"

namespace ts::http {

namespace {

using Segment = Router::Segment;
using Kind = Router::Segment::Kind;

std::vector<Segment> parse_pattern(std::string_view pattern) {
  if (pattern.empty() || pattern.front() != '/')
    throw std::invalid_argument(fmt::format("route pattern '{}' must start with '/'", pattern));
  std::vector<Segment> out;
  std::string_view rest = pattern.substr(1);
  std::set<std::string, std::less<>> names;
  for (;;) {
    const auto slash = rest.find('/');
    const auto seg = rest.substr(0, slash);
    if (!out.empty() && out.back().kind == Kind::Rest)
      throw std::invalid_argument(
          fmt::format("route pattern '{}': a {{name...}} segment must be the last", pattern));
    if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}') {
      auto name = seg.substr(1, seg.size() - 2);
      Kind kind = Kind::Param;
      if (name.size() > 3 && name.substr(name.size() - 3) == "...") {
        kind = Kind::Rest;
        name.remove_suffix(3);
      }
      if (name.empty() || name.find_first_of("{}/") != std::string_view::npos)
        throw std::invalid_argument(fmt::format("route pattern '{}': bad segment '{}'", pattern, seg));
      if (!names.emplace(name).second)
        throw std::invalid_argument(
            fmt::format("route pattern '{}': parameter '{}' appears twice", pattern, name));
      out.push_back({kind, std::string(name)});
    } else {
      if (seg.find_first_of("{}") != std::string_view::npos)
        throw std::invalid_argument(fmt::format("route pattern '{}': bad segment '{}'", pattern, seg));
      out.push_back({Kind::Literal, std::string(seg)});
    }
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  return out;
}

bool same_shape(const std::vector<Segment>& a, const std::vector<Segment>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].kind != b[i].kind) return false;
    if (a[i].kind == Kind::Literal && a[i].text != b[i].text) return false;
  }
  return true;
}

// Lower is more specific; compared left to right.
bool more_specific(const std::vector<Segment>& a, const std::vector<Segment>& b) {
  const auto n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i)
    if (a[i].kind != b[i].kind) return a[i].kind < b[i].kind;
  return a.size() > b.size();
}

struct PathView {
  std::vector<std::string_view> raw;  // segments as sent
  std::vector<std::string> decoded;
  std::string_view raw_path;          // without the leading '/'
};

// Fills `params` when `segments` match the path.
bool match_segments(const std::vector<Segment>& segments, const PathView& path, Fields& params) {
  params.clear();
  std::size_t i = 0;
  for (; i < segments.size(); ++i) {
    const auto& s = segments[i];
    if (s.kind == Kind::Rest) {
      // The rest of the path from this segment on, decoded as one string.
      std::size_t offset = 0;
      for (std::size_t j = 0; j < i && j < path.raw.size(); ++j) offset += path.raw[j].size() + 1;
      auto rest = offset <= path.raw_path.size() ? path.raw_path.substr(offset) : std::string_view{};
      auto decoded = percent_decode(rest);
      params.emplace_back(s.text, decoded ? std::move(*decoded) : std::string(rest));
      return true;
    }
    if (i >= path.decoded.size()) return false;
    if (s.kind == Kind::Literal) {
      if (path.decoded[i] != s.text) return false;
    } else {
      if (path.decoded[i].empty()) return false;
      params.emplace_back(s.text, path.decoded[i]);
    }
  }
  return i == path.decoded.size();
}

}  // namespace

std::string json_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20)
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        else
          out += c;
    }
  }
  out += '"';
  return out;
}

Response json_response(unsigned status, std::string body) {
  return Response{status, "application/json", std::move(body), {}};
}

Response error_response(errc code, std::string_view message) {
  const std::string text = message.empty() ? make_error_code(code).message() : std::string(message);
  Response r = json_response(status_of(code), fmt::format(R"({{"error":{{"code":"{}","message":{}}}}})",
                                                          code_of(code), json_quote(text)));
  if (code == errc::unauthorized) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

Response error_response(const boost::system::error_code& ec, std::string_view message) {
  if (ec.category() == http_category()) return error_response(static_cast<errc>(ec.value()), message);
  return error_response(errc::internal, message.empty() ? std::string_view(ec.message()) : message);
}

Router::Router(Authenticator authenticator) : authenticator_(std::move(authenticator)) {}
Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

Router& Router::route(std::string_view method, std::string_view pattern, Handler handler,
                      RouteOptions options) {
  if (method.empty()) throw std::invalid_argument("route method must not be empty");
  if (!handler) throw std::invalid_argument(fmt::format("route {} {}: no handler", method, pattern));
  auto r = std::make_unique<Route>();
  r->method = std::string(method);
  r->pattern = std::string(pattern);
  r->segments = parse_pattern(pattern);
  r->options = options;
  r->handler = std::move(handler);
  for (const auto& other : routes_)
    if (other->method == r->method && same_shape(other->segments, r->segments))
      throw std::invalid_argument(
          fmt::format("route {} {} duplicates {} {}", method, pattern, other->method, other->pattern));
  routes_.push_back(std::move(r));
  return *this;
}

Router& Router::stream(std::string_view pattern, SseRoute sse, RouteOptions options) {
  if (!sse.hub) throw std::invalid_argument(fmt::format("stream {}: no EventHub", pattern));
  // The handler is never called for stream routes; it keeps `route`'s invariants simple.
  route("GET", pattern, [](const Request&) { return error_response(errc::internal); }, options);
  routes_.back()->sse = std::make_shared<const SseRoute>(std::move(sse));
  return *this;
}

Router& Router::fallback(Handler handler, RouteOptions options) {
  if (!handler) throw std::invalid_argument("fallback: no handler");
  fallback_ = std::make_unique<Route>();
  fallback_->method = "*";
  fallback_->pattern = "*";
  fallback_->options = options;
  fallback_->handler = std::move(handler);
  return *this;
}

bool Router::has_blocking_routes() const {
  if (fallback_ && fallback_->options.execution == Execution::Blocking) return true;
  return std::any_of(routes_.begin(), routes_.end(),
                     [](const auto& r) { return r->options.execution == Execution::Blocking; });
}

std::size_t Router::max_body_limit() const {
  std::size_t limit = fallback_ ? fallback_->options.body_limit : 0;
  for (const auto& r : routes_) limit = std::max(limit, r->options.body_limit);
  return limit;
}

Router::Match Router::match(Request& request) const {
  Match m;
  request.params.clear();
  auto query = parse_query(request.query_string());
  if (!query) {
    m.error = errc::bad_request;
    return m;
  }
  request.query_params = std::move(*query);

  const auto full = std::string_view(request.target).substr(0, request.target.find('?'));
  PathView path;
  if (full.empty() || full.front() != '/') {
    // Not origin-form (e.g. "*" or an absolute URI): no route serves it.
    if (fallback_) m.route = fallback_.get();
    return m;
  }
  path.raw_path = full.substr(1);
  for (std::string_view rest = path.raw_path;;) {
    const auto slash = rest.find('/');
    path.raw.push_back(rest.substr(0, slash));
    auto decoded = percent_decode(path.raw.back());
    if (!decoded) {
      m.error = errc::bad_request;
      return m;
    }
    path.decoded.push_back(std::move(*decoded));
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }

  const Route* best = nullptr;
  const Route* best_get = nullptr;  // for HEAD without an explicit HEAD route
  Fields best_params, best_get_params, params;
  std::set<std::string> allow;
  for (const auto& r : routes_) {
    if (!match_segments(r->segments, path, params)) continue;
    allow.insert(r->method);
    if (r->method == request.method) {
      if (!best || more_specific(r->segments, best->segments)) {
        best = r.get();
        best_params = params;
      }
    } else if (request.method == "HEAD" && r->method == "GET") {
      if (!best_get || more_specific(r->segments, best_get->segments)) {
        best_get = r.get();
        best_get_params = params;
      }
    }
  }
  if (!best && best_get) {
    best = best_get;
    best_params = std::move(best_get_params);
  }
  if (best) {
    m.route = best;
    request.params = std::move(best_params);
    return m;
  }
  if (allow.empty()) {
    if (fallback_) m.route = fallback_.get();
    return m;
  }
  if (allow.count("GET")) allow.insert("HEAD");
  m.error = errc::method_not_allowed;
  for (const auto& a : allow) {
    if (!m.allow.empty()) m.allow += ", ";
    m.allow += a;
  }
  return m;
}

Response Router::no_route(const Match& m) {
  if (m.error == errc::method_not_allowed) {
    auto r = error_response(errc::method_not_allowed, fmt::format("allowed: {}", m.allow));
    r.headers.emplace_back("Allow", m.allow);
    return r;
  }
  if (m.error == errc::bad_request) return error_response(errc::bad_request, "malformed percent-encoding");
  return error_response(m.error, "no such resource");
}

std::optional<Response> Router::authenticate(const Route& route, Request& request) const {
  request.principal.clear();
  if (route.options.access == Access::Public) return std::nullopt;
  if (!authenticator_) return error_response(errc::unauthorized);
  try {
    auto who = authenticator_(request);
    if (who) {
      request.principal = std::move(*who);
      return std::nullopt;
    }
    if (who.error().category() == http_category())
      return error_response(static_cast<errc>(who.error().value()));
    return error_response(errc::unauthorized);
  } catch (const Error& e) {
    return error_response(e.code(), e.what());
  } catch (const std::exception& e) {
    ts::log::get("http")->error("[{}] authenticator failed for {} {}: {}", request.remote,
                                request.method, request.path(), e.what());
    return error_response(errc::internal);
  }
}

Response Router::call(const Route& route, Request& request) const {
  if (auto denied = authenticate(route, request)) return std::move(*denied);
  try {
    return route.handler(request);
  } catch (const Error& e) {
    return error_response(e.code(), e.what());
  } catch (const std::exception& e) {
    ts::log::get("http")->error("[{}] handler for {} {} failed: {}", request.remote, request.method,
                                request.path(), e.what());
    return error_response(errc::internal);
  }
}

std::variant<Response, std::string> Router::open_stream(const Route& route, Request& request) const {
  if (auto denied = authenticate(route, request)) return std::move(*denied);
  try {
    return route.sse->key ? route.sse->key(request) : std::string();
  } catch (const Error& e) {
    return error_response(e.code(), e.what());
  } catch (const std::exception& e) {
    ts::log::get("sse")->error("[{}] stream key for {} failed: {}", request.remote, request.path(),
                               e.what());
    return error_response(errc::internal);
  }
}

std::variant<Response, std::vector<Event>> Router::take_snapshot(const Route& route,
                                                                 const Request& request) {
  if (!route.sse->snapshot) return std::vector<Event>{};
  try {
    return route.sse->snapshot(request);
  } catch (const Error& e) {
    return error_response(e.code(), e.what());
  } catch (const std::exception& e) {
    ts::log::get("sse")->error("[{}] snapshot for {} failed: {}", request.remote, request.path(),
                               e.what());
    return error_response(errc::internal);
  }
}

Response Router::handle(Request& request) const {
  auto m = match(request);
  if (!m.route) return no_route(m);
  if (m.route->sse) return error_response(errc::internal, "stream routes are served by http::Server");
  return call(*m.route, request);
}

}  // namespace ts::http

#include "routes.hpp"

#include <boost/json.hpp>

#include <charconv>

#include "signal/vin.hpp"
#include "views.hpp"

namespace ts::api {
namespace {

using http::errc;
using http::Request;
using http::Response;

/// An integer query parameter in [min, max], `fallback` when absent; 400 otherwise.
std::size_t size_param(const Request& r, std::string_view name, std::size_t fallback,
                       std::size_t min, std::size_t max) {
  auto v = r.query(name);
  if (!v || v->empty()) return fallback;
  std::size_t n = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || end != v->data() + v->size() || n < min || n > max) {
    throw http::Error(errc::bad_request, std::string(name) + " must be an integer in " +
                                             std::to_string(min) + ".." + std::to_string(max));
  }
  return n;
}

/// A non-empty `name` query parameter, if given.
std::optional<std::string_view> optional_param(const Request& r, std::string_view name) {
  auto v = r.query(name);
  if (!v || v->empty()) return std::nullopt;
  return v;
}

std::optional<signal::Timestamp> time_param(const Request& r, std::string_view name) {
  auto v = r.query(name);
  if (!v || v->empty()) return std::nullopt;
  auto t = signal::parse_time(*v);
  if (!t) {
    throw http::Error(errc::bad_request,
                      std::string(name) + " must be an RFC 3339 time, e.g. 2026-11-24T16:00:00Z");
  }
  return t;
}

/// The value of a storage call, or a 503 naming the failure (the database is down).
template <class T>
T stored(Result<T> r, std::string_view what) {
  if (!r) {
    throw http::Error(errc::unavailable,
                      std::string(what) + ": database unavailable (" + r.error().message() + ")");
  }
  return std::move(*r);
}

/// The JSON object of a request body: 415 when a Content-Type other than application/json is
/// given (whatever the credentials: a body declared as something else is never parsed as JSON),
/// 400 unless it parses to an object. A missing Content-Type is read as JSON for API clients;
/// cookie-authenticated requests must declare it anyway (auth.hpp, CSRF rule).
boost::json::object json_body(const Request& r) {
  if (auto type = r.header("Content-Type"); type && !is_json_content_type(type)) {
    throw http::Error(errc::unsupported_media_type,
                      "the body must be sent as Content-Type: application/json");
  }
  boost::system::error_code ec;
  auto doc = boost::json::parse(r.body, ec);
  if (ec || !doc.is_object()) throw http::Error(errc::bad_request, "body must be a JSON object");
  return std::move(doc.as_object());
}

std::string token_json(std::int64_t id, std::string_view name, bool environment,
                       std::optional<signal::Timestamp> created_at,
                       std::optional<signal::Timestamp> last_used_at) {
  std::string out = "{\"id\":" + std::to_string(id) + ",\"name\":";
  append_json_string(out, name);
  out += environment ? ",\"source\":\"environment\"" : ",\"source\":\"database\"";
  auto time = [&out](std::optional<signal::Timestamp> t) {
    if (t) {
      out += "\"" + signal::format_time(*t) + "\"";
    } else {
      out += "null";
    }
  };
  out += ",\"created_at\":";
  time(created_at);
  out += ",\"last_used_at\":";
  time(last_used_at);
  out += ",\"revocable\":";
  out += environment ? "false" : "true";
  return out + "}";
}

/// 404 unless `vin` is registered.
std::string registered_vin(Services& s, const Request& r) {
  std::string vin(r.param("vin"));
  if (!s.vins.contains(vin)) throw http::Error(errc::not_found, "vehicle " + vin + " is not registered");
  return vin;
}

template <class T, class F>
Response list_response(const std::vector<T>& rows, F&& to_json) {
  std::vector<std::string> items;
  items.reserve(rows.size());
  for (const auto& row : rows) items.push_back(to_json(row));
  return http::json_response(200, "{\"items\":" + json_array(items) + "}");
}

std::string vehicle_json(Services& s, const storage::Vehicle& v,
                         const std::vector<std::pair<std::string, polling::PollState>>& polls) {
  std::string out = "{\"vin\":";
  append_json_string(out, v.vin);
  out += ",\"name\":";
  append_json_string(out, v.name);
  out += ",\"source\":\"" + std::string(storage::vehicle_source_name(v.source)) + "\"";
  out += ",\"created_at\":\"" + signal::format_time(v.created_at) + "\",\"last_stream_at\":";
  if (auto t = s.store.last_received(v.vin, signal::Source::Stream)) {
    out += "\"" + signal::format_time(*t) + "\"";
  } else {
    out += "null";
  }
  out += ",\"poll_state\":";
  std::string state = "null";
  for (const auto& [vin, st] : polls) {
    if (vin == v.vin) state = "\"" + std::string(polling::to_string(st)) + "\"";
  }
  out += state;
  out += ",\"signals\":" + std::to_string(s.store.snapshot(v.vin).size()) + "}";
  return out;
}

}  // namespace

std::shared_ptr<const http::Router> make_router(Services& s) {
  auto authenticate = [&s](const Request& r) { return api::authenticate(s.tokens, r); };
  auto router = std::make_shared<http::Router>(authenticate);
  auto& rt = *router;
  const http::RouteOptions blocking = http::kBlocking;

  // ---- public ----
  rt.get("/healthz", [](const Request&) { return http::json_response(200, R"({"status":"ok"})"); },
         http::kPublic);
  rt.get("/readyz",
         [&s](const Request&) {
           auto reason = s.not_ready_reason();
           if (!reason.empty()) {
             std::string body = R"({"status":"not_ready","reason":)";
             append_json_string(body, reason);
             return http::json_response(503, body + "}");
           }
           return http::json_response(200, R"({"status":"ready"})");
         },
         http::kPublic);
  rt.get("/.well-known/appspecific/com.tesla.3p.public-key.pem",
         [&s](const Request&) {
           if (s.public_key_pem.empty()) {
             return http::error_response(errc::not_found,
                                         "no public key configured (TESLA_PUBLIC_KEY_FILE)");
           }
           Response r{.content_type = "application/x-pem-file", .body = s.public_key_pem};
           r.headers.emplace_back("Cache-Control", "public, max-age=3600");
           return r;
         },
         http::kPublic);

  // ---- web UI session: the token as an HttpOnly cookie ----
  // Public: the token in the body is the credential. Secure only when the client reached us over
  // TLS (X-Forwarded-Proto: https): the API serves plain HTTP on loopback by default, where a
  // browser would drop a Secure cookie and sign-in could never work.
  rt.post("/api/v1/session",
          [&s](const Request& r) {
            auto body = json_body(r);
            const auto* token = body.if_contains("token");
            if (!token || !token->is_string() || token->as_string().empty()) {
              throw http::Error(errc::unprocessable, "token must be a non-empty string");
            }
            auto who = s.tokens.find(token->as_string(), signal::now());
            if (!who) throw http::Error(errc::unauthorized, "unknown or revoked token");
            std::string out = "{\"name\":";
            append_json_string(out, who->name);
            auto res = http::json_response(200, out + "}");
            res.headers.emplace_back("Set-Cookie",
                                     session_cookie(token->as_string(), came_over_tls(r)));
            res.headers.emplace_back("Cache-Control", "no-store");
            return res;
          },
          http::kPublic);
  rt.del("/api/v1/session",
         [](const Request& r) {
           Response res{.status = 204, .content_type = "application/json"};
           res.headers.emplace_back("Set-Cookie", clear_session_cookie(came_over_tls(r)));
           return res;
         },
         http::kPublic);

  // ---- API tokens ----
  rt.get("/api/v1/tokens",
         [&s](const Request&) {
           std::vector<std::string> items;
           if (auto env = s.tokens.environment_token()) {
             items.push_back(token_json(env->id, env->name, true, std::nullopt, env->last_used_at));
           }
           for (const auto& t : stored(s.db.list_tokens(), "API tokens")) {
             auto used = t.last_used_at;
             if (auto mem = s.tokens.last_used(t.id); mem && (!used || *mem > *used)) used = mem;
             items.push_back(token_json(t.id, t.name, false, t.created_at, used));
           }
           return http::json_response(200, "{\"tokens\":" + json_array(items) + "}");
         },
         blocking);
  rt.post("/api/v1/tokens",
          [&s](const Request& r) {
            auto body = json_body(r);
            const auto* name = body.if_contains("name");
            if (!name || !name->is_string() || name->as_string().empty() ||
                name->as_string().size() > 64) {
              throw http::Error(errc::unprocessable, "name must be a string of 1..64 characters");
            }
            for (char c : name->as_string()) {
              if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
                throw http::Error(errc::unprocessable, "name must not contain control characters");
              }
            }
            const auto token = generate_token();
            auto created =
                stored(s.db.create_token(name->as_string(), token_hash(token), signal::now()),
                       "create API token");
            s.tokens.add(created.sha256_hex, created.id, created.name);
            auto out =
                token_json(created.id, created.name, false, created.created_at, std::nullopt);
            out.pop_back();
            out += ",\"token\":";
            append_json_string(out, token);
            auto res = http::json_response(201, out + "}");
            res.headers.emplace_back("Cache-Control", "no-store");
            return res;
          },
          blocking);
  rt.del("/api/v1/tokens/{id}",
         [&s](const Request& r) {
           const auto text = r.param("id");
           std::int64_t id = -1;
           auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
           if (ec != std::errc() || end != text.data() + text.size() || id < 0) {
             throw http::Error(errc::not_found, "no API token " + std::string(text));
           }
           if (id == kEnvironmentTokenId && s.tokens.environment_token()) {
             throw http::Error(errc::conflict,
                               "token 0 is TESLASYNC_API_TOKEN from the environment: unset or "
                               "change the variable and restart to retire it");
           }
           const bool in_db = stored(s.db.delete_token(id), "revoke API token");
           const bool in_memory = s.tokens.remove(id);
           if (!in_db && !in_memory) {
             throw http::Error(errc::not_found, "no API token " + std::string(text));
           }
           return Response{.status = 204, .content_type = "application/json"};
         },
         blocking);

  // ---- operations ----
  // Rendering every family takes time with many vehicles: not on the io thread.
  rt.get("/metrics",
         [&s](const Request&) {
           return Response{.content_type = "text/plain; version=0.0.4; charset=utf-8",
                           .body = s.metrics.render_prometheus()};
         },
         blocking);
  rt.get("/api/v1/system/telemetry-pipeline",
         [&s](const Request&) { return http::json_response(200, evaluate(s.pipeline())); });

  // ---- vehicles ----
  rt.get("/api/v1/vehicles",
         [&s](const Request&) {
           auto vehicles = stored(s.db.list_vehicles(), "vehicles");
           auto polls = s.poller ? s.poller->states()
                                 : std::vector<std::pair<std::string, polling::PollState>>{};
           std::vector<std::string> items;
           for (const auto& v : vehicles) items.push_back(vehicle_json(s, v, polls));
           return http::json_response(200, "{\"vehicles\":" + json_array(items) + "}");
         },
         blocking);
  rt.post("/api/v1/vehicles",
          [&s](const Request& r) {
            auto doc = json_body(r);
            const auto* vin = doc.if_contains("vin");
            const auto* name = doc.if_contains("name");
            if (!vin || !vin->is_string() || !signal::valid_vin(vin->as_string())) {
              throw http::Error(errc::unprocessable,
                                "vin must be " + std::string(signal::kVinRule));
            }
            if (name && !name->is_string()) throw http::Error(errc::unprocessable, "name must be a string");
            storage::Vehicle v{.vin = std::string(vin->as_string()),
                               .name = name ? std::string(name->as_string()) : std::string(),
                               .source = storage::VehicleSource::Manual,
                               .created_at = signal::now()};
            auto stored_vehicle = stored(s.db.upsert_vehicle(v), "register vehicle");
            s.vins.add(stored_vehicle.vin);
            if (s.poller) s.poller->nudge();
            auto polls = s.poller ? s.poller->states()
                                  : std::vector<std::pair<std::string, polling::PollState>>{};
            return http::json_response(201, vehicle_json(s, stored_vehicle, polls));
          },
          blocking);
  rt.get("/api/v1/vehicles/{vin}/state", [&s](const Request& r) {
    auto vin = registered_vin(s, r);
    const auto clock = s.store.clock(vin);
    return http::json_response(200, vehicle_state_json(vin, s.store.snapshot(vin), &clock));
  });
  rt.get("/api/v1/vehicles/{vin}/signals",
         [&s](const Request& r) {
           storage::SignalQuery q{.vin = registered_vin(s, r)};
           if (auto n = r.query("name"); n && !n->empty()) q.name = std::string(*n);
           q.from = time_param(r, "from");
           q.to = time_param(r, "to");
           q.limit = size_param(r, "limit", 1000, 1, storage::kMaxLimit);
           if (auto c = r.query("cursor"); c && !c->empty()) {
             q.after = storage::SignalCursor::parse(*c);
             if (!q.after) throw http::Error(errc::bad_request, "cursor is not one this API returned");
           }
           auto page = stored(s.db.query_signals(q), "signal history");
           std::string out = "{\"vin\":";
           append_json_string(out, q.vin);
           out += ",\"signals\":[";
           for (std::size_t i = 0; i < page.rows.size(); ++i) {
             if (i) out += ',';
             append_signal(out, page.rows[i], false);
           }
           out += "],\"next_cursor\":";
           if (page.next) {
             append_json_string(out, page.next->to_string());
           } else {
             out += "null";
           }
           return http::json_response(200, out + "}");
         },
         blocking);
  // Paged per-vehicle event lists, newest first.
  auto vehicle_list = [&](std::string_view what, auto list, auto to_json) {
    rt.get("/api/v1/vehicles/{vin}/" + std::string(what),
           [&s, what = std::string(what), list, to_json](const Request& r) {
             auto vin = registered_vin(s, r);
             auto rows = stored((s.db.*list)(vin, size_param(r, "limit", 100, 1, storage::kMaxLimit),
                                             size_param(r, "offset", 0, 0, SIZE_MAX)),
                                what);
             return list_response(rows, to_json);
           },
           blocking);
  };
  vehicle_list("alerts", &storage::Database::list_alerts, alert_json);
  vehicle_list("connectivity", &storage::Database::list_connectivity, connectivity_json);
  vehicle_list("errors", &storage::Database::list_vehicle_errors, vehicle_error_json);
  rt.get("/api/v1/dead-letters",
         [&s](const Request& r) {
           auto vin = optional_param(r, "vin");
           auto rows = stored(s.db.list_dead_letters(size_param(r, "offset", 0, 0, SIZE_MAX),
                                                     size_param(r, "limit", 100, 1, storage::kMaxLimit), vin),
                              "dead letters");
           auto total = stored(s.db.count_dead_letters(vin), "dead letters");
           std::vector<std::string> items;
           for (const auto& d : rows) items.push_back(dead_letter_json(d));
           return http::json_response(
               200, "{\"total\":" + std::to_string(total) + ",\"items\":" + json_array(items) + "}");
         },
         blocking);

  // ---- live streams ----
  // Blocking: the snapshot of the whole fleet is a large string, built on the worker pool so a
  // reconnect storm does not stall every other stream and inline route on the io thread.
  rt.stream("/api/v1/events",
            {.hub = s.hub, .key = nullptr, .snapshot = [&s](const Request&) { return s.live.snapshot(""); }},
            blocking);
  rt.stream("/api/v1/vehicles/{vin}/stream",
            {.hub = s.hub,
             .key = [&s](const Request& r) { return registered_vin(s, r); },
             .snapshot = [&s](const Request& r) { return s.live.snapshot(r.param("vin")); }},
            blocking);

  // ---- Tesla diagnostics ----
  rt.get("/api/v1/tesla/fleet-telemetry/errors",
         [&s](const Request& r) {
           auto vin = optional_param(r, "vin");
           return list_response(
               stored(s.db.list_fleet_errors(vin, size_param(r, "limit", 100, 1, 500),
                                             size_param(r, "offset", 0, 0, SIZE_MAX)),
                      "fleet telemetry errors"),
               fleet_error_json);
         },
         blocking);
  rt.post("/api/v1/tesla/fleet-telemetry/errors/refresh",
          [&s](const Request&) {
            if (!s.fleet) throw http::Error(errc::unavailable, "TESLA_FLEET_API_BASE_URL is not set");
            if (auto e = refresh_fleet_errors(s); !e.empty()) throw http::Error(errc::bad_gateway, e);
            return list_response(stored(s.db.list_fleet_errors(std::nullopt, 100, 0), "fleet telemetry errors"),
                                 fleet_error_json);
          },
          blocking);
  rt.get("/api/v1/tesla/fleet-telemetry/error-vins",
         [&s](const Request& r) {
           bool all = r.query("all").value_or("") == "true";
           return list_response(stored(s.db.list_error_vins(!all), "error VINs"), error_vin_json);
         },
         blocking);
  rt.post("/api/v1/tesla/fleet-telemetry/error-vins/refresh",
          [&s](const Request&) {
            if (!s.fleet) throw http::Error(errc::unavailable, "TESLA_FLEET_API_BASE_URL is not set");
            if (auto e = refresh_error_vins(s); !e.empty()) throw http::Error(errc::bad_gateway, e);
            return list_response(stored(s.db.list_error_vins(true), "error VINs"), error_vin_json);
          },
          blocking);
  return router;
}

}  // namespace ts::api

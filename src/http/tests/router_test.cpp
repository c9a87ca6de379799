#include "http/router.hpp"

#include <gtest/gtest.h>

namespace ts::http {
namespace {

Request make(std::string method, std::string target, Fields headers = {}) {
  Request r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.headers = std::move(headers);
  return r;
}

Response echo_params(const Request& r) {
  std::string out;
  for (const auto& [k, v] : r.params) out += k + "=" + v + ";";
  return Response{200, "text/plain", out, {}};
}

Router allow_all() {
  return Router([](const Request&) -> ts::Result<std::string> { return std::string("tester"); });
}

std::string header_of(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (iequals(k, name)) return v;
  return "<none>";
}

TEST(Router, PathParametersAreCapturedAndDecoded) {
  auto router = allow_all();
  router.get("/api/v1/vehicles/{vin}/signals", echo_params);
  router.get("/api/v1/vehicles/{vin}", echo_params);
  auto req = make("GET", "/api/v1/vehicles/5YJ3E1EA%2Fx%20y/signals?limit=3");
  auto res = router.handle(req);
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(res.body, "vin=5YJ3E1EA/x y;");
  EXPECT_EQ(req.param("vin"), "5YJ3E1EA/x y");
  auto other = make("GET", "/api/v1/vehicles/ABC");
  EXPECT_EQ(router.handle(other).body, "vin=ABC;");
}

TEST(Router, ParameterSegmentsDoNotMatchEmptySegments) {
  auto router = allow_all();
  router.get("/api/v1/vehicles/{vin}/state", echo_params);
  auto req = make("GET", "/api/v1/vehicles//state");
  EXPECT_EQ(router.handle(req).status, 404u);
}

TEST(Router, LiteralBeatsParameterBeatsRest) {
  auto router = allow_all();
  router.get("/files/{rest...}", [](const Request& r) {
    return Response{200, "text/plain", "rest:" + std::string(r.param("rest")), {}};
  });
  router.get("/files/{name}", [](const Request& r) {
    return Response{200, "text/plain", "param:" + std::string(r.param("name")), {}};
  });
  router.get("/files/index", [](const Request&) { return Response{200, "text/plain", "literal", {}}; });
  auto a = make("GET", "/files/index");
  EXPECT_EQ(router.handle(a).body, "literal");
  auto b = make("GET", "/files/app.js");
  EXPECT_EQ(router.handle(b).body, "param:app.js");
  auto c = make("GET", "/files/assets/app%20x.js");
  EXPECT_EQ(router.handle(c).body, "rest:assets/app x.js");
}

TEST(Router, UnknownPathIs404AndOtherMethodIs405WithAllow) {
  auto router = allow_all();
  router.get("/api/v1/vehicles", echo_params);
  router.post("/api/v1/vehicles", echo_params);
  auto nf = make("GET", "/api/v1/nothing");
  auto res = router.handle(nf);
  EXPECT_EQ(res.status, 404u);
  EXPECT_EQ(res.content_type, "application/json");
  EXPECT_EQ(res.body, R"({"error":{"code":"not_found","message":"no such resource"}})");

  auto del = make("DELETE", "/api/v1/vehicles");
  auto na = router.handle(del);
  EXPECT_EQ(na.status, 405u);
  EXPECT_EQ(header_of(na, "Allow"), "GET, HEAD, POST");
  EXPECT_NE(na.body.find(R"("code":"method_not_allowed")"), std::string::npos);
}

TEST(Router, HeadIsServedByTheGetRouteUnlessItHasItsOwn) {
  auto router = allow_all();
  router.get("/a", [](const Request& r) { return Response{200, "text/plain", "get " + r.method, {}}; });
  router.get("/b", [](const Request&) { return Response{200, "text/plain", "get", {}}; });
  router.route("HEAD", "/b", [](const Request&) { return Response{204, "text/plain", "", {}}; });
  auto a = make("HEAD", "/a");
  auto ra = router.handle(a);
  EXPECT_EQ(ra.status, 200u);
  EXPECT_EQ(ra.body, "get HEAD");
  auto b = make("HEAD", "/b");
  EXPECT_EQ(router.handle(b).status, 204u);
}

TEST(Router, QueryStringIsPercentDecoded) {
  auto router = allow_all();
  router.get("/q", [](const Request& r) {
    return Response{200, "text/plain",
                    std::string(r.query("name").value_or("-")) + "|" +
                        std::string(r.query("to").value_or("-")) + "|" +
                        std::string(r.query("flag").value_or("-")) + "|" +
                        std::string(r.query("missing").value_or("-")),
                    {}};
  });
  auto req = make("GET", "/q?name=Vehicle%20Speed+x&to=2024-01-01T00%3A00%3A00Z&flag&&name=second");
  EXPECT_EQ(router.handle(req).body, "Vehicle Speed x|2024-01-01T00:00:00Z||-");
  ASSERT_EQ(req.query_params.size(), 4u);
  EXPECT_EQ(req.query_params[3], (std::pair<std::string, std::string>{"name", "second"}));
}

TEST(Router, MalformedEscapesAre400) {
  auto router = allow_all();
  router.get("/q/{x}", echo_params);
  auto bad_query = make("GET", "/q/a?x=%zz");
  EXPECT_EQ(router.handle(bad_query).status, 400u);
  auto bad_path = make("GET", "/q/%4");
  auto res = router.handle(bad_path);
  EXPECT_EQ(res.status, 400u);
  EXPECT_NE(res.body.find(R"("code":"bad_request")"), std::string::npos);
}

TEST(Router, PercentDecodeAndParseQuery) {
  EXPECT_EQ(*percent_decode("a%41%62+c"), "aAb+c");
  EXPECT_EQ(*percent_decode("a+c", true), "a c");
  EXPECT_FALSE(percent_decode("%"));
  EXPECT_FALSE(percent_decode("%a"));
  EXPECT_FALSE(percent_decode("%g0"));
  auto q = parse_query("a=1&b=&c&=x");
  ASSERT_TRUE(q);
  ASSERT_EQ(q->size(), 4u);
  EXPECT_EQ((*q)[1], (std::pair<std::string, std::string>{"b", ""}));
  EXPECT_EQ((*q)[2], (std::pair<std::string, std::string>{"c", ""}));
  EXPECT_EQ((*q)[3], (std::pair<std::string, std::string>{"", "x"}));
}

TEST(Router, RoutesAreAuthenticatedUnlessMarkedPublic) {
  int auth_calls = 0;
  Router router([&](const Request& r) -> ts::Result<std::string> {
    ++auth_calls;
    if (r.bearer_token() == std::optional<std::string_view>("good")) return std::string("admin");
    return errc::unauthorized;
  });
  router.get("/secret", [](const Request& r) { return Response{200, "text/plain", "hi " + r.principal, {}}; });
  router.get("/healthz", [](const Request& r) { return Response{200, "text/plain", "ok" + r.principal, {}}; },
             kPublic);

  auto anon = make("GET", "/secret");
  auto denied = router.handle(anon);
  EXPECT_EQ(denied.status, 401u);
  EXPECT_EQ(denied.body, R"({"error":{"code":"unauthorized","message":"authentication required"}})");
  EXPECT_EQ(header_of(denied, "WWW-Authenticate"), "Bearer");

  auto wrong = make("GET", "/secret", {{"Authorization", "Bearer bad"}});
  EXPECT_EQ(router.handle(wrong).status, 401u);

  auto good = make("GET", "/secret", {{"authorization", "bearer   good "}});
  auto ok = router.handle(good);
  EXPECT_EQ(ok.status, 200u);
  EXPECT_EQ(ok.body, "hi admin");

  const int before = auth_calls;
  auto health = make("GET", "/healthz");
  auto h = router.handle(health);
  EXPECT_EQ(h.status, 200u);
  EXPECT_EQ(h.body, "ok");
  EXPECT_EQ(auth_calls, before) << "public routes never consult the authenticator";
}

TEST(Router, WithoutAuthenticatorEveryNonPublicRouteIs401) {
  Router router;
  router.get("/secret", echo_params);
  router.get("/open", echo_params, kPublic);
  auto s = make("GET", "/secret");
  EXPECT_EQ(router.handle(s).status, 401u);
  auto o = make("GET", "/open");
  EXPECT_EQ(router.handle(o).status, 200u);
}

TEST(Router, AuthenticatorMayAnswerForbidden) {
  Router router([](const Request&) -> ts::Result<std::string> { return errc::forbidden; });
  router.get("/x", echo_params);
  auto r = make("GET", "/x");
  auto res = router.handle(r);
  EXPECT_EQ(res.status, 403u);
  EXPECT_EQ(res.body, R"({"error":{"code":"forbidden","message":"forbidden"}})");
}

TEST(Router, HandlerErrorsBecomeTheJsonErrorBody) {
  auto router = allow_all();
  router.get("/vehicles/{vin}", [](const Request& r) -> Response {
    throw Error(errc::not_found, "no vehicle \"" + std::string(r.param("vin")) + "\"\n");
  });
  router.get("/boom", [](const Request&) -> Response { throw std::runtime_error("secret detail"); });
  auto nf = make("GET", "/vehicles/X1");
  auto res = router.handle(nf);
  EXPECT_EQ(res.status, 404u);
  EXPECT_EQ(res.body, R"({"error":{"code":"not_found","message":"no vehicle \"X1\"\n"}})");
  auto boom = make("GET", "/boom");
  auto b = router.handle(boom);
  EXPECT_EQ(b.status, 500u);
  EXPECT_EQ(b.body, R"({"error":{"code":"internal","message":"internal error"}})");
}

TEST(Router, ErrorCodesMapToStatusesInOnePlace) {
  EXPECT_EQ(status_of(errc::payload_too_large), 413u);
  EXPECT_EQ(status_of(errc::headers_too_large), 431u);
  EXPECT_EQ(status_of(errc::unavailable), 503u);
  EXPECT_EQ(code_of(errc::unprocessable), "unprocessable");
  auto r = error_response(make_error_code(errc::conflict), "vin exists");
  EXPECT_EQ(r.status, 409u);
  EXPECT_EQ(r.body, R"({"error":{"code":"conflict","message":"vin exists"}})");
  auto foreign = error_response(std::make_error_code(std::errc::io_error));
  EXPECT_EQ(foreign.status, 500u);
  EXPECT_EQ(json_quote(std::string("a\x01\t\"\\", 5)), R"("a\u0001\t\"\\")");
}

TEST(Router, FallbackTakesWhatNoPatternMatches) {
  Router router;
  router.get("/known", echo_params, kPublic);
  router.fallback([](const Request& r) { return Response{200, "text/plain", "fallback " + r.path(), {}}; },
                  kPublic);
  auto a = make("PUT", "/whatever/else");
  EXPECT_EQ(router.handle(a).body, "fallback /whatever/else");
  auto b = make("POST", "/known");
  EXPECT_EQ(router.handle(b).status, 405u) << "a known path keeps its 405";
}

TEST(Router, BadPatternsAndDuplicatesAreRejectedAtStartup) {
  Router router;
  EXPECT_THROW(router.get("nope", echo_params), std::invalid_argument);
  EXPECT_THROW(router.get("/a/{rest...}/b", echo_params), std::invalid_argument);
  EXPECT_THROW(router.get("/a/{x}/{x}", echo_params), std::invalid_argument);
  EXPECT_THROW(router.get("/a/b{x}", echo_params), std::invalid_argument);
  router.get("/v/{vin}", echo_params);
  EXPECT_THROW(router.get("/v/{other}", echo_params), std::invalid_argument);
  EXPECT_NO_THROW(router.post("/v/{vin}", echo_params));
}

TEST(Request, BearerTokenAndCookies) {
  auto r = make("GET", "/", {{"Authorization", "Basic abc"}, {"Cookie", "a=1; session=\"s3\" ; b=2"},
                             {"cookie", "late=x"}});
  EXPECT_FALSE(r.bearer_token());
  EXPECT_EQ(r.cookie("session"), std::optional<std::string_view>("s3"));
  EXPECT_EQ(r.cookie("b"), std::optional<std::string_view>("2"));
  EXPECT_EQ(r.cookie("late"), std::optional<std::string_view>("x"));
  EXPECT_FALSE(r.cookie("sess"));
  auto t = make("GET", "/", {{"AUTHORIZATION", "Bearer tok.en"}});
  EXPECT_EQ(t.bearer_token(), std::optional<std::string_view>("tok.en"));
  auto empty = make("GET", "/", {{"Authorization", "Bearer "}});
  EXPECT_FALSE(empty.bearer_token());
}

}  // namespace
}  // namespace ts::http

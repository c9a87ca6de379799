#include "http/request.hpp"

#include "http/errc.hpp"

namespace ts::http {

namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

ts::Result<std::string> percent_decode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return errc::bad_request;
      const int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return errc::bad_request;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

ts::Result<Fields> parse_query(std::string_view query) {
  Fields out;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (part.empty()) continue;
    const auto eq = part.find('=');
    auto name = percent_decode(part.substr(0, eq), true);
    if (!name) return name.error();
    auto value = percent_decode(eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1), true);
    if (!value) return value.error();
    out.emplace_back(std::move(*name), std::move(*value));
  }
  return out;
}

std::string_view Request::query_string() const {
  const auto q = target.find('?');
  if (q == std::string::npos) return {};
  return std::string_view(target).substr(q + 1);
}

std::optional<std::string_view> Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return std::string_view(v);
  return std::nullopt;
}

std::optional<std::string_view> Request::query(std::string_view name) const {
  for (const auto& [k, v] : query_params)
    if (k == name) return std::string_view(v);
  return std::nullopt;
}

std::string_view Request::param(std::string_view name) const {
  for (const auto& [k, v] : params)
    if (k == name) return v;
  return {};
}

std::optional<std::string_view> Request::bearer_token() const {
  auto h = header("Authorization");
  if (!h) return std::nullopt;
  auto v = trim(*h);
  constexpr std::string_view kScheme = "bearer";
  if (v.size() <= kScheme.size() || !iequals(v.substr(0, kScheme.size()), kScheme) ||
      (v[kScheme.size()] != ' ' && v[kScheme.size()] != '\t'))
    return std::nullopt;
  auto token = trim(v.substr(kScheme.size()));
  if (token.empty()) return std::nullopt;
  return token;
}

std::optional<std::string_view> Request::cookie(std::string_view name) const {
  // RFC 6265 §5.4: `Cookie: a=1; b=2`; HTTP/2 proxies may split it into several headers.
  for (const auto& [k, v] : headers) {
    if (!iequals(k, "Cookie")) continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      const auto semi = rest.find(';');
      auto pair = trim(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
      const auto eq = pair.find('=');
      if (eq == std::string_view::npos) continue;
      if (trim(pair.substr(0, eq)) != name) continue;
      auto value = trim(pair.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      return value;
    }
  }
  return std::nullopt;
}

}  // namespace ts::http

#include "auth.hpp"

#include "config.hpp"
#include "core/file.hpp"
#include "core/log.hpp"
#include "http/router.hpp"
#include "storage/database.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace ts::api {

std::string generate_token() {
  std::array<unsigned char, 32> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    throw std::runtime_error("no randomness for a token (RAND_bytes failed)");
  }
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out = "tsk_";
  unsigned bits = 0, acc = 0;
  for (unsigned char b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 0x3f];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 0x3f];
  return out;
}

std::string token_hash(std::string_view token) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(token.data(), token.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

std::optional<std::string> bearer_token(std::string_view authorization) {
  constexpr std::string_view kScheme = "Bearer ";
  if (authorization.size() <= kScheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) !=
        std::tolower(static_cast<unsigned char>(kScheme[i]))) {
      return std::nullopt;
    }
  }
  auto token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (token.empty()) return std::nullopt;
  return std::string(token);
}

std::optional<std::string> cookie_token(std::string_view cookies) {
  while (!cookies.empty()) {
    auto semi = cookies.find(';');
    auto pair = cookies.substr(0, semi);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    if (pair.starts_with(kTokenCookie) && pair.size() > kTokenCookie.size() &&
        pair[kTokenCookie.size()] == '=') {
      auto value = pair.substr(kTokenCookie.size() + 1);
      if (!value.empty()) return std::string(value);
    }
    if (semi == std::string_view::npos) break;
    cookies.remove_prefix(semi + 1);
  }
  return std::nullopt;
}

void TokenAuth::add(std::string hash, std::int64_t id, std::string name,
                    std::optional<signal::Timestamp> last_used_at) {
  std::lock_guard lock(mutex_);
  by_hash_[std::move(hash)] =
      TokenInfo{.id = id, .name = std::move(name), .last_used_at = last_used_at};
}

void TokenAuth::add_environment(std::string hash) {
  std::lock_guard lock(mutex_);
  by_hash_[std::move(hash)] =
      TokenInfo{.id = kEnvironmentTokenId, .name = "TESLASYNC_API_TOKEN", .environment = true};
}

bool TokenAuth::remove(std::int64_t id) {
  std::lock_guard lock(mutex_);
  for (auto it = by_hash_.begin(); it != by_hash_.end(); ++it) {
    if (it->second.id == id && !it->second.environment) {
      by_hash_.erase(it);
      pending_usage_.erase(id);
      return true;
    }
  }
  return false;
}

std::optional<TokenInfo> TokenAuth::find(std::string_view token, signal::Timestamp now) {
  const auto hash = token_hash(token);
  std::lock_guard lock(mutex_);
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return std::nullopt;
  auto& info = it->second;
  if (!info.last_used_at || now - *info.last_used_at >= kTokenUsageResolutionUs) {
    info.last_used_at = now;
    if (!info.environment && info.id > 0) pending_usage_[info.id] = now;
  }
  return info;
}

bool TokenAuth::check(std::optional<std::string_view> authorization,
                      std::optional<std::string_view> cookie) const {
  std::optional<std::string> token;
  if (authorization) token = bearer_token(*authorization);
  if (!token && cookie) token = cookie_token(*cookie);
  if (!token) return false;
  const auto hash = token_hash(*token);
  std::lock_guard lock(mutex_);
  return by_hash_.contains(hash);
}

std::optional<TokenInfo> TokenAuth::environment_token() const {
  std::lock_guard lock(mutex_);
  for (const auto& [hash, info] : by_hash_) {
    if (info.environment) return info;
  }
  return std::nullopt;
}

std::vector<std::pair<std::int64_t, signal::Timestamp>> TokenAuth::take_usage() {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<std::int64_t, signal::Timestamp>> out(pending_usage_.begin(),
                                                              pending_usage_.end());
  pending_usage_.clear();
  return out;
}

std::optional<signal::Timestamp> TokenAuth::last_used(std::int64_t id) const {
  std::lock_guard lock(mutex_);
  for (const auto& [hash, info] : by_hash_) {
    if (info.id == id) return info.last_used_at;
  }
  return std::nullopt;
}

std::size_t TokenAuth::size() const {
  std::lock_guard lock(mutex_);
  return by_hash_.size();
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "host:port" with the scheme's default port dropped, lowercase.
std::string authority(std::string_view hostport, std::string_view scheme) {
  auto a = lower(trim(hostport));
  if ((scheme == "http" && a.ends_with(":80")) || (scheme == "https" && a.ends_with(":443"))) {
    a.resize(a.rfind(':'));
  }
  return a;
}

bool safe_method(std::string_view method) { return method == "GET" || method == "HEAD"; }

}  // namespace

bool is_json_content_type(std::optional<std::string_view> content_type) {
  if (!content_type) return false;
  auto media = trim(content_type->substr(0, content_type->find(';')));
  return http::iequals(media, "application/json");
}

bool same_origin(const http::Request& request) {
  const auto host = request.header("Host");
  if (auto origin = request.header("Origin")) {
    if (!host) return false;
    auto o = trim(*origin);
    const auto sep = o.find("://");
    if (sep == std::string_view::npos) return false;  // includes "null"
    const auto scheme = lower(o.substr(0, sep));
    auto rest = o.substr(sep + 3);
    if (rest.ends_with('/')) rest.remove_suffix(1);
    if (rest.empty() || rest.find_first_of("/?#@") != std::string_view::npos) return false;
    return authority(rest, scheme) == authority(*host, scheme);
  }
  const auto site = request.header("Sec-Fetch-Site");
  return site && http::iequals(trim(*site), "same-origin");
}

bool came_over_tls(const http::Request& request) {
  const auto proto = request.header("X-Forwarded-Proto");
  if (!proto) return false;
  // A chain of proxies may list several: the first is what the client used.
  return http::iequals(trim(proto->substr(0, proto->find(','))), "https");
}

std::string session_cookie(std::string_view token, bool secure) {
  return std::string(kTokenCookie) + "=" + std::string(token) +
         "; Path=/; HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "");
}

std::string clear_session_cookie(bool secure) {
  return std::string(kTokenCookie) + "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0" +
         (secure ? "; Secure" : "");
}

Result<std::string> authenticate(TokenAuth& tokens, const http::Request& request) {
  const auto now = signal::now();
  if (auto bearer = request.bearer_token()) {
    if (auto who = tokens.find(*bearer, now)) return who->name;
    return make_error_code(http::errc::unauthorized);
  }
  auto cookie = request.cookie(kTokenCookie);
  if (!cookie || cookie->empty()) return make_error_code(http::errc::unauthorized);
  auto who = tokens.find(*cookie, now);
  if (!who) return make_error_code(http::errc::unauthorized);
  if (safe_method(request.method)) return who->name;
  // A cookie rides along on cross-site requests; a state change must prove it is same-site JSON
  // (a cross-site form or fetch cannot send application/json without a CORS preflight we never
  // grant, and cannot forge Origin).
  if (!is_json_content_type(request.header("Content-Type")) || !same_origin(request)) {
    throw http::Error(http::errc::forbidden,
                      fmt::format("cookie authentication of {} needs Content-Type: application/json "
                                  "and a same-origin Origin; use a bearer token otherwise",
                                  request.method));
  }
  return who->name;
}

void write_secret_file(const std::filesystem::path& path, std::string_view token) {
  core::write_file_atomically(path, std::string(token) + '\n', 0600);
}

TokenUsageWriter::TokenUsageWriter(TokenAuth& tokens, storage::Database& db,
                                   std::chrono::milliseconds period)
    : tokens_(tokens), db_(db), thread_([this, period] {
        std::unique_lock lock(mutex_);
        while (!cv_.wait_for(lock, period, [this] { return stopping_; })) {
          lock.unlock();
          flush();
          lock.lock();
        }
      }) {}

TokenUsageWriter::~TokenUsageWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  flush();
}

void TokenUsageWriter::flush() {
  for (const auto& [id, at] : tokens_.take_usage()) {
    if (auto r = db_.touch_token(id, at); !r) {
      log::get("http")->warn("recording the use of API token {} failed: {}", id,
                             r.error().message());
    }
  }
}

std::unique_ptr<TokenUsageWriter> set_up_tokens(const Config& config, storage::Database& db,
                                                TokenAuth& tokens) {
  auto logger = log::get("http");
  if (!config.api_token.empty()) tokens.add_environment(token_hash(config.api_token));
  auto stored = db.list_tokens();
  if (!stored) throw std::runtime_error("reading API tokens: " + stored.error().message());
  for (const auto& t : *stored) tokens.add(t.sha256_hex, t.id, t.name, t.last_used_at);
  if (!stored->empty() && !config.api_token.empty()) {
    logger->info(
        "TESLASYNC_API_TOKEN is set and {} stored API token(s) stay valid too; list them "
        "with GET /api/v1/tokens, revoke with DELETE /api/v1/tokens/{{id}}",
        stored->size());
  }
  if (stored->empty() && config.api_token.empty()) {
    const auto token = generate_token();
    auto created = db.create_token("admin", token_hash(token), signal::now());
    if (!created) throw std::runtime_error("storing the admin token: " + created.error().message());
    const auto path = std::filesystem::path(config.data_dir) / "admin-token";
    write_secret_file(path, token);
    tokens.add(token_hash(token), created->id, created->name);
    logger->info(
        "first start: created an admin API token and wrote it to {} (mode 0600); send it "
        "as 'Authorization: Bearer <token>'",
        std::filesystem::absolute(path).string());
  }
  return std::make_unique<TokenUsageWriter>(tokens, db);
}

}  // namespace ts::api

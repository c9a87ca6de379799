#pragma once
/// API tokens and the authentication rules of teslasync-api (docs/teslasync-api.md
/// "Authentication").
///
/// Every route but the public ones needs a token: `Authorization: Bearer …`, or the
/// `teslasync_token` cookie that `POST /api/v1/session` sets for the web UI. Tokens are random
/// (256 bits), shown once, and kept only as SHA-256 hashes. The admin token made at first start is
/// written to a 0600 file in the data dir. `TESLASYNC_API_TOKEN`, when set, is an extra
/// *environment* token (id 0): it is never stored and cannot be revoked through the API; tokens in
/// the database (the generated "admin" one included) keep working next to it until revoked with
/// `DELETE /api/v1/tokens/{id}`.
///
/// Cookie rule (CSRF): a cookie is accepted as is for GET and HEAD; for any other method only with
/// `Content-Type: application/json` and an `Origin` whose host[:port] is the request's `Host` (or,
/// without `Origin`, `Sec-Fetch-Site: same-origin`); otherwise 403. Bearer tokens are not affected.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/result.hpp"
#include "http/request.hpp"
#include "signal/signal.hpp"

namespace ts::storage {
class Database;
}

namespace ts::api {

struct Config;

/// A new random token: "tsk_" + 43 base64url characters (256 bits).
std::string generate_token();
/// Lowercase hex SHA-256 of a token, as stored.
std::string token_hash(std::string_view token);

/// The token of an `Authorization: Bearer …` header value or a Cookie header value.
std::optional<std::string> bearer_token(std::string_view authorization);
std::optional<std::string> cookie_token(std::string_view cookie_header);
inline constexpr std::string_view kTokenCookie = "teslasync_token";

/// The id of the TESLASYNC_API_TOKEN token (database ids start at 1).
inline constexpr std::int64_t kEnvironmentTokenId = 0;
/// `last_used_at` is recorded at most this often per token.
inline constexpr signal::Timestamp kTokenUsageResolutionUs = 60'000'000;

/// Who a valid token belongs to.
struct TokenInfo {
  std::int64_t id = 0;  ///< kEnvironmentTokenId for TESLASYNC_API_TOKEN
  std::string name;
  bool environment = false;
  std::optional<signal::Timestamp> last_used_at;  ///< as last noted in memory
};

/// The valid tokens, by hash. Thread-safe: `find` runs on any HTTP thread (io or blocking pool)
/// while the token routes add and remove; every call takes one short mutex, no I/O.
class TokenAuth {
 public:
  /// A token stored in the database.
  void add(std::string hash, std::int64_t id, std::string name,
           std::optional<signal::Timestamp> last_used_at = std::nullopt);
  /// The TESLASYNC_API_TOKEN token.
  void add_environment(std::string hash);
  /// A database token with an unknown id (tests).
  void add_hash(std::string hash) { add(std::move(hash), -1, ""); }
  /// Revokes the database token `id` at once. False if it is not known (or is the environment one).
  bool remove(std::int64_t id);

  /// The owner of `token`, or nullopt. Notes the use at `now` (at most once a minute per token);
  /// `take_usage` hands the noted uses of database tokens to whoever writes them.
  std::optional<TokenInfo> find(std::string_view token, signal::Timestamp now);
  /// True if any of the credentials carries a known token (no CSRF rule; see `authenticate`).
  bool check(std::optional<std::string_view> authorization,
             std::optional<std::string_view> cookie) const;
  /// The environment token, if one is configured.
  std::optional<TokenInfo> environment_token() const;
  /// Uses noted since the last call: (token id, time), database tokens only.
  std::vector<std::pair<std::int64_t, signal::Timestamp>> take_usage();
  /// The last use noted in memory for a token id.
  std::optional<signal::Timestamp> last_used(std::int64_t id) const;
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;  // guards everything below
  std::map<std::string, TokenInfo, std::less<>> by_hash_;
  std::map<std::int64_t, signal::Timestamp> pending_usage_;
};

/// The authentication of every non-public route: bearer token first, else the cookie under the
/// CSRF rule above. Returns the token's name, or errc::unauthorized (no or unknown token) or
/// errc::forbidden (cookie on a state-changing request that is not same-origin JSON).
Result<std::string> authenticate(TokenAuth& tokens, const http::Request& request);

/// True if `content_type` is `application/json` (parameters such as charset allowed).
bool is_json_content_type(std::optional<std::string_view> content_type);
/// True if the request's Origin (or, without one, Sec-Fetch-Site) says it came from this site.
bool same_origin(const http::Request& request);
/// True if the request reached us over TLS as far as we can tell (`X-Forwarded-Proto: https`;
/// the API itself serves plain HTTP).
bool came_over_tls(const http::Request& request);
/// The `Set-Cookie` value that signs a browser in with `token` (HttpOnly; SameSite=Strict;
/// Path=/; Secure only when `secure`), and the one that signs it out.
std::string session_cookie(std::string_view token, bool secure);
std::string clear_session_cookie(bool secure);

/// Writes `token` to `path` with mode 0600 (replacing it). Throws std::runtime_error on failure.
void write_secret_file(const std::filesystem::path& path, std::string_view token);

/// Writes the noted token uses (`TokenAuth::take_usage`) to the database every `period` from its
/// own thread, so the HTTP threads never wait on the database for it; the last flush runs on
/// destruction. Owned by main(); `tokens` and `db` must outlive it.
class TokenUsageWriter {
 public:
  TokenUsageWriter(TokenAuth& tokens, storage::Database& db,
                   std::chrono::milliseconds period = std::chrono::seconds(10));
  ~TokenUsageWriter();
  TokenUsageWriter(const TokenUsageWriter&) = delete;
  TokenUsageWriter& operator=(const TokenUsageWriter&) = delete;
  /// Writes what is pending now (any thread; blocking). Failures are logged and dropped: a
  /// `last_used_at` is informational.
  void flush();

 private:
  TokenAuth& tokens_;
  storage::Database& db_;
  std::mutex mutex_;  // guards stopping_
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

/// Loads the tokens at start-up: TESLASYNC_API_TOKEN (as the environment token) and every token
/// in the database; on a first start without either, creates an "admin" token and writes it to
/// `<data dir>/admin-token` (0600). Returns the writer of `last_used_at`. Throws
/// std::runtime_error when the database cannot be read or written.
std::unique_ptr<TokenUsageWriter> set_up_tokens(const Config& config, storage::Database& db,
                                                TokenAuth& tokens);

}  // namespace ts::api

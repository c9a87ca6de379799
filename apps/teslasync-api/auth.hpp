#pragma once
/// API tokens: every route but the three public ones needs one (bearer header or the
/// `teslasync_token` cookie the web UI sets). Tokens are random, shown once, and kept only as
/// SHA-256 hashes; the admin token made at first start is written to a 0600 file in the data dir.
///
/// Thread-safe: `check` may run on any HTTP thread while `add_hash` runs elsewhere.
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace ts::api {

/// A new random token: "tsk_" + 43 base64url characters (256 bits).
std::string generate_token();
/// Lowercase hex SHA-256 of a token, as stored.
std::string token_hash(std::string_view token);

/// The token of an `Authorization: Bearer …` header value or a Cookie header value.
std::optional<std::string> bearer_token(std::string_view authorization);
std::optional<std::string> cookie_token(std::string_view cookie_header);
inline constexpr std::string_view kTokenCookie = "teslasync_token";

class TokenAuth {
 public:
  void add_hash(std::string hash);
  /// True if any of the credentials carries a known token.
  bool check(std::optional<std::string_view> authorization,
             std::optional<std::string_view> cookie) const;
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;  // guards hashes_
  std::set<std::string, std::less<>> hashes_;
};

/// Writes `token` to `path` with mode 0600 (replacing it). Throws std::runtime_error on failure.
void write_secret_file(const std::filesystem::path& path, std::string_view token);

}  // namespace ts::api

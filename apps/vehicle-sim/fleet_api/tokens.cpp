#include "fleet_api/tokens.hpp"

#include <fmt/format.h>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <cmath>

namespace ts::vehicle_sim {
namespace {

TokenReply oauth_error(unsigned status, std::string_view error, std::string_view description) {
  boost::json::object o;
  o["error"] = error;
  o["error_description"] = description;
  return {status, boost::json::serialize(o)};
}

std::string param(const std::map<std::string, std::string>& params, const char* key) {
  auto it = params.find(key);
  return it == params.end() ? std::string() : it->second;
}

}  // namespace

TokenIssuer::TokenIssuer(TokenOptions options, std::uint64_t seed)
    : options_(std::move(options)), rng_(seed) {}

std::string TokenIssuer::make(std::string_view prefix) {
  return fmt::format("{}.{:016x}{:016x}", prefix, rng_.next_u64(), rng_.next_u64());
}

void TokenIssuer::revoke_refresh_tokens() {
  refresh_.clear();
  initial_refresh_valid_ = false;
}

TokenReply TokenIssuer::grant(const std::map<std::string, std::string>& params, double now_s) {
  const std::string grant_type = param(params, "grant_type");
  const std::string client_id = param(params, "client_id");
  if (client_id.empty() || (!options_.client_id.empty() && client_id != options_.client_id)) {
    ++refused_;
    return oauth_error(401, "invalid_client", "unknown client_id");
  }
  // Forget expired access tokens, so a long run does not accumulate them.
  std::erase_if(access_, [&](const auto& kv) { return kv.second.expires_at <= now_s; });
  boost::json::object o;
  const auto ttl = static_cast<std::int64_t>(std::llround(options_.ttl_s));
  if (grant_type == "client_credentials") {
    const std::string secret = param(params, "client_secret");
    if (secret.empty() || (!options_.client_secret.empty() && secret != options_.client_secret)) {
      ++refused_;
      return oauth_error(401, "invalid_client", "client authentication failed");
    }
    std::string token = make("sim-partner");
    access_[token] = {TokenKind::Partner, now_s + options_.ttl_s};
    ++partner_issued_;
    o["access_token"] = token;
    o["token_type"] = "Bearer";
    o["expires_in"] = ttl;
    o["scope"] = param(params, "scope");
    return {200, boost::json::serialize(o)};
  }
  if (grant_type == "refresh_token") {
    const std::string presented = param(params, "refresh_token");
    const bool initial = initial_refresh_valid_ && presented == options_.refresh_token;
    auto it = refresh_.find(presented);
    if (!initial && it == refresh_.end()) {
      ++refused_;
      return oauth_error(401, "invalid_grant", "the refresh token is invalid, expired or used");
    }
    if (it != refresh_.end()) refresh_.erase(it);  // rotated tokens are single use
    std::string token = make("sim-user");
    std::string next = make("sim-refresh");
    access_[token] = {TokenKind::User, now_s + options_.ttl_s};
    refresh_[next] = true;
    ++user_issued_;
    o["access_token"] = token;
    o["refresh_token"] = next;
    o["id_token"] = make("sim-id");
    o["token_type"] = "Bearer";
    o["expires_in"] = ttl;
    return {200, boost::json::serialize(o)};
  }
  ++refused_;
  return oauth_error(400, "unsupported_grant_type",
                     "grant_type must be client_credentials or refresh_token");
}

std::optional<TokenKind> TokenIssuer::validate(std::string_view access_token, double now_s) const {
  auto it = access_.find(access_token);
  if (it == access_.end() || now_s >= it->second.expires_at) return std::nullopt;
  return it->second.kind;
}

}  // namespace ts::vehicle_sim

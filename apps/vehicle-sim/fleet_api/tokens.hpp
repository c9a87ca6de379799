#pragma once
/// OAuth tokens of the Fleet API stand-in: `POST /oauth2/v3/token` with grant_type
/// client_credentials (partner token) or refresh_token (user token), and validation of the
/// `Authorization: Bearer …` of every API request.
///
/// Like Tesla: access tokens expire (`ttl_s`), refresh tokens rotate (each refresh returns a new
/// one and retires the old one). Unlike Tesla, the configured initial refresh token stays valid,
/// so a demo that restarts the API with the same TESLA_REFRESH_TOKEN keeps working. `expire_all`
/// revokes every access token (the next request gets 401, and the client's refresh runs);
/// `revoke_refresh_tokens` makes every refresh fail (invalid_grant).
///
/// Time is passed in (any monotonic seconds). One thread (the stand-in's), not thread-safe.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "sim/rng.hpp"

namespace ts::vehicle_sim {

struct TokenOptions {
  std::string client_id;      ///< required match when not empty
  std::string client_secret;  ///< required match for client_credentials when not empty
  std::string refresh_token = "vehicle-sim-refresh-token";  ///< the initial user refresh token
  double ttl_s = 8 * 3600;                                  ///< access token lifetime (Tesla: 8 h)
};

enum class TokenKind { Partner, User };

/// What the token endpoint answers (not enveloped: OAuth shape).
struct TokenReply {
  unsigned status = 200;
  std::string body;  ///< JSON
};

class TokenIssuer {
 public:
  explicit TokenIssuer(TokenOptions options, std::uint64_t seed = 42);

  /// Handles the token endpoint's parameters (from a form or a JSON body).
  TokenReply grant(const std::map<std::string, std::string>& params, double now_s);

  /// The kind of a valid, unexpired access token; nullopt otherwise.
  std::optional<TokenKind> validate(std::string_view access_token, double now_s) const;

  void expire_all() { access_.clear(); }
  void revoke_refresh_tokens();

  std::uint64_t partner_issued() const { return partner_issued_; }
  std::uint64_t user_issued() const { return user_issued_; }
  std::uint64_t refused() const { return refused_; }

 private:
  std::string make(std::string_view prefix);

  struct Access {
    TokenKind kind;
    double expires_at;
  };
  TokenOptions options_;
  Rng rng_;
  bool initial_refresh_valid_ = true;
  std::map<std::string, Access, std::less<>> access_;
  std::map<std::string, bool, std::less<>> refresh_;  // rotated refresh tokens still valid
  std::uint64_t partner_issued_ = 0, user_issued_ = 0, refused_ = 0;
};

}  // namespace ts::vehicle_sim

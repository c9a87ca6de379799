#include "auth.hpp"

#include "core/file.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <array>
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

void TokenAuth::add_hash(std::string hash) {
  std::lock_guard lock(mutex_);
  hashes_.insert(std::move(hash));
}

bool TokenAuth::check(std::optional<std::string_view> authorization,
                      std::optional<std::string_view> cookie) const {
  std::optional<std::string> token;
  if (authorization) token = bearer_token(*authorization);
  if (!token && cookie) token = cookie_token(*cookie);
  if (!token) return false;
  const auto hash = token_hash(*token);
  std::lock_guard lock(mutex_);
  return hashes_.contains(hash);
}

std::size_t TokenAuth::size() const {
  std::lock_guard lock(mutex_);
  return hashes_.size();
}

void write_secret_file(const std::filesystem::path& path, std::string_view token) {
  core::write_file_atomically(path, std::string(token) + '\n', 0600);
}

}  // namespace ts::api

#include "vehicle_link/socket_id.hpp"

#include <cctype>
#include <random>

namespace ts::vehicle_link {
namespace {

std::string canonical(std::string_view hex32) {
  std::string out;
  out.reserve(36);
  for (size_t i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) out += '-';
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(hex32[i])));
  }
  return out;
}

bool all_hex(std::string_view s) {
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

std::optional<std::string> parse_uuid(std::string_view s) {
  if (s.size() == 45 && s.substr(0, 9) == "urn:uuid:") s.remove_prefix(9);
  if (s.size() == 38 && s.front() == '{' && s.back() == '}') s = s.substr(1, 36);
  if (s.size() == 32) {
    if (!all_hex(s)) return std::nullopt;
    return canonical(s);
  }
  if (s.size() != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')
    return std::nullopt;
  std::string hex;
  for (size_t i = 0; i < s.size(); ++i)
    if (i != 8 && i != 13 && i != 18 && i != 23) hex += s[i];
  if (!all_hex(hex)) return std::nullopt;
  return canonical(hex);
}

std::string random_uuid_v4() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  std::string hex;
  for (int i = 60; i >= 0; i -= 4) hex += kHex[(a >> i) & 15];
  for (int i = 60; i >= 0; i -= 4) hex += kHex[(b >> i) & 15];
  return canonical(hex);
}

std::string socket_id_from_header(std::string_view x_txid) {
  if (auto id = parse_uuid(x_txid)) return *id;
  return random_uuid_v4();
}

}  // namespace ts::vehicle_link

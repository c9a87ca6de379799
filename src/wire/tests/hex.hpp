#pragma once
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ts::testing {

/// Hex text (whitespace and "0000:" style offsets ignored) to bytes.
inline std::vector<std::uint8_t> from_hex(std::string_view text) {
  std::vector<std::uint8_t> out;
  std::string digits;
  size_t i = 0;
  while (i < text.size()) {
    // skip "NNNN:" offset columns
    size_t colon = text.find(':', i);
    size_t nl = text.find('\n', i);
    if (colon != std::string_view::npos && (nl == std::string_view::npos || colon < nl)) i = colon + 1;
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    for (; i < end; ++i)
      if (std::isxdigit(static_cast<unsigned char>(text[i]))) digits += text[i];
    i = end + 1;
  }
  for (size_t k = 0; k + 1 < digits.size(); k += 2)
    out.push_back(static_cast<std::uint8_t>(std::stoi(digits.substr(k, 2), nullptr, 16)));
  return out;
}

inline std::string to_hex(const std::vector<std::uint8_t>& bytes) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (auto b : bytes) {
    s += d[b >> 4];
    s += d[b & 15];
  }
  return s;
}

}  // namespace ts::testing

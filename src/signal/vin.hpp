#pragma once
/// The one VIN rule of teslasync-api: the API routes, the Fleet API client and
/// TESLASYNC_VEHICLES all accept exactly what `valid_vin` accepts.
///
/// 1–32 ASCII letters and digits (either case). That covers 17-character VINs, the shorter test
/// and simulator VINs ("VIN1", "5YJ3E1EA7KF000199") and the numeric vehicle ids the Fleet API also
/// accepts, and it can go into a URL path or an MQTT topic level unescaped. Pure; any thread.
#include <cstddef>
#include <string_view>

namespace ts::signal {

inline constexpr std::size_t kMaxVinLength = 32;

/// True if `vin` is 1–32 characters of [A-Za-z0-9].
constexpr bool valid_vin(std::string_view vin) noexcept {
  if (vin.empty() || vin.size() > kMaxVinLength) return false;
  for (char c : vin) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

/// The rule in words, for error messages.
inline constexpr std::string_view kVinRule = "1-32 letters and digits";

}  // namespace ts::signal

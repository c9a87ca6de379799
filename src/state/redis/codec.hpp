#pragma once
/// The L2 layout in Redis (pure functions, no I/O, thread-safe):
///
///   key    <prefix>vehicle:<VIN>:signals        a HASH, one per vehicle; prefix "teslasync:"
///   field  the signal name                       "VehicleSpeed"
///   value  {"ts":<µs>,"r":<µs>,"k":<kind>,"s":"stream"|"poll","v":<value>}
///
/// ts = event time and r = receive time, both µs since the Unix epoch (integers); k =
/// signal::Kind as its number (never renumbered); s = signal::Source; v = signal::to_json of the
/// value (null, true/false, a number, a string, or the object of location/doors/tires). The
/// value always starts with `{"ts":…,"r":…`: the write script reads the stored times from that
/// prefix to decide whether an incoming value is newer.
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "signal/signal.hpp"

namespace ts::state::redis {

inline constexpr std::string_view kDefaultKeyPrefix = "teslasync:";

/// "<prefix>vehicle:<vin>:signals".
std::string vehicle_key(std::string_view prefix, std::string_view vin);
/// The VIN of a key made by vehicle_key, or empty if the key does not have that shape.
std::optional<std::string_view> vin_of_key(std::string_view prefix, std::string_view key);

/// The hash field value for `s` (vin and name are the key and the field, not in the value).
std::string encode_value(const signal::Signal& s);
void append_value(std::string& out, const signal::Signal& s);

/// Parses a hash field value back into a Signal for `vin` and `name`. Errors: errc::bad_value
/// (not JSON, a member missing or of the wrong type, an unknown kind or source). A float stored
/// as null (NaN or infinity, which JSON cannot carry) reads back as NaN.
Result<signal::Signal> decode_value(std::string_view vin, std::string_view name,
                                    std::string_view json);

}  // namespace ts::state::redis

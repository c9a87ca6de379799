#pragma once
/// JSON text primitives that reproduce Go's encoders byte for byte: encoding/json (MQTT payloads,
/// spec §8.8) and protojson (transmit_decoded_records, spec §7.3). Pure, any thread.
#include <cstdint>
#include <string>
#include <string_view>

namespace ts::pipeline::json {

enum class Escaping {
  Go,         ///< encoding/json: also escapes < > & and U+2028/U+2029 (HTML-safe)
  Protojson,  ///< protojson: only ", \ and control characters
};

/// Appends `s` as a quoted JSON string. `s` is valid UTF-8 (protobuf rejects anything else).
void append_string(std::string& out, std::string_view s, Escaping escaping);

/// Appends a float the way Go formats it: the shortest decimal that round-trips at `bits` width
/// (32 or 64), fixed notation unless |x| < 1e-6 or |x| >= 1e21, exponent without a leading zero
/// for negatives (`1e-7`, `1e+21`), `-0` for negative zero. Returns false for NaN/±Inf, which
/// encoding/json cannot encode (out is left unchanged).
bool append_float(std::string& out, double value, int bits);

/// append_float without its fast path for short float64 decimals (std::to_chars digits only), so
/// tests can check that both give the same text.
bool append_float_general_for_test(std::string& out, double value, int bits);

/// Appends a signed decimal integer.
void append_int(std::string& out, std::int64_t value);

/// RFC 3339 UTC text of a protobuf Timestamp, normalised like Go's time.Unix(s, ns).
/// `fraction`: false = whole seconds (encoding/json MQTT form, fraction truncated);
/// true = protojson form with 0, 3, 6 or 9 fraction digits.
void append_rfc3339(std::string& out, std::int64_t seconds, std::int32_t nanos, bool fraction);

}  // namespace ts::pipeline::json

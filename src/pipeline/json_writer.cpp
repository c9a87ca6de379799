#include "pipeline/json_writer.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <iterator>

namespace ts::pipeline::json {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void append_u_escape(std::string& out, unsigned code) {
  out += "\\u";
  out += kHex[(code >> 12) & 15];
  out += kHex[(code >> 8) & 15];
  out += kHex[(code >> 4) & 15];
  out += kHex[code & 15];
}

// Days since 1970-01-01 -> civil date (proleptic Gregorian), valid for the whole int64 range we
// accept after normalisation.
void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
}

void append_padded(std::string& out, std::int64_t v, int width) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  for (int n = static_cast<int>(end - buf); n < width; ++n) out += '0';
  out.append(buf, end);
}

// The general path: the shortest digits from std::to_chars, laid out as Go does. `value` is
// finite and not zero.
void append_float_general(std::string& out, double value, int bits) {
  // Go: exponent form when abs < 1e-6 || abs >= 1e21, compared at the value's own width.
  bool exp_form;
  char buf[64];
  std::to_chars_result r;
  if (bits == 32) {
    const float f = static_cast<float>(value);
    const float a = std::fabs(f);
    exp_form = a < 1e-6f || a >= 1e21f;
    r = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
  } else {
    const double a = std::fabs(value);
    exp_form = a < 1e-6 || a >= 1e21;
    r = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  }
  std::string_view sci(buf, static_cast<size_t>(r.ptr - buf));  // e.g. "-1.2345679e+08"
  if (exp_form) {
    // Same shortest digits; Go writes "e-07" as "e-7" but keeps "e+21".
    const size_t n = sci.size();
    if (n >= 4 && sci[n - 4] == 'e' && sci[n - 3] == '-' && sci[n - 2] == '0') {
      out.append(sci.substr(0, n - 2));
      out += sci[n - 1];
    } else {
      out.append(sci);
    }
    return;
  }
  // Fixed notation from the shortest digits (std::to_chars in fixed mode may pick other digits of
  // the same length: 123456792 where Go prints 123456790). Laid out in a stack buffer.
  const char* p = sci.data();
  const char* const e = p + sci.find('e');
  char out_buf[48];  // fixed notation only for 1e-6 <= |x| < 1e21: at most 28 characters
  char* o = out_buf;
  if (*p == '-') *o++ = *p++;
  char digits[24];
  int n = 0;
  for (; p < e; ++p)
    if (*p != '.') digits[n++] = *p;
  int exp10 = 0;
  std::from_chars(e + (e[1] == '+' ? 2 : 1), sci.data() + sci.size(), exp10);
  if (exp10 < 0) {
    *o++ = '0';
    *o++ = '.';
    for (int z = 0; z < -exp10 - 1; ++z) *o++ = '0';
    for (int k = 0; k < n; ++k) *o++ = digits[k];
  } else if (exp10 >= n - 1) {
    for (int k = 0; k < n; ++k) *o++ = digits[k];
    for (int z = 0; z < exp10 - (n - 1); ++z) *o++ = '0';
  } else {
    for (int k = 0; k <= exp10; ++k) *o++ = digits[k];
    *o++ = '.';
    for (int k = exp10 + 1; k < n; ++k) *o++ = digits[k];
  }
  out.append(out_buf, static_cast<size_t>(o - out_buf));
}

// 10^0 .. 10^22: every one exactly representable as a double.
constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

// The fast path for float64 values that are short decimals (most telemetry: 80.9, 37.412374).
// Finds the smallest k such that some integer n gives n / 10^k == |value| under IEEE division:
// n / 10^k is then the shortest decimal that round-trips, printed in fixed notation, which is what
// the general path prints. Why it is exact: while x = |value| * 10^k < 2^51, the values that round
// to |value|, scaled by 10^k, span less than 1/2 (their width is 10^k * ulp(|value|) <= x * 2^-52),
// and x is within 2^-3 of the exact product, so the only integer that can round-trip is the one
// nearest to x, and at the smallest such k it is unique, hence also the closest: the shortest
// representation Go (and std::to_chars) choose. Fewer fraction digits means fewer significant
// digits here because |value| >= 1e-6 fixes the leading digit's position. Both n and 10^k are exact
// doubles and IEEE division rounds the exact quotient like a correctly rounded decimal parser does.
// Returns false (nothing appended) when x reaches 2^51 first; the general path handles those.
bool append_short_decimal(std::string& out, double value) {
  const double a = std::fabs(value);
  if (!(a >= 1e-6 && a < 0x1p51)) return false;  // exponent forms and large values: general path
  for (int k = 0; k < static_cast<int>(std::size(kPow10)); ++k) {
    const double p = kPow10[k];
    const double x = a * p;
    if (x >= 0x1p51) return false;
    const auto n = static_cast<std::int64_t>(x + 0.5);  // x + 0.5 is exact: ulp(x) <= 1/4
    if (static_cast<double>(n) / p != a) continue;
    // n has no trailing zero when k > 0 (else k - 1 would have matched).
    char digits[24];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
    (void)ec;
    const int len = static_cast<int>(end - digits);
    char buf[48];  // sign, "0.", up to 21 zeros, up to 16 digits
    char* o = buf;
    if (std::signbit(value)) *o++ = '-';
    if (k == 0) {
      o = std::copy(digits, end, o);
    } else if (len <= k) {
      *o++ = '0';
      *o++ = '.';
      o = std::fill_n(o, k - len, '0');
      o = std::copy(digits, end, o);
    } else {
      o = std::copy(digits, digits + (len - k), o);
      *o++ = '.';
      o = std::copy(digits + (len - k), end, o);
    }
    out.append(buf, static_cast<size_t>(o - buf));
    return true;
  }
  return false;
}

}  // namespace

void append_string(std::string& out, std::string_view s, Escaping escaping) {
  out += '"';
  const bool html = escaping == Escaping::Go;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    const char* esc = nullptr;
    bool u_escape = false;
    size_t skip = 1;
    if (c == '"') {
      esc = "\\\"";
    } else if (c == '\\') {
      esc = "\\\\";
    } else if (c < 0x20) {
      switch (c) {
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default: u_escape = true;
      }
    } else if (html && (c == '<' || c == '>' || c == '&')) {
      u_escape = true;
    } else if (html && c == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
               (static_cast<unsigned char>(s[i + 2]) == 0xA8 ||
                static_cast<unsigned char>(s[i + 2]) == 0xA9)) {
      // U+2028 / U+2029 (line and paragraph separators), escaped by encoding/json.
      out.append(s.data() + start, i - start);
      append_u_escape(out, static_cast<unsigned char>(s[i + 2]) == 0xA8 ? 0x2028 : 0x2029);
      i += 2;
      start = i + 1;
      continue;
    } else {
      continue;
    }
    out.append(s.data() + start, i - start);
    if (u_escape) {
      append_u_escape(out, c);
    } else {
      out += esc;
    }
    start = i + skip;
  }
  out.append(s.data() + start, s.size() - start);
  out += '"';
}

bool append_float(std::string& out, double value, int bits) {
  if (!std::isfinite(value)) return false;
  if (value == 0) {
    out += std::signbit(value) ? "-0" : "0";
    return true;
  }
  // float32 stays on the general path: checking a round trip at float32 width through a double
  // division would round twice.
  if (bits == 64 && append_short_decimal(out, value)) return true;
  append_float_general(out, value, bits);
  return true;
}

bool append_float_general_for_test(std::string& out, double value, int bits) {
  if (!std::isfinite(value)) return false;
  if (value == 0) {
    out += std::signbit(value) ? "-0" : "0";
    return true;
  }
  append_float_general(out, value, bits);
  return true;
}

void append_int(std::string& out, std::int64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  (void)ec;
  out.append(buf, end);
}

void append_rfc3339(std::string& out, std::int64_t seconds, std::int32_t nanos, bool fraction) {
  // Go's time.Unix normalises nanos outside [0, 1e9) into the seconds, wrapping on overflow;
  // unsigned arithmetic gives the same result without undefined behaviour.
  std::int64_t ns = nanos;
  auto wrap_add = [](std::int64_t a, std::int64_t b) {
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
  };
  seconds = wrap_add(seconds, ns / 1'000'000'000);
  ns %= 1'000'000'000;
  if (ns < 0) {
    ns += 1'000'000'000;
    seconds = wrap_add(seconds, -1);
  }
  std::int64_t days = seconds / 86400;
  std::int64_t rem = seconds % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  std::int64_t year;
  unsigned month, day;
  civil_from_days(days, year, month, day);
  out += '"';
  if (year < 0) {
    out += '-';
    year = -year;
  }
  append_padded(out, year, 4);
  out += '-';
  append_padded(out, month, 2);
  out += '-';
  append_padded(out, day, 2);
  out += 'T';
  append_padded(out, rem / 3600, 2);
  out += ':';
  append_padded(out, rem / 60 % 60, 2);
  out += ':';
  append_padded(out, rem % 60, 2);
  if (fraction && ns != 0) {
    char frac[16];
    std::snprintf(frac, sizeof frac, "%09lld", static_cast<long long>(ns));
    int len = 9;
    if (ns % 1'000'000 == 0) {
      len = 3;
    } else if (ns % 1'000 == 0) {
      len = 6;
    }
    out += '.';
    out.append(frac, static_cast<size_t>(len));
  }
  out += "Z\"";
}

}  // namespace ts::pipeline::json

#include "ingest/limits.hpp"

#include "signal/signal.hpp"

namespace ts::ingest {
namespace {

constexpr std::size_t kQuotedBytes = 64;  // of a refused name, in its dead letter's reason

/// `text` cut to kQuotedBytes, with only printable ASCII kept ('?' for the rest).
std::string quoted(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kQuotedBytes)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > kQuotedBytes) out += "...";
  return out;
}

}  // namespace

std::optional<std::string> signal_name_problem(std::string_view name) {
  if (signal::is_field_name(name)) return std::nullopt;
  return std::string(kReasonUnknownField) + ": " + quoted(name);
}

std::optional<std::string> text_problem(std::string_view what, std::string_view value,
                                        std::size_t max_bytes) {
  if (value.size() <= max_bytes) return std::nullopt;
  return std::string(kReasonTooLong) + ": " + std::string(what) + " of " +
         std::to_string(value.size()) + " bytes (at most " + std::to_string(max_bytes) + ")";
}

}  // namespace ts::ingest

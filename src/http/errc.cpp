#include "http/errc.hpp"

#include <string>

namespace ts::http {

namespace {

struct Entry {
  unsigned status;
  std::string_view code;
  const char* message;
};

Entry entry_of(errc e) noexcept {
  switch (e) {
    case errc::bad_request: return {400, "bad_request", "bad request"};
    case errc::unauthorized: return {401, "unauthorized", "authentication required"};
    case errc::forbidden: return {403, "forbidden", "forbidden"};
    case errc::not_found: return {404, "not_found", "not found"};
    case errc::method_not_allowed: return {405, "method_not_allowed", "method not allowed"};
    case errc::conflict: return {409, "conflict", "conflict"};
    case errc::payload_too_large: return {413, "payload_too_large", "request body too large"};
    case errc::unsupported_media_type:
      return {415, "unsupported_media_type", "unsupported media type"};
    case errc::unprocessable: return {422, "unprocessable", "invalid request"};
    case errc::too_many_requests: return {429, "too_many_requests", "too many requests"};
    case errc::headers_too_large: return {431, "headers_too_large", "request headers too large"};
    case errc::internal: return {500, "internal", "internal error"};
    case errc::bad_gateway: return {502, "bad_gateway", "upstream failed"};
    case errc::unavailable: return {503, "unavailable", "service unavailable"};
    case errc::gateway_timeout: return {504, "gateway_timeout", "upstream timed out"};
  }
  return {500, "internal", "internal error"};
}

// Boost's error_category has a protected non-virtual destructor by design (categories are never
// deleted through a base pointer); -Wnon-virtual-dtor does not know that.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class HttpCategory final : public boost::system::error_category {
 public:
  // A fixed 64-bit id makes equality work across shared-library copies (Boost.System docs).
  constexpr HttpCategory() noexcept : error_category(0x7473687474703031ULL) {}

  const char* name() const noexcept override { return "ts.http"; }

  std::string message(int ev) const override {
    if (ev < static_cast<int>(errc::bad_request) || ev > static_cast<int>(errc::gateway_timeout))
      return "unknown http error " + std::to_string(ev);
    return entry_of(static_cast<errc>(ev)).message;
  }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& http_category() noexcept {
  static const HttpCategory category;
  return category;
}

unsigned status_of(errc e) noexcept { return entry_of(e).status; }

std::string_view code_of(errc e) noexcept { return entry_of(e).code; }

}  // namespace ts::http

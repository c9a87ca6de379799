#include "fleet_api/errc.hpp"

#include <fmt/format.h>

#include <system_error>

namespace ts::fleet_api {

namespace {

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class Category final : public boost::system::error_category {
 public:
  constexpr Category() noexcept : error_category(0x7473666c65657431ULL) {}
  const char* name() const noexcept override { return "ts.fleet_api"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::unauthorized:
        return "unauthorized";
      case errc::vehicle_unavailable:
        return "vehicle_unavailable";
      case errc::rate_limited:
        return "rate_limited";
      case errc::not_found:
        return "not_found";
      case errc::rejected:
        return "rejected";
      case errc::server_error:
        return "server_error";
      case errc::bad_response:
        return "bad_response";
      case errc::network:
        return "network";
      case errc::invalid_request:
        return "invalid_request";
    }
    return "unknown fleet_api error " + std::to_string(ev);
  }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& category() noexcept {
  static const Category instance;
  return instance;
}

std::string Error::describe() const {
  std::string out = code.message();
  std::string details;
  if (status != 0) details = fmt::format("HTTP {}", status);
  if (retry_after.count() > 0) {
    details += fmt::format("{}retry after {} s", details.empty() ? "" : ", ", retry_after.count());
  }
  if (cause && message.find(cause.message()) == std::string::npos) {
    details += fmt::format("{}{}", details.empty() ? "" : ", ", cause.message());
  }
  if (!details.empty()) out += " (" + details + ")";
  if (!message.empty()) out += ": " + message;
  return out;
}

void throw_exception_from_error(const Error& e, const boost::source_location&) {
  throw std::system_error(std::error_code(e.code), e.describe());
}

}  // namespace ts::fleet_api

// The "mqtt" error category.
#include "mqtt/errc.hpp"

#include <string>

namespace ts::mqtt {
namespace {

// Boost's error_category has a protected non-virtual destructor by design (categories are never
// deleted through a base pointer); -Wnon-virtual-dtor does not know that.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class Category final : public boost::system::error_category {
 public:
  constexpr Category() noexcept : error_category(0x74736d7174743031ULL) {}
  const char* name() const noexcept override { return "mqtt"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::unacceptable_protocol_version:
        return "broker refused the connection: unacceptable protocol version";
      case errc::identifier_rejected:
        return "broker refused the connection: identifier rejected";
      case errc::server_unavailable:
        return "broker refused the connection: server unavailable";
      case errc::bad_username_or_password:
        return "broker refused the connection: bad username or password";
      case errc::not_authorized:
        return "broker refused the connection: not authorized";
      case errc::unknown_connack_code:
        return "broker refused the connection: unknown CONNACK return code";
      case errc::malformed_packet:
        return "malformed packet from the broker";
      case errc::protocol_violation:
        return "unexpected packet from the broker";
      case errc::ping_timeout:
        return "no PINGRESP within the keep-alive interval";
      case errc::not_connected:
        return "not connected to the broker";
      case errc::too_many_unconfirmed:
        return "too many messages unconfirmed by the broker";
      case errc::invalid_topic:
        return "invalid topic name";
      case errc::packet_too_large:
        return "message too large for MQTT";
      case errc::connection_lost:
        return "broker connection lost";
      case errc::shutting_down:
        return "MQTT client shutting down";
      case errc::subscribe_timeout:
        return "no SUBACK from the broker within the subscribe timeout";
    }
    return "unknown mqtt error " + std::to_string(ev);
  }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& category() noexcept {
  static const Category instance;
  return instance;
}

boost::system::error_code connack_error(std::uint8_t return_code) noexcept {
  // spec 3.2.2.3, table 3.1: 0 accepted, 1..5 refusals, 6..255 reserved.
  if (return_code == 0) return {};
  if (return_code <= 5) return make_error_code(static_cast<errc>(return_code));
  return make_error_code(errc::unknown_connack_code);
}

}  // namespace ts::mqtt

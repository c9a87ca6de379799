#pragma once
/// Errors of our MQTT clients (publisher in dispatch/mqtt, Subscriber here), registered as the
/// error category "mqtt". The CONNACK refusals keep the return-code numbers of spec 3.2.2.3.
#include <boost/system/error_code.hpp>

#include <cstdint>
#include <type_traits>

namespace ts::mqtt {

enum class errc {
  unacceptable_protocol_version = 1,
  identifier_rejected = 2,
  server_unavailable = 3,
  bad_username_or_password = 4,
  not_authorized = 5,
  unknown_connack_code = 6,  ///< a CONNACK return code above 5
  malformed_packet = 20,     ///< the broker sent bytes that are not a valid MQTT packet
  protocol_violation,        ///< a valid packet the broker must not send at this point
  ping_timeout,              ///< no PINGRESP within the keep-alive interval
  not_connected,             ///< publish while no broker session is up
  too_many_unconfirmed,      ///< publish beyond the unconfirmed-message bound
  invalid_topic,             ///< topic name empty, too long, not UTF-8, or with + # or U+0000
  packet_too_large,          ///< a PUBLISH whose Remaining Length would exceed 268,435,455
  connection_lost,           ///< the session ended before the message was confirmed
  shutting_down,
  subscribe_timeout,         ///< no SUBACK within the subscribe timeout
};

const boost::system::error_category& category() noexcept;
inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), category()};
}

/// The CONNACK return code (spec 3.2.2.3) as an error; success for 0.
boost::system::error_code connack_error(std::uint8_t return_code) noexcept;

}  // namespace ts::mqtt

namespace boost::system {
template <>
struct is_error_code_enum<ts::mqtt::errc> : std::true_type {};
}  // namespace boost::system

#pragma once
/// Error codes of the Redis client code in state/redis, registered as the Boost.System category
/// "ts.redis". Immutable, any thread.
#include <boost/system/error_code.hpp>

#include <type_traits>

namespace ts::state::redis {

enum class errc {
  connect_failed = 1,  ///< TCP/unix connect failed or timed out
  auth_failed,         ///< AUTH (or SELECT) refused
  io_error,            ///< the connection broke or a command timed out
  server_error,        ///< Redis answered with an error reply
  bad_reply,           ///< a reply of an unexpected shape
  bad_value,           ///< a stored hash field is not our value format
  not_connected,
};

const boost::system::error_category& category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), category()};
}

}  // namespace ts::state::redis

template <>
struct boost::system::is_error_code_enum<ts::state::redis::errc> : std::true_type {};

#pragma once
/// Loopback TCP ports for hermetic tests. Free functions, thread-safe, never block for long.
#include <cstdint>

namespace ts::testsupport {

/// Asks the kernel for a currently unused TCP port on 127.0.0.1 (bind to port 0, read it back,
/// close). The port is free when this returns, not reserved: start the server on it soon.
/// Throws std::system_error if no socket can be created or bound.
std::uint16_t free_port();

/// True if a TCP connection to 127.0.0.1:`port` is accepted right now. The connection is closed
/// at once. Bounded: gives up (false) after 250 ms. Never throws.
bool tcp_connectable(std::uint16_t port);

}  // namespace ts::testsupport

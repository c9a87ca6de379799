#pragma once
/// The result of one non-blocking step of a TLS operation, shared by TlsStream and the TLS 1.3
/// record layer it hands connections to (tls13_records.hpp).
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>

namespace ts::runtime::detail {

/// What one step asks for next.
enum class TlsWant : std::uint8_t { nothing, read, write };

/// Outcome of one non-blocking step: done (`want == nothing`, `ec`/`bytes` final) or a socket
/// readiness to wait for before the same step is retried.
struct TlsStep {
  boost::system::error_code ec;
  std::size_t bytes = 0;
  TlsWant want = TlsWant::nothing;
};

}  // namespace ts::runtime::detail

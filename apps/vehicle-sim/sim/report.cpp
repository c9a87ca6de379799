#include "sim/report.hpp"

#include <fmt/format.h>

#include <cmath>

namespace ts::vehicle_sim {
namespace {
// JSON has no NaN or infinity; a broken computation must not produce an unparsable line.
double finite(double v) { return std::isfinite(v) ? v : 0.0; }
}  // namespace

std::string to_json_line(const RunReport& r) {
  return fmt::format(
      R"({{"sent":{},"acked":{},"errors":{},"ack_p50_ms":{:.3f},"ack_p99_ms":{:.3f},)"
      R"("vehicles":{},"connected":{},"connect_failures":{},"disconnects":{},)"
      R"("error_replies":{},"bad_replies":{},"unacked":{},"records_per_s":{:.1f},)"
      R"("ack_max_ms":{:.3f},"duration_s":{:.3f}}})",
      r.sent, r.acked, r.errors, finite(r.ack_p50_ms), finite(r.ack_p99_ms), r.vehicles,
      r.connected, r.connect_failures, r.disconnects, r.error_replies, r.bad_replies, r.unacked,
      finite(r.records_per_s), finite(r.ack_max_ms), finite(r.duration_s));
}

}  // namespace ts::vehicle_sim

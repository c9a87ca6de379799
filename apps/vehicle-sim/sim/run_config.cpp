#include "sim/run_config.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <stdexcept>

namespace ts::vehicle_sim {
namespace {

void require(bool ok, std::string_view option, std::string_view rule) {
  if (!ok) throw std::invalid_argument(fmt::format("{}: {}", option, rule));
}

}  // namespace

void RunConfig::validate() const {
  require(!host.empty(), "--server", "the host is empty");
  require(port != 0, "--server", "the port must be 1-65535");
  require(vehicles >= 1 && vehicles <= 1'000'000, "--vehicles", "must be 1-1000000");
  require(std::isfinite(rate_hz) && rate_hz >= 0 && rate_hz <= 10'000, "--rate",
          "must be 0 (closed loop) to 10000 records/s per vehicle");
  require(std::isfinite(duration_s) && duration_s > 0 && duration_s <= 7 * 86400.0, "--duration",
          "must be > 0 and at most a week");
  require(std::isfinite(warmup_s) && warmup_s >= 0 && warmup_s < duration_s, "--warmup",
          "must be >= 0 and shorter than --duration");
  require(std::isfinite(connect_rate) && connect_rate > 0, "--connect-rate", "must be > 0");
  require(threads >= 1 && threads <= 256, "--threads", "must be 1-256");
  require(datums >= 1 && datums <= field_catalogue().size(), "--datums",
          fmt::format("must be 1-{}", field_catalogue().size()));
  require(std::isfinite(time_scale) && time_scale >= 0 && time_scale <= 1e6, "--time-scale",
          "must be 0-1000000");
  require(std::isfinite(connect_timeout_s) && connect_timeout_s > 0, "--connect-timeout",
          "must be > 0");
  require(std::isfinite(ack_timeout_s) && ack_timeout_s > 0, "--ack-timeout", "must be > 0");
  require(std::isfinite(close_grace_s) && close_grace_s >= 0, "--close-grace", "must be ≥ 0");
  require(max_in_flight >= 1, "--max-in-flight", "must be ≥ 1");
  require(std::isfinite(progress_interval_s) && progress_interval_s >= 0, "--progress",
          "must be ≥ 0");
}

std::pair<std::string, std::uint16_t> parse_server(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw std::invalid_argument(fmt::format("--server: expected [IPV6]:PORT, got '{}'", text));
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      throw std::invalid_argument(fmt::format("--server: expected HOST:PORT, got '{}'", text));
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || port.empty() || ec != std::errc{} || end != port.data() + port.size() ||
      value == 0 || value > 65535) {
    throw std::invalid_argument(fmt::format("--server: expected HOST:PORT, got '{}'", text));
  }
  return {std::string(host), static_cast<std::uint16_t>(value)};
}

}  // namespace ts::vehicle_sim

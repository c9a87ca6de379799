#pragma once
/// What one `vehicle-sim run` does: the parsed and validated command line. Plain value, made
/// once by the `run` subcommand and read (never changed) by every shard.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "sim/signals.hpp"

namespace ts::vehicle_sim {

struct RunConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 4443;
  /// Name sent as SNI and checked against the server certificate; defaults to `host`.
  std::string server_name;
  std::filesystem::path cert_dir;
  std::size_t vehicles = 1;
  double rate_hz = 1.0;  ///< records per second per vehicle; 0 = closed loop
  double duration_s = 10.0;
  /// Seconds from the first connection during which ack latencies are not recorded (the records
  /// still count as sent and acked): keeps the connect ramp's TLS handshakes out of the tail.
  double warmup_s = 0.0;
  bool idle = false;            ///< connect and hold, send nothing
  double connect_rate = 500.0;  ///< new connections per second, fleet-wide
  unsigned threads = 1;
  std::size_t datums = kDefaultDatums;
  bool reuse_certs = false;
  std::uint64_t seed = 1;
  double time_scale = 1.0;            ///< simulated seconds per real second
  double connect_timeout_s = 30.0;    ///< TCP connect + TLS handshake; each WebSocket handshake
  double ack_timeout_s = 10.0;        ///< closed loop: send the next record anyway after this
  double close_grace_s = 10.0;        ///< after the duration, time allowed for clean closes
  std::size_t max_in_flight = 4096;   ///< unanswered records remembered per vehicle
  double progress_interval_s = 10.0;  ///< a progress line on stderr; 0 = none
  std::string network_interface = "wifi";  ///< X-Network-Interface (spec §2.5)
  std::string client_version = "1.0.0";    ///< Version header (spec §2.5)

  /// Throws std::invalid_argument naming the option when a value is out of range.
  void validate() const;
  const std::string& tls_name() const { return server_name.empty() ? host : server_name; }
};

/// Splits "HOST:PORT" ("[::1]:4443" for IPv6). Throws std::invalid_argument on a missing or
/// invalid port or an empty host.
std::pair<std::string, std::uint16_t> parse_server(std::string_view text);

}  // namespace ts::vehicle_sim

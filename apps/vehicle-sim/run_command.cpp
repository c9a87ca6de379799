// `vehicle-sim run`: the DESIGN.md contract
//   vehicle-sim run --server HOST:PORT --certs DIR --vehicles N --rate HZ --duration S
// drives N vehicles and prints one JSON line on stdout at the end; logs go to stderr.
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "commands.hpp"
#include "core/log.hpp"
#include "sim/cert_dir.hpp"
#include "sim/fleet.hpp"
#include "sim/report.hpp"
#include "sim/run_config.hpp"

namespace ts::vehicle_sim {
namespace {

struct RunOptions {
  std::string server;
  std::string certs;
  std::string log_level = "info";
  RunConfig config;
};

int run(const RunOptions& options) {
  RunConfig cfg = options.config;
  std::tie(cfg.host, cfg.port) = parse_server(options.server);
  cfg.cert_dir = options.certs;
  cfg.validate();
  CertDir certs = scan_cert_dir(cfg.cert_dir, cfg.vehicles);
  std::vector<VehicleIdentity> identities = assign_identities(certs, cfg.vehicles, cfg.reuse_certs);

  Fleet fleet(cfg, std::move(certs), std::move(identities));
  FleetResult result = fleet.run();
  std::cout << to_json_line(result.report) << std::endl;

  const RunReport& r = result.report;
  if (result.not_started > 0) {
    ts::log::get("sim")->warn("{} vehicle(s) were not started: the run ended during the ramp",
                              result.not_started);
  }
  if (r.connected == 0) {
    std::cerr << "vehicle-sim: no vehicle could connect to " << options.server;
    if (result.first_connect_error) {
      std::cerr << "; first error (vehicle " << result.first_connect_error->vehicle << ", VIN "
                << result.first_connect_error->vin << "): " << result.first_connect_error->message;
    }
    std::cerr << "\n";
    return 1;
  }
  if (r.connect_failures > 0 && result.first_connect_error) {
    ts::log::get("sim")->warn("{} of {} vehicle(s) could not connect; first error: {}",
                              r.connect_failures, r.vehicles, result.first_connect_error->message);
  }
  return 0;
}

}  // namespace

void register_run(CLI::App& app) {
  auto options = std::make_shared<RunOptions>();
  RunConfig& cfg = options->config;
  CLI::App* cmd = app.add_subcommand(
      "run",
      "Drive N simulated vehicles against a telemetry server and print one JSON line: "
      "{\"sent\",\"acked\",\"errors\",\"ack_p50_ms\",\"ack_p99_ms\",...}");
  cmd->add_option("--server", options->server, "telemetry server, HOST:PORT ([IPV6]:PORT)")
      ->required();
  cmd->add_option("--certs", options->certs,
                  "directory made by `tsctl dev-ca --out DIR --count N`: ca.pem and "
                  "vehicle-<VIN>.pem/.key (VINs used in sorted order)")
      ->required();
  cmd->add_option("--vehicles", cfg.vehicles, "number of vehicles (connections)")
      ->capture_default_str();
  cmd->add_option("--rate", cfg.rate_hz,
                  "V records per second per vehicle; 0 = closed loop (next record as soon as the "
                  "previous one is acked)")
      ->capture_default_str();
  cmd->add_option("--duration", cfg.duration_s,
                  "seconds from the first connection until the vehicles stop sending and close")
      ->capture_default_str();
  cmd->add_option("--warmup", cfg.warmup_s,
                  "seconds from the first connection whose records are sent and counted but not "
                  "timed (keeps the connect ramp out of the ack percentiles)")
      ->capture_default_str();
  cmd->add_flag("--idle", cfg.idle, "connect and hold the connections open without sending");
  cmd->add_option("--datums", cfg.datums,
                  "datums per V record (20 ~ a 290-byte protobuf, the benchmark shape)")
      ->capture_default_str();
  cmd->add_option("--connect-rate", cfg.connect_rate, "new connections per second, fleet-wide")
      ->capture_default_str();
  cmd->add_option("--threads", cfg.threads, "threads, one io_context each")->capture_default_str();
  cmd->add_flag("--reuse-certs", cfg.reuse_certs,
                "let vehicles share certificates round-robin when DIR has fewer than N");
  cmd->add_option("--seed", cfg.seed, "seed of the simulated signals (with each VIN)")
      ->capture_default_str();
  cmd->add_option("--time-scale", cfg.time_scale,
                  "simulated seconds per real second (parked/driving/charging change every few "
                  "simulated minutes)")
      ->capture_default_str();
  cmd->add_option("--server-name", cfg.server_name,
                  "name for SNI and for checking the server certificate (default: the host)");
  cmd->add_option("--connect-timeout", cfg.connect_timeout_s,
                  "seconds for TCP connect + TLS handshake, and for each WebSocket handshake")
      ->capture_default_str();
  cmd->add_option("--ack-timeout", cfg.ack_timeout_s,
                  "closed loop: seconds to wait for a reply before sending the next record")
      ->capture_default_str();
  cmd->add_option("--close-grace", cfg.close_grace_s,
                  "seconds allowed for clean WebSocket closes after the run")
      ->capture_default_str();
  cmd->add_option("--max-in-flight", cfg.max_in_flight,
                  "unanswered records remembered per vehicle (older ones count as unacked)")
      ->capture_default_str();
  cmd->add_option("--progress", cfg.progress_interval_s,
                  "seconds between progress lines on stderr; 0 = none")
      ->capture_default_str();
  cmd->add_option("--network-interface", cfg.network_interface, "X-Network-Interface header")
      ->capture_default_str();
  cmd->add_option("--client-version", cfg.client_version, "Version header")->capture_default_str();
  cmd->add_option("--log-level", options->log_level, "trace, debug, info, warn, error, off")
      ->capture_default_str();
  cmd->footer(
      "Output keys: sent, acked, errors (= error_replies + bad_replies + connect_failures + "
      "disconnects), ack_p50_ms, ack_p99_ms, vehicles, connected, connect_failures, "
      "disconnects, error_replies, bad_replies, unacked, records_per_s, ack_max_ms, duration_s.\n"
      "Exit code: 0 when at least one vehicle connected, 1 when none could (the first error is "
      "printed), 2 for invalid options or certificate directory.");

  cmd->callback([options] {
    ts::log::Options log_options;
    log_options.level = options->log_level;
    if (!ts::log::configure(log_options)) {
      std::cerr << "vehicle-sim run: --log-level: unknown level '" << options->log_level << "'\n";
      exit_code() = 2;
      return;
    }
    try {
      exit_code() = run(*options);
    } catch (const CertDirError& e) {
      std::cerr << "vehicle-sim run: " << e.what() << "\n";
      exit_code() = 2;
    } catch (const std::invalid_argument& e) {
      std::cerr << "vehicle-sim run: " << e.what() << "\n";
      exit_code() = 2;
    } catch (const std::exception& e) {
      std::cerr << "vehicle-sim run: " << e.what() << "\n";
      exit_code() = 1;
    }
  });
}

}  // namespace ts::vehicle_sim

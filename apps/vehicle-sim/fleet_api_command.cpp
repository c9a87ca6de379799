// `vehicle-sim fleet-api`: the DESIGN.md contract
//   vehicle-sim fleet-api --listen HOST:PORT
// runs the stand-in for Tesla's Fleet API until SIGINT/SIGTERM. One line on stdout once it
// listens ("fleet-api stand-in listening on http://127.0.0.1:8443 …"); logs go to stderr.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <fmt/format.h>

#include <charconv>
#include <csignal>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands.hpp"
#include "core/log.hpp"
#include "fleet_api/listener.hpp"
#include "fleet_api/stand_in.hpp"
#include "pki/dev_ca.hpp"
#include "sim/cert_dir.hpp"

namespace ts::vehicle_sim {
namespace {

struct FleetApiArgs {
  std::string listen = "127.0.0.1:8443";
  std::vector<std::string> vins;
  std::size_t vehicles = 0;
  std::string certs;
  std::string cert_file, key_file;
  std::string log_level = "info";
  StandInOptions standin;
  std::vector<std::string> asleep, offline, unpaired, modes, telemetry_errors, error_vins;
  unsigned rate_limit = 0, retry_after = 30;
  unsigned server_errors = 0, server_error_status = 503;
};

constexpr std::size_t kDefaultVehicles = 3;

// "HOST:PORT" or "[V6]:PORT"; port 0 = any free port.
std::pair<std::string, std::uint16_t> parse_listen(const std::string& text) {
  std::string host, port;
  if (text.starts_with('[')) {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw std::invalid_argument("--listen: expected [IPV6]:PORT, got '" + text + "'");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) {
      throw std::invalid_argument("--listen: expected HOST:PORT, got '" + text + "'");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value > 65535) {
    throw std::invalid_argument("--listen: bad port in '" + text + "'");
  }
  return {host, static_cast<std::uint16_t>(value)};
}

// "VIN=VALUE" → {VIN, VALUE}; VALUE may be empty when `value_optional`.
std::pair<std::string, std::string> split_assignment(const std::string& text, const char* option,
                                                     bool value_optional) {
  auto eq = text.find('=');
  if (eq == std::string::npos) {
    if (value_optional) return {text, {}};
    throw std::invalid_argument(std::string(option) + ": expected VIN=VALUE, got '" + text + "'");
  }
  return {text.substr(0, eq), text.substr(eq + 1)};
}

SimVehicle& vehicle_for(StandIn& s, const std::string& vin, const char* option) {
  SimVehicle* v = s.fleet().find(vin);
  if (v == nullptr) {
    throw std::invalid_argument(std::string(option) + ": " + vin + " is not one of the vehicles");
  }
  return *v;
}

std::vector<std::string> choose_vins(const FleetApiArgs& a) {
  std::vector<std::string> vins = a.vins;
  if (!a.certs.empty()) {
    CertDir dir = scan_cert_dir(a.certs, a.vehicles);
    for (const auto& c : dir.vehicles) vins.push_back(c.vin);
    if (a.vehicles > 0 && vins.size() > a.vehicles) vins.resize(a.vehicles);
  } else if (a.vins.empty() || a.vehicles > 0) {
    const std::size_t n = a.vehicles > 0 ? a.vehicles : (a.vins.empty() ? kDefaultVehicles : 0);
    auto synthetic = pki::synthetic_vins(n);
    vins.insert(vins.end(), synthetic.begin(), synthetic.end());
  }
  return vins;
}

int run(FleetApiArgs& a) {
  auto [host, port] = parse_listen(a.listen);
  StandInOptions options = a.standin;
  options.vins = choose_vins(a);
  StandIn standin(std::move(options));

  // Start-up switches: the same effects as the /sim/ controls.
  for (const auto& vin : a.asleep)
    standin.fleet().put_to_sleep(vehicle_for(standin, vin, "--asleep"));
  for (const auto& vin : a.offline) {
    standin.fleet().take_offline(vehicle_for(standin, vin, "--offline"));
  }
  for (const auto& vin : a.unpaired) vehicle_for(standin, vin, "--unpaired").key_paired = false;
  for (const auto& m : a.modes) {
    auto [vin, name] = split_assignment(m, "--mode", false);
    auto mode = parse_mode(name);
    if (!mode)
      throw std::invalid_argument("--mode: " + name + " is not parked, driving or charging");
    standin.fleet().set_mode(vehicle_for(standin, vin, "--mode"), *mode);
  }
  for (const auto& e : a.telemetry_errors) {
    auto [vin, text] = split_assignment(e, "--telemetry-error", true);
    standin.add_telemetry_error(vehicle_for(standin, vin, "--telemetry-error"), "", text);
  }
  if (!a.error_vins.empty()) standin.set_error_vins(a.error_vins);
  if (a.rate_limit > 0) {
    standin.add_fault(
        {.kind = Fault::Kind::RateLimit, .count = a.rate_limit, .retry_after_s = a.retry_after});
  }
  if (a.server_errors > 0) {
    standin.add_fault({.kind = Fault::Kind::ServerError,
                       .count = a.server_errors,
                       .status = a.server_error_status});
  }

  boost::asio::io_context io(1);
  Listener listener(
      io,
      ListenerOptions{.host = host, .port = port, .cert_file = a.cert_file, .key_file = a.key_file},
      [&standin](const http::Request& r) { return standin.handle(r); });
  listener.start();
  auto log = ts::log::get("sim");
  const bool loopback = host == "localhost" || host.starts_with("127.") || host == "::1";
  if (!loopback) {
    log->warn("listening on {} beyond loopback: the /sim/ controls have no authentication",
              host.empty() ? "*" : host);
  }
  const auto& vehicles = standin.fleet().vehicles();
  std::string list;
  for (std::size_t i = 0; i < vehicles.size() && i < 10; ++i) list += " " + vehicles[i].vin;
  if (vehicles.size() > 10) list += fmt::format(" … ({} more)", vehicles.size() - 10);
  std::cout << "fleet-api stand-in listening on " << listener.url() << " (" << vehicles.size()
            << " vehicle" << (vehicles.size() == 1 ? "" : "s") << ":" << list << ")" << std::endl;
  log->info("token endpoint {}/oauth2/v3/token; initial user refresh token '{}'", listener.url(),
            a.standin.tokens.refresh_token);

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    log->info("stopping");
    listener.stop();
    io.stop();
  });
  io.run();
  return 0;
}

}  // namespace

void register_fleet_api(CLI::App& app) {
  auto a = std::make_shared<FleetApiArgs>();
  StandInOptions& s = a->standin;
  CLI::App* cmd = app.add_subcommand(
      "fleet-api",
      "Run a stand-in for Tesla's Fleet API (tokens, vehicles, vehicle_data, wake_up, fleet "
      "telemetry config and errors) over simulated vehicles, with /sim/ controls to inject "
      "sleeping cars, 429s, 5xx and telemetry errors. See apps/vehicle-sim/README.md.");
  cmd->add_option("--listen", a->listen, "HOST:PORT to listen on (port 0 = any free port)")
      ->capture_default_str();
  cmd->add_option("--vin", a->vins, "a vehicle of the account (repeatable)");
  cmd->add_option("--vehicles", a->vehicles,
                  "number of vehicles: synthetic VINs, or the first N of --certs (default 3 "
                  "when no --vin or --certs)");
  cmd->add_option("--certs", a->certs,
                  "take the VINs from vehicle-<VIN>.pem in this `tsctl dev-ca` directory, so "
                  "the cars match those of `vehicle-sim run`");
  cmd->add_option("--cert", a->cert_file, "serve HTTPS with this PEM certificate chain");
  cmd->add_option("--key", a->key_file, "… and this private key");
  cmd->add_option("--client-id", s.tokens.client_id,
                  "accept only this client_id at the token endpoint (default: any)");
  cmd->add_option("--client-secret", s.tokens.client_secret,
                  "accept only this client_secret for partner tokens (default: any)");
  cmd->add_option("--refresh-token", s.tokens.refresh_token,
                  "the initial user refresh token (always accepted; rotated ones are single use)")
      ->capture_default_str();
  cmd->add_option("--token-ttl", s.tokens.ttl_s, "access token lifetime, seconds")
      ->capture_default_str();
  cmd->add_option("--seed", s.fleet.seed, "seed of the simulated signals (with each VIN)")
      ->capture_default_str();
  cmd->add_option("--time-scale", s.fleet.time_scale,
                  "simulated seconds per real second (0 freezes the cars)")
      ->capture_default_str();
  cmd->add_option("--sleep-after", s.fleet.sleep_after_s,
                  "simulated seconds parked without vehicle_data before a car sleeps; 0 = never")
      ->capture_default_str();
  cmd->add_option("--wake-seconds", s.fleet.wake_s,
                  "real seconds a wake_up takes before the car is online")
      ->capture_default_str();
  cmd->add_option("--asleep", a->asleep, "VIN that starts asleep (held until woken; repeatable)");
  cmd->add_option("--offline", a->offline, "VIN that starts offline (repeatable)");
  cmd->add_option("--mode", a->modes, "VIN=parked|driving|charging at start (repeatable)");
  cmd->add_option("--unpaired", a->unpaired,
                  "VIN whose virtual key is not paired: config create skips it (missing_key)");
  cmd->add_option("--telemetry-error", a->telemetry_errors,
                  "VIN[=TEXT]: a fleet telemetry error reported by that car (repeatable)");
  cmd->add_option("--error-vin", a->error_vins,
                  "explicit partner error-VIN list (default: the VINs with telemetry errors)");
  cmd->add_option("--error-vins-shape", s.error_vins_shape,
                  "fleet_telemetry_error_vins | vins | bare: shape of the error-VIN response")
      ->capture_default_str();
  cmd->add_option("--rate-limit", a->rate_limit, "answer the next N API requests with 429");
  cmd->add_option("--retry-after", a->retry_after, "Retry-After seconds of those 429s")
      ->capture_default_str();
  cmd->add_option("--server-errors", a->server_errors, "answer the next N API requests with 5xx");
  cmd->add_option("--server-error-status", a->server_error_status, "status of those answers")
      ->capture_default_str();
  cmd->add_flag("--require-jws", s.require_jws,
                "answer unsigned fleet_telemetry_config creates with 412, as real Tesla does "
                "without the vehicle-command proxy");
  cmd->add_flag("--cached-when-asleep", s.cached_when_unavailable,
                "vehicle_data of an asleep/offline car answers 200 with cached data and its "
                "state instead of 408 (Tesla documents both)");
  cmd->add_option("--log-level", a->log_level, "trace, debug, info, warn, error, off")
      ->capture_default_str();
  cmd->footer(
      "Controls (no auth): GET /sim/stats, GET /sim/vehicles, POST /sim/vehicles/{vin}/"
      "sleep|offline|wake|mode?mode=M|key?paired=B, POST|DELETE /sim/vehicles/{vin}/"
      "telemetry_errors, POST|DELETE /sim/error_vins, POST /sim/faults/rate_limit|server_error|"
      "garbage|unauthorized?count=N[&endpoint=E], DELETE /sim/faults, POST "
      "/sim/tokens/expire[?refresh=true].\n"
      "Exit code: 0 after SIGINT/SIGTERM, 2 for invalid options, 1 when it cannot listen.");

  cmd->callback([a] {
    ts::log::Options log_options;
    log_options.level = a->log_level;
    if (!ts::log::configure(log_options)) {
      std::cerr << "vehicle-sim fleet-api: --log-level: unknown level '" << a->log_level << "'\n";
      exit_code() = 2;
      return;
    }
    try {
      exit_code() = run(*a);
    } catch (const CertDirError& e) {
      std::cerr << "vehicle-sim fleet-api: " << e.what() << "\n";
      exit_code() = 2;
    } catch (const std::invalid_argument& e) {
      std::cerr << "vehicle-sim fleet-api: " << e.what() << "\n";
      exit_code() = 2;
    } catch (const std::exception& e) {
      std::cerr << "vehicle-sim fleet-api: " << e.what() << "\n";
      exit_code() = 1;
    }
  });
}

}  // namespace ts::vehicle_sim

// tsctl check-server: the server-certificate check (logic in pki/check_server.hpp).
#include <chrono>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "commands.hpp"
#include "pki/check_server.hpp"

namespace tsctl {

namespace {

struct CheckServerArgs {
  std::string target;  // HOST:PORT or [IPv6]:PORT
  std::string ca_file;
  std::string server_name;
  std::string cert_file;
  std::string key_file;
  double timeout_s = 10;
};

// Splits HOST:PORT ("[::1]:4443" for IPv6). Throws std::runtime_error on anything else.
void split_target(const std::string& target, std::string& host, std::uint16_t& port) {
  std::string port_text;
  if (!target.empty() && target.front() == '[') {
    auto close = target.find(']');
    if (close == std::string::npos || close + 1 >= target.size() || target[close + 1] != ':') {
      throw std::runtime_error("HOST:PORT expected, got '" + target + "'");
    }
    host = target.substr(1, close - 1);
    port_text = target.substr(close + 2);
  } else {
    auto colon = target.rfind(':');
    if (colon == std::string::npos || colon == 0 || target.find(':') != colon) {
      throw std::runtime_error("HOST:PORT expected, got '" + target + "'");
    }
    host = target.substr(0, colon);
    port_text = target.substr(colon + 1);
  }
  std::size_t used = 0;
  unsigned long value = 0;
  try {
    value = std::stoul(port_text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != port_text.size() || port_text.empty() || value == 0 || value > 65535) {
    throw std::runtime_error("invalid port in '" + target + "'");
  }
  port = static_cast<std::uint16_t>(value);
}

int run(const CheckServerArgs& args) {
  ts::pki::CheckServerOptions options;
  split_target(args.target, options.host, options.port);
  options.server_name = args.server_name;
  options.ca_file = args.ca_file;
  options.cert_file = args.cert_file;
  options.key_file = args.key_file;
  options.timeout = std::chrono::milliseconds(static_cast<long long>(args.timeout_s * 1000));

  const auto results = ts::pki::check_server(options);
  std::size_t warnings = 0, failures = 0;
  for (const auto& r : results) {
    std::cout << ts::pki::to_string(r.status) << " " << r.check << ": " << r.detail << "\n";
    if (r.status == ts::pki::CheckStatus::Warn) ++warnings;
    if (r.status == ts::pki::CheckStatus::Fail) ++failures;
  }
  if (failures > 0) {
    std::cout << "verdict: FAIL (" << failures << " failed, " << warnings
              << " warning(s)): vehicles will not be able to use this server as it is\n";
    return 1;
  }
  std::cout << "verdict: " << (warnings > 0 ? "PASS with warnings" : "PASS") << " ("
            << results.size() << " checks, " << warnings << " warning(s))\n";
  return 0;
}

}  // namespace

void register_check_server(CLI::App& app) {
  auto args = std::make_shared<CheckServerArgs>();
  CLI::App* cmd = app.add_subcommand(
      "check-server",
      "Check a telemetry server's TLS setup the way a vehicle sees it: chain against the CA "
      "you registered with Tesla, host name, TLS version, client-certificate request and its "
      "CA list; with --cert/--key also GET /status over mTLS. Exit 0 if nothing FAILs.");
  cmd->add_option("target", args->target, "HOST:PORT of the server ([IPv6]:PORT)")->required();
  cmd->add_option("--ca", args->ca_file,
                  "PEM file vehicles verify the server with (the `ca` of your "
                  "fleet_telemetry_config)")
      ->required();
  cmd->add_option("--server-name", args->server_name,
                  "Host name to verify and send as SNI (default: HOST)");
  auto* cert = cmd->add_option("--cert", args->cert_file, "Client certificate (PEM) to present");
  auto* key = cmd->add_option("--key", args->key_file, "Private key of --cert (PEM)");
  cert->needs(key);
  key->needs(cert);
  cmd->add_option("--timeout", args->timeout_s, "Seconds allowed per network step")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 300.0));
  cmd->callback([args] { exit_code() = run(*args); });
}

}  // namespace tsctl

// tsctl dev-ca: development CA and certificates (DESIGN.md contract; logic in pki/dev_ca.hpp).
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "pki/dev_ca.hpp"

namespace tsctl {

namespace {

struct DevCaArgs {
  std::string out_dir;
  std::vector<std::string> vins;
  std::string server_name = "localhost";
  std::size_t count = 0;
};

// A JSON string literal for a path, as it goes into the server config.
std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

constexpr std::size_t kListVinsUpTo = 20;  // beyond this, counts only

void print_vins(const char* what, const std::vector<std::string>& vins) {
  if (vins.empty()) return;
  std::cout << what << " " << vins.size() << " vehicle certificate"
            << (vins.size() == 1 ? "" : "s");
  if (vins.size() <= kListVinsUpTo) {
    std::cout << ":";
    for (const auto& vin : vins) std::cout << " " << vin;
  }
  std::cout << "\n";
}

void run(const DevCaArgs& args) {
  ts::pki::DevCaOptions options;
  options.out_dir = args.out_dir;
  options.vins = args.vins;
  options.server_name = args.server_name;
  const auto synthetic = ts::pki::synthetic_vins(args.count);
  options.vins.insert(options.vins.end(), synthetic.begin(), synthetic.end());

  const auto start = std::chrono::steady_clock::now();
  const ts::pki::DevCaResult result = ts::pki::write_dev_ca(options);
  const auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start);

  const auto dir = result.ca_file.parent_path();
  std::cout << (result.ca_created ? "created CA " : "reused CA ") << result.ca_file.string()
            << " (+ ca.key): CN=" << ts::pki::kDevCaCommonName
            << ", O=" << ts::pki::kDevCaOrganization << "\n";
  std::cout << (result.server_written ? "wrote " : "kept ") << result.server_cert.string()
            << " (+ server.key) for " << args.server_name
            << (args.server_name == "127.0.0.1" ? "" : " and 127.0.0.1") << "\n";
  print_vins("wrote", result.vehicles_written);
  print_vins("kept existing", result.vehicles_kept);
  if (!result.vehicles_written.empty() || !result.vehicles_kept.empty()) {
    std::cout << "vehicle files: " << (dir / "vehicle-<VIN>.pem").string() << " / .key\n";
  }
  std::cout << "done in " << elapsed.count() << " s\n\n";
  std::cout << "telemetry-server config (these certificates are for development only):\n"
            << "  \"tls\": {\n"
            << "    \"server_cert\": " << json_string(result.server_cert.string()) << ",\n"
            << "    \"server_key\": " << json_string(result.server_key.string()) << ",\n"
            << "    \"ca_file\": " << json_string(result.ca_file.string()) << "\n"
            << "  }\n";
}

}  // namespace

void register_dev_ca(CLI::App& app) {
  auto args = std::make_shared<DevCaArgs>();
  CLI::App* cmd = app.add_subcommand(
      "dev-ca",
      "Write a development CA, a server certificate and vehicle certificates shaped like "
      "Tesla's (CN=VIN), for a telemetry-server with tls.ca_file = DIR/ca.pem. Reuses an "
      "existing CA in DIR and never overwrites existing vehicle files of that CA.");
  cmd->add_option("--out", args->out_dir, "Output directory (created if missing)")->required();
  cmd->add_option("--vin", args->vins, "VIN of a vehicle certificate (repeatable)");
  cmd->add_option("--server-name", args->server_name,
                  "DNS name (or IP) of the server certificate; 127.0.0.1 is always added")
      ->capture_default_str();
  cmd->add_option("--count", args->count,
                  "Also make N synthetic VINs with valid check digits (5YJ3E1EA?TF1xxxxx), "
                  "for load tests");
  cmd->callback([args] {
    run(*args);
    exit_code() = 0;
  });
}

}  // namespace tsctl

// tsctl keygen: the application's Fleet API key pair (EC P-256; logic in pki/keypair.hpp).
#include <iostream>
#include <memory>
#include <string>

#include "commands.hpp"
#include "pki/keypair.hpp"

namespace tsctl {

namespace {

constexpr const char* kPrivateName = "private-key.pem";
constexpr const char* kPublicName = "com.tesla.3p.public-key.pem";
constexpr const char* kWellKnownPath = "/.well-known/appspecific/com.tesla.3p.public-key.pem";

struct KeygenArgs {
  std::string out_dir = ".";
  std::string private_key;  // default: OUT/private-key.pem
  std::string public_key;   // default: OUT/com.tesla.3p.public-key.pem
  std::string public_from;  // only derive the public key of this private key
  bool force = false;
};

void print_next_steps(const std::filesystem::path& public_key) {
  std::cout
      << "\nnext steps:\n"
      << "  1. serve the public key: run teslasync-api with\n"
      << "       TESLA_PUBLIC_KEY_FILE=" << public_key.string() << "\n"
      << "     it is then served without auth at https://<your-domain>" << kWellKnownPath << "\n"
      << "     (Tesla fetches it there when you register the partner account, and it must "
         "stay there)\n"
      << "  2. register the domain: POST /api/1/partner_accounts {\"domain\": "
         "\"<your-domain>\"} with a partner token\n"
      << "  3. each owner pairs the key in the Tesla app: https://tesla.com/_ak/<your-domain>\n"
      << "  (docs/fleet-api.md walks through all of it)\n";
}

int run(const KeygenArgs& args) {
  const std::filesystem::path out = args.out_dir;
  const std::filesystem::path public_key =
      args.public_key.empty() ? out / kPublicName : std::filesystem::path(args.public_key);
  try {
    if (!args.public_from.empty()) {
      auto written = ts::pki::write_public_key_from(args.public_from, public_key, args.force);
      std::cout << "wrote public key  " << written.string() << " (mode 0644) from "
                << args.public_from << "\n";
      print_next_steps(written);
      return 0;
    }
    const std::filesystem::path private_key =
        args.private_key.empty() ? out / kPrivateName : std::filesystem::path(args.private_key);
    ts::pki::KeyPairFiles files = ts::pki::write_key_pair(private_key, public_key, args.force);
    std::cout << "wrote private key " << files.private_key.string()
              << " (mode 0600; EC P-256; keep it secret and never serve it)\n"
              << "wrote public key  " << files.public_key.string() << " (mode 0644)\n";
    print_next_steps(files.public_key);
    return 0;
  } catch (const ts::pki::KeyFileExists& e) {
    std::cerr << "tsctl keygen: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace

void register_keygen(CLI::App& app) {
  auto args = std::make_shared<KeygenArgs>();
  CLI::App* cmd = app.add_subcommand(
      "keygen",
      "Make the application's EC P-256 key pair for the Tesla Fleet API: the private key "
      "(mode 0600) and the public key PEM that teslasync-api serves at " +
          std::string(kWellKnownPath) + ". Refuses to overwrite existing files without --force.");
  cmd->add_option("--out", args->out_dir,
                  std::string("Directory for ") + kPrivateName + " and " + kPublicName +
                      " (created if missing)")
      ->capture_default_str();
  cmd->add_option("--private-key", args->private_key, "Private key file (overrides --out)");
  cmd->add_option("--public-key", args->public_key, "Public key file (overrides --out)");
  cmd->add_option("--public-from", args->public_from,
                  "Do not generate: write the public key of this existing private key file");
  cmd->add_flag("--force", args->force, "Overwrite existing key files");
  cmd->callback([args] { exit_code() = run(*args); });
}

}  // namespace tsctl

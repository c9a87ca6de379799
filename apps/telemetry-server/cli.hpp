#pragma once
/// telemetry-server command line. Go `flag` syntax as in the reference server (`-config PATH`,
/// `-config=PATH`) and the GNU spelling (`--config PATH`, `--config=PATH`) for every flag.
#include <optional>
#include <stdexcept>
#include <string>

#include "config.hpp"

namespace ts::server {

/// What the command line asks for. A plain value; `parse_command_line` fills it.
struct ServerOptions {
  std::string config_path = "config.json";  ///< the reference's default
  std::optional<unsigned> workers;          ///< overrides `workers` from the config
  bool show_help = false;
  bool show_version = false;
};

/// A command line that cannot be used; `what()` says which flag and why.
class CommandLineError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Parses argv (argv[0] is the program). Flags: --config PATH, --workers N, --help (-h),
/// --version, each also with one dash and with `=VALUE`. Throws CommandLineError for an unknown
/// flag, a missing or bad value, or a positional argument.
ServerOptions parse_command_line(int argc, char** argv);

/// The --help text.
std::string usage_text();

/// The --version text: "telemetry-server <version>".
std::string version_text();

/// Applies the command-line overrides to a loaded configuration.
void apply_command_line(const ServerOptions& options, Config& config);

}  // namespace ts::server

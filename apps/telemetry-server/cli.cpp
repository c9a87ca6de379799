#include "cli.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>

#ifndef TS_VERSION
#error "TS_VERSION must be defined by the build"
#endif

namespace ts::server {
namespace {

struct Flag {
  std::string_view name;   // without dashes
  std::string_view shown;  // as written, for messages
  std::optional<std::string_view> inline_value;
};

// "-config=x", "--config=x", "-config", "--config" -> name and inline value (Go flag syntax).
std::optional<Flag> split_flag(std::string_view arg) {
  if (arg.size() < 2 || arg[0] != '-') return std::nullopt;
  std::string_view body = arg.substr(arg[1] == '-' ? 2 : 1);
  if (body.empty() || body[0] == '-' || body[0] == '=') return std::nullopt;
  Flag flag;
  if (const auto equals = body.find('='); equals != std::string_view::npos) {
    flag.inline_value = body.substr(equals + 1);
    body = body.substr(0, equals);
  }
  flag.name = body;
  flag.shown = arg.substr(0, arg.size() - (flag.inline_value ? flag.inline_value->size() + 1 : 0));
  return flag;
}

unsigned parse_workers(std::string_view shown, std::string_view text) {
  const bool digits =
      !text.empty() && text.size() <= 5 &&
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  const unsigned value = digits ? static_cast<unsigned>(std::stoul(std::string(text))) : 0;
  if (!digits || value > kMaxWorkers) {
    throw CommandLineError(
        fmt::format("{}: must be an integer in 0..{} (got \"{}\")", shown, kMaxWorkers, text));
  }
  return value;
}

}  // namespace

ServerOptions parse_command_line(int argc, char** argv) {
  ServerOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--" || arg == "-") {
      if (arg == "--" && i + 1 == argc) break;
      throw CommandLineError(
          fmt::format("unexpected argument \"{}\": telemetry-server takes only flags (see --help)",
                      arg == "--" ? std::string_view(argv[i + 1]) : arg));
    }
    const auto flag = split_flag(arg);
    if (!flag) {
      throw CommandLineError(fmt::format(
          "unexpected argument \"{}\": telemetry-server takes only flags (see --help)", arg));
    }
    // The value of a flag that takes one: inline (`=x`) or the next argument.
    auto value = [&]() -> std::string_view {
      if (flag->inline_value) return *flag->inline_value;
      if (i + 1 >= argc) {
        throw CommandLineError(fmt::format("{}: missing value (see --help)", flag->shown));
      }
      return argv[++i];
    };
    auto no_value = [&] {
      if (flag->inline_value) {
        throw CommandLineError(fmt::format("{}: takes no value", flag->shown));
      }
    };
    if (flag->name == "config") {
      const std::string_view path = value();
      if (path.empty()) throw CommandLineError(fmt::format("{}: must not be empty", flag->shown));
      options.config_path = std::string(path);
    } else if (flag->name == "workers") {
      options.workers = parse_workers(flag->shown, value());
    } else if (flag->name == "help" || flag->name == "h") {
      no_value();
      options.show_help = true;
    } else if (flag->name == "version") {
      no_value();
      options.show_version = true;
    } else {
      throw CommandLineError(fmt::format("unknown flag \"{}\" (see --help)", flag->shown));
    }
  }
  return options;
}

std::string usage_text() {
  return fmt::format(
      "Usage: telemetry-server [--config PATH] [--workers N]\n"
      "\n"
      "The vehicle-facing Fleet Telemetry server of TeslaSync Telemetry; reads the JSON\n"
      "configuration of Tesla's reference server (see docs/config.md).\n"
      "\n"
      "Flags (one or two dashes; the value after a space or '='):\n"
      "  --config PATH   configuration file (default: config.json)\n"
      "  --workers N     event-loop threads, 0..{} (0 = one per hardware thread);\n"
      "                  overrides \"workers\" in the configuration\n"
      "  --help, -h      print this help and exit\n"
      "  --version       print the version and exit\n",
      kMaxWorkers);
}

std::string version_text() { return fmt::format("telemetry-server {}", TS_VERSION); }

void apply_command_line(const ServerOptions& options, Config& config) {
  if (options.workers) config.workers = *options.workers;
}

}  // namespace ts::server

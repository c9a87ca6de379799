#include "cli.hpp"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

namespace ts::server {
namespace {

// Owns argv storage for one call.
ServerOptions parse(std::initializer_list<std::string> args) {
  std::vector<std::string> storage{"telemetry-server"};
  storage.insert(storage.end(), args);
  std::vector<char*> argv;
  for (auto& arg : storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  return parse_command_line(static_cast<int>(storage.size()), argv.data());
}

std::string error_of(std::initializer_list<std::string> args) {
  try {
    parse(args);
  } catch (const CommandLineError& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(CommandLine, DefaultsToConfigJsonLikeTheReference) {
  const ServerOptions options = parse({});
  EXPECT_EQ(options.config_path, "config.json");
  EXPECT_FALSE(options.workers.has_value());
  EXPECT_FALSE(options.show_help);
  EXPECT_FALSE(options.show_version);
}

TEST(CommandLine, AcceptsGoAndGnuSpellingsOfConfig) {
  EXPECT_EQ(parse({"--config", "a.json"}).config_path, "a.json");
  EXPECT_EQ(parse({"--config=b.json"}).config_path, "b.json");
  EXPECT_EQ(parse({"-config", "c.json"}).config_path, "c.json");
  EXPECT_EQ(parse({"-config=d.json"}).config_path, "d.json");
  EXPECT_EQ(parse({"-config=/etc/x=y.json"}).config_path, "/etc/x=y.json");
}

TEST(CommandLine, LastConfigFlagWinsAsInGoFlag) {
  EXPECT_EQ(parse({"-config=a.json", "--config", "b.json"}).config_path, "b.json");
}

TEST(CommandLine, ParsesWorkers) {
  EXPECT_EQ(parse({"--workers", "2"}).workers, 2U);
  EXPECT_EQ(parse({"-workers=0"}).workers, 0U);
  EXPECT_EQ(parse({"--workers=1024"}).workers, 1024U);
}

TEST(CommandLine, RejectsBadWorkers) {
  EXPECT_EQ(error_of({"--workers", "two"}),
            "--workers: must be an integer in 0..1024 (got \"two\")");
  EXPECT_EQ(error_of({"--workers=1025"}),
            "--workers: must be an integer in 0..1024 (got \"1025\")");
  EXPECT_EQ(error_of({"-workers=-1"}), "-workers: must be an integer in 0..1024 (got \"-1\")");
  EXPECT_EQ(error_of({"--workers="}), "--workers: must be an integer in 0..1024 (got \"\")");
}

TEST(CommandLine, HelpAndVersion) {
  EXPECT_TRUE(parse({"--help"}).show_help);
  EXPECT_TRUE(parse({"-help"}).show_help);
  EXPECT_TRUE(parse({"-h"}).show_help);
  EXPECT_TRUE(parse({"--version"}).show_version);
  EXPECT_TRUE(parse({"-version"}).show_version);
  EXPECT_EQ(error_of({"--help=yes"}), "--help: takes no value");
  EXPECT_NE(usage_text().find("--config PATH"), std::string::npos);
  EXPECT_NE(usage_text().find("--workers N"), std::string::npos);
  EXPECT_EQ(version_text().rfind("telemetry-server ", 0), 0U) << version_text();
}

TEST(CommandLine, RejectsUnknownFlagsNamingThem) {
  EXPECT_EQ(error_of({"--conf", "x"}), "unknown flag \"--conf\" (see --help)");
  EXPECT_EQ(error_of({"-port=443"}), "unknown flag \"-port\" (see --help)");
  EXPECT_EQ(error_of({"---config=x"}),
            "unexpected argument \"---config=x\": telemetry-server takes only flags (see --help)");
}

TEST(CommandLine, RejectsMissingOrEmptyValues) {
  EXPECT_EQ(error_of({"--config"}), "--config: missing value (see --help)");
  EXPECT_EQ(error_of({"-workers"}), "-workers: missing value (see --help)");
  EXPECT_EQ(error_of({"--config="}), "--config: must not be empty");
}

TEST(CommandLine, RejectsPositionalArguments) {
  EXPECT_EQ(error_of({"config.json"}),
            "unexpected argument \"config.json\": telemetry-server takes only flags (see --help)");
  EXPECT_EQ(error_of({"--", "x"}),
            "unexpected argument \"x\": telemetry-server takes only flags (see --help)");
  EXPECT_EQ(parse({"--config", "a.json", "--"}).config_path, "a.json");
}

TEST(CommandLine, WorkersFlagOverridesConfig) {
  Config config;
  config.workers = 8;
  apply_command_line(parse({}), config);
  EXPECT_EQ(config.workers, 8U);
  apply_command_line(parse({"--workers", "2"}), config);
  EXPECT_EQ(config.workers, 2U);
}

}  // namespace
}  // namespace ts::server

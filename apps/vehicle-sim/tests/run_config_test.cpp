#include "sim/run_config.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace ts::vehicle_sim {
namespace {

TEST(ParseServer, HostAndPort) {
  EXPECT_EQ(parse_server("127.0.0.1:4443"),
            std::make_pair(std::string("127.0.0.1"), std::uint16_t{4443}));
  EXPECT_EQ(parse_server("localhost:1"),
            std::make_pair(std::string("localhost"), std::uint16_t{1}));
  EXPECT_EQ(parse_server("[::1]:65535"), std::make_pair(std::string("::1"), std::uint16_t{65535}));
}

TEST(ParseServer, RejectsMalformedAddresses) {
  for (const char* bad : {"localhost", "localhost:", ":4443", "h:0", "h:65536", "h:12x", "h:-1",
                          "::1:4443", "[::1]", "[::1]4443", "[::1]:", ""}) {
    EXPECT_THROW(parse_server(bad), std::invalid_argument) << bad;
  }
}

std::string validation_error(const RunConfig& cfg) {
  try {
    cfg.validate();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(RunConfig, DefaultsAreValid) { EXPECT_EQ(validation_error(RunConfig{}), ""); }

TEST(RunConfig, OutOfRangeValuesNameTheirOption) {
  RunConfig c;
  c.rate_hz = -1;
  EXPECT_EQ(validation_error(c).rfind("--rate", 0), 0u);
  c = RunConfig{};
  c.datums = 0;
  EXPECT_EQ(validation_error(c).rfind("--datums", 0), 0u);
  c.datums = field_catalogue().size() + 1;
  EXPECT_EQ(validation_error(c).rfind("--datums", 0), 0u);
  c = RunConfig{};
  c.threads = 0;
  EXPECT_EQ(validation_error(c).rfind("--threads", 0), 0u);
  c = RunConfig{};
  c.vehicles = 0;
  EXPECT_EQ(validation_error(c).rfind("--vehicles", 0), 0u);
  c = RunConfig{};
  c.duration_s = 0;
  EXPECT_EQ(validation_error(c).rfind("--duration", 0), 0u);
  c = RunConfig{};
  c.warmup_s = c.duration_s;
  EXPECT_EQ(validation_error(c).rfind("--warmup", 0), 0u);
  c = RunConfig{};
  c.warmup_s = -1;
  EXPECT_EQ(validation_error(c).rfind("--warmup", 0), 0u);
  c = RunConfig{};
  c.connect_rate = 0;
  EXPECT_EQ(validation_error(c).rfind("--connect-rate", 0), 0u);
}

TEST(RunConfig, ClosedLoopAndIdleAreValid) {
  RunConfig c;
  c.rate_hz = 0;
  EXPECT_EQ(validation_error(c), "");
  c.idle = true;
  EXPECT_EQ(validation_error(c), "");
}

TEST(RunConfig, TlsNameDefaultsToTheHost) {
  RunConfig c;
  c.host = "127.0.0.1";
  EXPECT_EQ(c.tls_name(), "127.0.0.1");
  c.server_name = "localhost";
  EXPECT_EQ(c.tls_name(), "localhost");
}

}  // namespace
}  // namespace ts::vehicle_sim

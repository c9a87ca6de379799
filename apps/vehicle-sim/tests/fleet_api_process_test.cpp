// `vehicle-sim fleet-api` as a process (build/bin/vehicle-sim): the DESIGN.md contract
// `--listen HOST:PORT`, the start-up switches, and a clean exit on SIGTERM.
#include <gtest/gtest.h>

#include <csignal>

#include "fleet_api/client.hpp"
#include "support/ports.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/wait_for.hpp"

namespace {

namespace fa = ts::fleet_api;
using namespace ts::testsupport;
using std::chrono::seconds;

TEST(FleetApiProcess, ListensAndAppliesStartUpSwitches) {
  TempDir dir("ts-fleet-api");
  const std::uint16_t port = free_port();
  const std::string a = "5YJ3E1EA1TF100000", b = "5YJ3E1EA3TF100001";
  Process sim = Process::start({.argv = {std::string(TS_BIN_DIR) + "/vehicle-sim",
                                         "fleet-api",
                                         "--listen",
                                         "127.0.0.1:" + std::to_string(port),
                                         "--vin",
                                         a,
                                         "--vin",
                                         b,
                                         "--asleep",
                                         b,
                                         "--mode",
                                         a + "=charging",
                                         "--telemetry-error",
                                         a + "=InvalidSignature: unknown issuer",
                                         "--error-vins-shape",
                                         "vins",
                                         "--client-id",
                                         "cid",
                                         "--client-secret",
                                         "sec",
                                         "--refresh-token",
                                         "rt0",
                                         "--rate-limit",
                                         "1",
                                         "--retry-after",
                                         "7",
                                         "--time-scale",
                                         "0"},
                                .output_dir = dir.path()});
  ASSERT_TRUE(wait_for([&] { return tcp_connectable(port) || !sim.running(); }, seconds(20),
                       "vehicle-sim fleet-api accepts connections"));
  ASSERT_TRUE(sim.running()) << sim.stderr_text();
  EXPECT_NE(sim.stdout_text().find("listening on http://127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << sim.stdout_text();

  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  fa::Client client({.base_url = url,
                     .auth_url = url,
                     .client_id = "cid",
                     .client_secret = "sec",
                     .user_refresh_token = "rt0",
                     .request_timeout = seconds(10)});
  // --rate-limit 1 hits the very first request: the token request.
  auto limited = client.partner_token();
  ASSERT_FALSE(limited);
  EXPECT_TRUE(limited.error().is(fa::errc::rate_limited)) << limited.error().describe();
  EXPECT_EQ(limited.error().retry_after, seconds(7));

  auto vins = client.partner_telemetry_error_vins();
  ASSERT_TRUE(vins) << vins.error().describe();
  EXPECT_EQ(*vins, std::vector<std::string>{a});
  auto errors = client.vehicle_telemetry_errors(a);
  ASSERT_TRUE(errors);
  ASSERT_EQ(errors->size(), 1u);
  EXPECT_EQ((*errors)[0].error, "InvalidSignature: unknown issuer");

  EXPECT_TRUE(client.vehicle_data(b).error().is(fa::errc::vehicle_unavailable));
  auto data = client.vehicle_data(a);
  ASSERT_TRUE(data) << data.error().describe();
  bool charging = false;
  for (const auto& f : data->fields) {
    if (f.name == "ChargeState") charging = f.value.text == "ChargeStateStarting";
  }
  EXPECT_TRUE(charging);

  sim.send_signal(SIGTERM);
  auto status = sim.wait(std::chrono::milliseconds(10'000));
  ASSERT_TRUE(status) << "did not exit on SIGTERM";
  EXPECT_EQ(*status, 0) << sim.stderr_text();
}

TEST(FleetApiProcess, BadSwitchesExitWith2) {
  TempDir dir("ts-fleet-api");
  Process sim =
      Process::start({.argv = {std::string(TS_BIN_DIR) + "/vehicle-sim", "fleet-api", "--listen",
                               "127.0.0.1:0", "--vin", "A1", "--asleep", "B2"},
                      .output_dir = dir.path()});
  auto status = sim.wait(std::chrono::milliseconds(10'000));
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 2);
  EXPECT_NE(sim.stderr_text().find("--asleep: B2 is not one of the vehicles"), std::string::npos)
      << sim.stderr_text();
}

}  // namespace

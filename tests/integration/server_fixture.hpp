#pragma once
// A telemetry-server process with development certificates and (optionally) a Mosquitto broker,
// for integration tests. Everything on 127.0.0.1, ephemeral ports, bounded waits.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "support/mosquitto_broker.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/vehicle_client.hpp"

namespace ts::integration {

inline constexpr const char* kVin = "5YJ3E1EA7JF000000";

struct ServerSetup {
  bool start_broker = true;
  /// Extra top-level JSON members (without braces), e.g. R"("reliable_ack_sources": {"V": "mqtt"})".
  std::string extra_config;
  std::string mqtt_extra;  ///< extra members of the "mqtt" object
  int workers = 2;
};

class ServerUnderTest {
 public:
  explicit ServerUnderTest(ServerSetup setup = {});
  ~ServerUnderTest();

  testsupport::MosquittoBroker& broker() { return *broker_; }
  std::uint16_t broker_port() const { return broker_port_; }
  std::uint16_t port() const { return port_; }
  std::string metrics();  ///< GET /metrics
  testsupport::VehicleClientOptions vehicle(const std::string& txid = "") const;
  const testsupport::TempDir& dir() const { return dir_; }
  testsupport::Process& process() { return *process_; }
  /// The value of one metric line ("name{labels}"), 0 when absent.
  double metric(const std::string& series);

 private:
  ServerSetup setup_;
  testsupport::TempDir dir_{"ts-server-it"};
  std::unique_ptr<testsupport::MosquittoBroker> broker_;
  std::uint16_t broker_port_ = 0, port_ = 0, metrics_port_ = 0;
  std::unique_ptr<testsupport::Process> process_;
};

/// A V frame with `datums` string datums, built like a vehicle (wire::build_stream_frame).
std::vector<std::uint8_t> v_frame(const std::string& txid, int datums = 1);

/// Runs telemetry-server with this config text; returns (exit code, stderr) once it exits
/// (bounded).
std::pair<int, std::string> run_with_config(const std::string& config_json);

}  // namespace ts::integration

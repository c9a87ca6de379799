// vehicle-sim: simulated vehicles and load generator. Composition root only; each subcommand
// lives in its own file.
#include <exception>
#include <iostream>

#include "commands.hpp"

namespace ts::vehicle_sim {
int& exit_code() {
  static int code = 0;
  return code;
}
}  // namespace ts::vehicle_sim

int main(int argc, char** argv) {
  CLI::App app{"vehicle-sim - simulated Tesla vehicles for TeslaSync Telemetry"};
  app.require_subcommand(1);
  ts::vehicle_sim::register_run(app);
  ts::vehicle_sim::register_fleet_api(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "vehicle-sim: " << e.what() << "\n";
    return 2;
  }
  return ts::vehicle_sim::exit_code();
}

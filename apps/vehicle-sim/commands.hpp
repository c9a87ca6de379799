#pragma once
/// vehicle-sim subcommands. Each registers itself on the CLI11 app and sets its own callback; the
/// callback reports its result through `vehicle_sim::exit_code()`.
#include <CLI/CLI.hpp>

namespace ts::vehicle_sim {

void register_run(CLI::App& app);  // run_command.cpp: drive N vehicles, print one JSON line
void register_fleet_api(CLI::App& app);  // fleet_api_command.cpp: the Fleet API stand-in

/// The process exit code a subcommand's callback chose (0 unless set).
int& exit_code();

}  // namespace ts::vehicle_sim

#pragma once
/// tsctl subcommands. Each registers itself on the CLI11 app and sets its own callback; the
/// callback returns through `tsctl::exit_code()`.
#include <CLI/CLI.hpp>

namespace tsctl {

void register_decode(CLI::App& app);        // decode.cpp: frame -> MQTT / ack / JSON (DESIGN.md)
void register_dev_ca(CLI::App& app);        // dev_ca.cpp: development CA and certificates
void register_check_server(CLI::App& app);  // check_server.cpp: server-certificate check
void register_keygen(CLI::App& app);        // keygen.cpp: the Fleet API key pair (EC P-256)

/// The process exit code a subcommand's callback chose (0 unless set).
int& exit_code();

}  // namespace tsctl

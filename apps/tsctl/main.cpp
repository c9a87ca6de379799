// tsctl: the operator tool. Composition root only; each subcommand lives in its own file.
#include <exception>
#include <iostream>

#include "commands.hpp"

namespace tsctl {
int& exit_code() {
  static int code = 0;
  return code;
}
}  // namespace tsctl

int main(int argc, char** argv) {
  CLI::App app{"tsctl - TeslaSync Telemetry operator tool"};
  app.require_subcommand(1);
  tsctl::register_decode(app);
  tsctl::register_dev_ca(app);
  tsctl::register_check_server(app);
  tsctl::register_keygen(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "tsctl: " << e.what() << "\n";
    return 2;
  }
  return tsctl::exit_code();
}

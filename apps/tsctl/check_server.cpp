#include "commands.hpp"

namespace tsctl {
void register_check_server(CLI::App& app) { (void)app; }
}  // namespace tsctl

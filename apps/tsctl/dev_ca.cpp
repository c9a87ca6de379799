#include "commands.hpp"

namespace tsctl {
void register_dev_ca(CLI::App& app) { (void)app; }
}  // namespace tsctl

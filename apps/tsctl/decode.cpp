#include "commands.hpp"

namespace tsctl {
void register_decode(CLI::App& app) { (void)app; }
}  // namespace tsctl

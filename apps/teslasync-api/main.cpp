// teslasync-api: composition root. Everything it wires lives in src/; see docs/teslasync-api.md.
#include <cstdio>
#include <cstring>
#include <string>

#include "config.hpp"

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--print-env-markdown") == 0) {
      std::fputs(ts::api::environment_markdown().c_str(), stdout);
      return 0;
    }
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::printf("usage: teslasync-api [--help] [--version]\n\nConfigured by environment variables:\n%s",
                  ts::api::environment_help().c_str());
      return 0;
    }
  }
  std::fprintf(stderr, "teslasync-api: not wired yet\n");
  return 1;
}

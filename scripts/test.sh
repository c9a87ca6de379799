#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test (unit, conformance, integration with real
# Mosquitto, fuzz-seed replays), then a short fuzzing run when clang is installed.
# Environment: TS_FUZZ_SECONDS (default 60; 0 skips fuzzing), TS_ASAN=1 also runs the ASan+UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
start=$(date +%s)
cmake --preset default
cmake --build --preset default
ctest --preset default

if [[ "${TS_ASAN:-0}" == "1" ]]; then
  cmake --preset asan
  cmake --build --preset asan
  ctest --preset asan
fi

if [[ "${TS_FUZZ_SECONDS:-60}" != "0" && -x scripts/fuzz.sh ]]; then
  scripts/fuzz.sh "${TS_FUZZ_SECONDS:-60}"
fi
echo "test.sh: done in $(( $(date +%s) - start )) s"

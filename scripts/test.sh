#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test (unit, conformance, integration with real
# Mosquitto, Redis and PostgreSQL, fuzz-seed replays) on the AddressSanitizer + UndefinedBehavior-
# Sanitizer build, so that a memory error or undefined behaviour in any parser fails the run; then
# builds the release binaries and benchmarks (what scripts/demo.sh runs and the benchmarks
# measure), and fuzzes for a short while when clang is installed.
# Environment: TS_FUZZ_SECONDS (default 60; 0 skips fuzzing), TS_RELEASE_TESTS=1 also runs the whole
# suite on the release build (the `default` preset).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
start=$(date +%s)
phase() { echo "test.sh: $1 after $(( $(date +%s) - start )) s"; }

# Child processes (our servers started by the tests) report to stderr and exit; the tests fail
# on any report (tests/support/process.cpp). detect_leaks stays on: a leak is a failure too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cmake --preset asan
cmake --build --preset asan
phase "sanitizer build done"
ctest --preset asan
phase "tests under ASan+UBSan done"

cmake --preset default
if [[ "${TS_RELEASE_TESTS:-0}" == "1" ]]; then
  cmake --build --preset default
  ctest --preset default
else
  cmake --build --preset default --target telemetry-server teslasync-api tsctl vehicle-sim benchmarks
fi
phase "release build done"

if [[ "${TS_FUZZ_SECONDS:-60}" != "0" && -x scripts/fuzz.sh ]]; then
  scripts/fuzz.sh "${TS_FUZZ_SECONDS:-60}"
fi
echo "test.sh: done in $(( $(date +%s) - start )) s"

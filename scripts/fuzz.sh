#!/usr/bin/env bash
# Fuzzes the libFuzzer targets of tests/fuzz/ for a bounded time (shared/STYLE.md "Tests": Fuzz).
#
#   scripts/fuzz.sh [SECONDS]      default 60; each fuzzer runs for SECONDS/3, one after the other
#
# Builds the `fuzz` preset (clang) into build-fuzz/, runs each fuzzer on a fresh corpus in
# build-fuzz/corpus/<name> seeded from tests/fuzz/seeds/<seeds>, and exits non-zero if one
# crashes (crash, sanitizer report, broken invariant, timeout, OOM), printing where the input is.
# Without clang++ it says so and exits 0. Logs: build-fuzz/fuzz-<name>.log.
set -euo pipefail

seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 3)); then
  echo "usage: $0 [SECONDS]   (total fuzzing time, at least 3; default 60)" >&2
  exit 2
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz.sh: SKIPPED: clang++ not found; libFuzzer needs clang (apt-get install clang" \
       "libclang-rt-dev). The seeds still run as CTest tests: ctest -L fuzz"
  exit 0
fi

# The preset instruments the libraries as well (coverage + ASan/UBSan), not only the targets.
cmake --preset fuzz
cmake --build --preset fuzz --target frame_fuzz payload_fuzz mqtt_codec_fuzz

per_fuzzer=$((seconds / 3))
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
failed=0

# fuzz NAME SEEDS [libFuzzer flags...]
fuzz() {
  local name=$1 seeds=$2
  shift 2
  local corpus=build-fuzz/corpus/$name
  local artifacts=build-fuzz/artifacts/$name
  local log=build-fuzz/fuzz-$name.log
  rm -rf "$corpus" "$artifacts"
  mkdir -p "$corpus" "$artifacts"
  # A copy: libFuzzer rewrites its first corpus directory (-reduce_inputs), the seeds stay as they are.
  cp tests/fuzz/seeds/"$seeds"/* "$corpus"/
  echo "== $name: ${per_fuzzer}s, corpus $corpus ($(ls "$corpus" | wc -l) seeds)"
  local rc=0
  build-fuzz/fuzz/"$name" -max_total_time="$per_fuzzer" -timeout=30 -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "$@" "$corpus" >"$log" 2>&1 || rc=$?
  grep -E '^#[0-9]+[[:space:]].* cov: ' "$log" | tail -1 || true
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
      "$log" || true
  if ((rc != 0)); then
    failed=1
    echo "!! $name FAILED (exit $rc). The end of $log:"
    tail -n 40 "$log"
    local input
    for input in "$artifacts"/*; do
      [[ -e $input ]] || continue
      echo "!! input: $input"
      echo "   reproduce: build-fuzz/fuzz/$name $input"
      echo "   minimise:  build-fuzz/fuzz/$name -minimize_crash=1 -runs=100000 $input"
    done
  fi
}

# Our frame size limit is 1,000,000 bytes (spec §4 step 2): let frames grow past it.
fuzz frame_fuzz frame -max_len=1100000
fuzz payload_fuzz payload
fuzz mqtt_codec_fuzz mqtt

if ((failed)); then
  echo "fuzz.sh: FAILED: a fuzzer found a crashing input (see above)"
  exit 1
fi
echo "fuzz.sh: OK: no crash in ${seconds}s"

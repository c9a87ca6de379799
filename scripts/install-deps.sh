#!/usr/bin/env bash
# Installs every build, test and run-time dependency from Debian bookworm packages.
# Idempotent: a second run installs nothing new. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git python3 clang lld libclang-rt-14-dev
  # libraries (see docs/dependencies.md for why each one)
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev openssl
  libprotobuf-dev protobuf-compiler
  libflatbuffers-dev flatbuffers-compiler
  libmosquitto-dev librdkafka-dev libhiredis-dev libpq-dev libsqlite3-dev
  libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # real components used by the main job and the tests
  mosquitto mosquitto-clients redis-server postgresql
)

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${#missing[@]} package(s): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps: all packages present"
fi

# The packaged mosquitto service is not used: tests and the demo start their own broker on
# loopback. Stop the distribution's instance so it does not hold port 1883.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
  $SUDO systemctl stop mosquitto || true
fi
# Likewise Redis and PostgreSQL: tests start their own servers (redis-server, initdb/pg_ctl) in temp
# dirs on ephemeral ports; the distribution's instances are not used.
for svc in redis-server postgresql; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $SUDO systemctl stop "$svc" || true
  fi
done

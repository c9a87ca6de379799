#!/usr/bin/env bash
# Load scenarios for telemetry-server with vehicle-sim (issue 2 "Benchmarks"): everything on
# 127.0.0.1, MQTT QoS 0 to a local Mosquitto, V records of 20 datums.
#
#   bench/load/run.sh SCENARIO [VEHICLES] [RATE] [DURATION]
#     rate      VEHICLES vehicles at RATE Hz (default 1000 x 1 Hz, 30 s): records/s, server CPU,
#               RSS per connection, ack p50/p99 (latencies of the first WARMUP seconds, default
#               10, are not counted: that is the connect ramp and its TLS handshakes)
#     closed    VEHICLES vehicles in closed loop (ack-paced, default 200, 20 s): records per server
#               CPU-second
#     idle      VEHICLES idle connections (default 10000, 30 s): server RSS per connection
#
# Prints one JSON line with the sim's report plus the server's numbers. Needs build/bin/*.
# Environment: WORKERS (server shards, default 2), SIM_THREADS (default 1), CERTS (a dev-ca dir
# with enough vehicles; made under build/bench-load/ when absent), LOG_LEVEL (telemetry-server's,
# default warn; its log is build/bench-load/server.log).
set -euo pipefail
cd "$(dirname "$0")/../.."
SCENARIO=${1:?usage: bench/load/run.sh rate|closed|idle [VEHICLES] [RATE] [DURATION]}
case "$SCENARIO" in
  rate)   VEHICLES=${2:-1000}; RATE=${3:-1}; DURATION=${4:-30}
          SIM_MODE=(--rate "$RATE" --warmup "${WARMUP:-10}") ;;
  closed) VEHICLES=${2:-200};  RATE=0;       DURATION=${4:-20}; SIM_MODE=(--rate 0) ;;
  idle)   VEHICLES=${2:-10000}; RATE=0;      DURATION=${4:-30}; SIM_MODE=(--idle) ;;
  *) echo "unknown scenario $SCENARIO" >&2; exit 2 ;;
esac
WORKERS=${WORKERS:-2}
SIM_THREADS=${SIM_THREADS:-1}
WORK=build/bench-load
CERTS=${CERTS:-$WORK/certs}
BIN=build/bin
mkdir -p "$WORK"
source bench/load/common.sh
ensure_certs "$VEHICLES"
MQTT_PORT=$(free_port); PORT=$(free_port); METRICS_PORT=$(free_port)
start_broker "$MQTT_PORT" "max_queued_messages 100000"
start_server "$PORT" "$MQTT_PORT" '"client_id": "bench", "qos": 0' \
  "\"monitoring\": {\"prometheus_metrics_port\": $METRICS_PORT},"
metric() { curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | awk -v n="$1" '$1==n {print $2}'; }
for _ in $(seq 1 100); do [[ -n "$(metric uptime_sec 2>/dev/null)" ]] && break; sleep 0.1; done

rss0=$(metric process_resident_memory_bytes); cpu0=$(metric process_cpu_seconds_total)
"$BIN/vehicle-sim" run --server "127.0.0.1:$PORT" --certs "$CERTS" --vehicles "$VEHICLES" \
  "${SIM_MODE[@]}" --duration "$DURATION" --threads "$SIM_THREADS" --connect-rate 2000 \
  --progress 0 >"$WORK/sim.json" 2>"$WORK/sim.log" &
sim=$!
# Sample the server while the vehicles are connected (the sim closes them at the end).
sleep $(( DURATION - 2 ))
rss1=$(metric process_resident_memory_bytes); conns=$(metric num_connections)
cpu1=$(metric process_cpu_seconds_total)
wait $sim
python3 - "$WORK/sim.json" <<PY
import json, sys
sim = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
rss0, rss1, cpu0, cpu1, conns = $rss0, $rss1, $cpu0, $cpu1, ${conns:-0}
busy = max(cpu1 - cpu0, 1e-9)
window = $DURATION - 2
out = {"scenario": "$SCENARIO", "vehicles": $VEHICLES, "rate_hz": $RATE, "workers": $WORKERS,
       **{k: sim[k] for k in ("sent", "acked", "errors", "ack_p50_ms", "ack_p99_ms", "records_per_s")},
       "server_connections": conns,
       "server_cpu_percent": round(100 * busy / window, 1),
       "records_per_server_cpu_second": round(sim["acked"] * (window / sim["duration_s"]) / busy) if sim["acked"] else 0,
       "server_rss_mb": round(rss1 / 2**20, 1),
       "rss_per_connection_kib": round((rss1 - rss0) / max(conns, 1) / 1024, 1)}
print(json.dumps(out))
PY

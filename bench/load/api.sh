#!/usr/bin/env bash
# Vehicle frame -> SSE event latency through the whole pipeline (issue 3 "Benchmarks"):
# vehicle-sim (VEHICLES x RATE Hz, 20 datums a record) -> telemetry-server (MQTT QoS 1, event-time
# envelope) -> Mosquitto -> teslasync-api (SQLite) -> one SSE client on /api/v1/events timing
# every signal_change against the vehicle's send time. Everything on 127.0.0.1.
#
#   bench/load/api.sh [VEHICLES] [RATE] [DURATION] [WARMUP]     (default 1000 1 60 10)
#
# Prints one JSON line: the SSE client's latency percentiles, the sim's report, and the API's
# CPU and RSS. Needs build/bin/* and build/bench/api_sse_latency.
# Environment: RECORD_MESSAGE=true publishes each record as one MQTT message (mqtt.record_message)
# instead of one per datum; WORKERS (server shards, default 2).
set -euo pipefail
cd "$(dirname "$0")/../.."
VEHICLES=${1:-1000}; RATE=${2:-1}; DURATION=${3:-60}; WARMUP=${4:-10}
WORKERS=${WORKERS:-2}
RECORD_MESSAGE=${RECORD_MESSAGE:-false}
WORK=build/bench-api
CERTS=${CERTS:-build/bench-load/certs}
BIN=build/bin
TOKEN=tsk_bench-sse-token-0123456789abcdef
mkdir -p "$WORK"
rm -rf "$WORK/data"
source bench/load/common.sh
ensure_certs "$VEHICLES"
VINS=$(ls "$CERTS"/vehicle-*.pem | sed 's|.*/vehicle-||; s|\.pem$||' | sort | sed -n "1,${VEHICLES}p" | paste -sd, -)

MQTT_PORT=$(free_port); PORT=$(free_port); API_PORT=$(free_port)
start_broker "$MQTT_PORT" "max_inflight_messages 0" "max_queued_messages 1000000"
start_server "$PORT" "$MQTT_PORT" \
  "\"client_id\": \"bench-sse\", \"qos\": 1, \"event_time_envelope\": true, \"record_message\": $RECORD_MESSAGE"
TESLASYNC_HTTP_ADDR=127.0.0.1:$API_PORT TESLASYNC_DATA_DIR=$WORK/data TESLASYNC_API_TOKEN=$TOKEN \
  TESLASYNC_VEHICLES=$VINS TESLASYNC_LOG_LEVEL=warn FLEET_TELEMETRY_MQTT_BROKER=127.0.0.1:$MQTT_PORT \
  FLEET_TELEMETRY_MQTT_CLIENT_ID=bench-sse-api "$BIN/teslasync-api" 2>"$WORK/api.log" & pids+=($!)
api_metric() {
  curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$API_PORT/metrics" | awk -v n="$1" '$1==n {print $2}'
}
for _ in $(seq 1 200); do
  [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$API_PORT/readyz")" == 200 ]] && break
  sleep 0.1
done

build/bench/api_sse_latency --port "$API_PORT" --token "$TOKEN" --seconds "$DURATION" \
  --warmup "$WARMUP" >"$WORK/sse.json" 2>"$WORK/sse.log" &
sse=$!
"$BIN/vehicle-sim" run --server "127.0.0.1:$PORT" --certs "$CERTS" --vehicles "$VEHICLES" \
  --rate "$RATE" --duration "$((DURATION + 3))" --connect-rate 2000 --progress 0 \
  >"$WORK/sim.json" 2>"$WORK/sim.log" &
sim=$!
sleep "$WARMUP"
cpu0=$(api_metric process_cpu_seconds_total)
sleep $(( DURATION - WARMUP - 1 ))
cpu1=$(api_metric process_cpu_seconds_total); rss=$(api_metric process_resident_memory_bytes)
wait $sse || true
wait $sim || true
python3 - "$WORK/sse.json" "$WORK/sim.json" <<PY
import json, sys
sse = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
sim = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
window = $DURATION - $WARMUP - 1
out = {"scenario": "frame_to_sse", "vehicles": $VEHICLES, "rate_hz": $RATE,
       "record_message": "$RECORD_MESSAGE" == "true",
       **{"sse_" + k: sse[k] for k in ("events", "events_per_s", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "stream_closed")},
       **{k: sse[k] for k in ("to_api_p50_ms", "to_api_p99_ms", "in_api_p50_ms", "in_api_p99_ms")},
       **{"sim_" + k: sim[k] for k in ("sent", "acked", "ack_p99_ms")},
       "api_cpu_percent": round(100 * ($cpu1 - $cpu0) / window, 1),
       "api_rss_mb": round($rss / 2**20, 1)}
print(json.dumps(out))
PY

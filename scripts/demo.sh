#!/usr/bin/env bash
# The main job: installs what is needed, builds, and runs the pipeline as far as it is built —
# Mosquitto, telemetry-server, teslasync-api (SQLite, no Redis), the Fleet API stand-in and
# simulated vehicles — on 127.0.0.1 with development certificates.
# Watch the data with:  mosquitto_sub -t 'telemetry/#' -v
#   or the API:         curl -H "Authorization: Bearer $(cat run/demo/data/admin-token)" \
#                            http://127.0.0.1:8080/api/v1/events
#
# Environment: VEHICLES (default 5), RATE (records/s per vehicle, default 1), DURATION (seconds,
# default 3600), MQTT_PORT (default 1883), VEHICLE_PORT (default 4443), METRICS_PORT (default 9090),
# API_PORT (default 8080), FLEET_API_PORT (default 8443).
set -euo pipefail
cd "$(dirname "$0")/.."

VEHICLES=${VEHICLES:-5}
RATE=${RATE:-1}
DURATION=${DURATION:-3600}
MQTT_PORT=${MQTT_PORT:-1883}
VEHICLE_PORT=${VEHICLE_PORT:-4443}
METRICS_PORT=${METRICS_PORT:-9090}
API_PORT=${API_PORT:-8080}
FLEET_API_PORT=${FLEET_API_PORT:-8443}
RUN_DIR=${RUN_DIR:-run/demo}

scripts/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default --target telemetry-server tsctl vehicle-sim teslasync-api

mkdir -p "$RUN_DIR"
BIN=build/bin
if [[ ! -f "$RUN_DIR/certs/ca.pem" ]] || (( $(ls "$RUN_DIR"/certs/vehicle-*.pem 2>/dev/null | wc -l) < VEHICLES )); then
  "$BIN/tsctl" dev-ca --out "$RUN_DIR/certs" --count "$VEHICLES" >/dev/null
fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$MQTT_PORT" "$VEHICLE_PORT" "$METRICS_PORT" "$API_PORT" "$FLEET_API_PORT"; do
  if port_in_use "$p"; then
    echo "demo: port $p on 127.0.0.1 is already in use (stop what runs there, or set MQTT_PORT/VEHICLE_PORT/METRICS_PORT/API_PORT/FLEET_API_PORT)" >&2
    exit 1
  fi
done

cat > "$RUN_DIR/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
# Acks to vehicles wait for the broker: do not let Nagle delay its replies.
set_tcp_nodelay true
# teslasync-api acknowledges a message only once it is durable (src/mqtt/README.md): let enough
# messages be in flight to it, and queue plenty while it is away.
max_inflight_messages 0
max_queued_messages 1000000
CONF

cat > "$RUN_DIR/config.json" <<CONF
{
  "host": "127.0.0.1",
  "port": $VEHICLE_PORT,
  "log_level": "info",
  "namespace": "tesla_telemetry",
  "records": {"V": ["mqtt"], "alerts": ["mqtt"], "errors": ["mqtt"], "connectivity": ["mqtt"]},
  "mqtt": {"broker": "127.0.0.1:$MQTT_PORT", "client_id": "telemetry-server-demo", "topic_base": "telemetry", "qos": 1, "event_time_envelope": true},
  "monitoring": {"prometheus_metrics_port": $METRICS_PORT},
  "tls": {"server_cert": "$RUN_DIR/certs/server.pem", "server_key": "$RUN_DIR/certs/server.key", "ca_file": "$RUN_DIR/certs/ca.pem"}
}
CONF

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "demo: stopping"
  # Newest first, each to the end, so that the API acknowledges what it holds before the broker
  # goes away.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap cleanup INT TERM EXIT

mosquitto -c "$RUN_DIR/mosquitto.conf" >"$RUN_DIR/mosquitto.log" 2>&1 &
pids+=($!)
"$BIN/telemetry-server" --config "$RUN_DIR/config.json" 2> >(tee "$RUN_DIR/telemetry-server.log" >&2) &
pids+=($!)
# Ready when its plain-HTTP metrics port answers (a bare connect to the TLS port would be logged
# as a failed handshake).
for _ in $(seq 1 100); do port_in_use "$METRICS_PORT" && break; sleep 0.1; done
port_in_use "$METRICS_PORT" || { echo "demo: telemetry-server did not start; see $RUN_DIR/telemetry-server.log" >&2; exit 1; }

# The Fleet API stand-in (polling fallback, diagnostics) over the same simulated cars.
"$BIN/vehicle-sim" fleet-api --listen "127.0.0.1:$FLEET_API_PORT" --certs "$RUN_DIR/certs" \
  >"$RUN_DIR/fleet-api.log" 2>&1 &
pids+=($!)

# The Tesla public key the API serves at /.well-known/… (made once).
if [[ ! -f "$RUN_DIR/keys/com.tesla.3p.public-key.pem" ]]; then
  "$BIN/tsctl" keygen --out "$RUN_DIR/keys" >/dev/null
fi

VINS=$(ls "$RUN_DIR"/certs/vehicle-*.pem | sed -E 's|.*/vehicle-(.*)\.pem|\1|' | head -n "$VEHICLES" | paste -sd, -)
TESLASYNC_HTTP_ADDR="127.0.0.1:$API_PORT" TESLASYNC_DATA_DIR="$RUN_DIR/data" TESLASYNC_VEHICLES="$VINS" \
FLEET_TELEMETRY_MQTT_BROKER="127.0.0.1:$MQTT_PORT" \
TESLA_PUBLIC_KEY_FILE="$RUN_DIR/keys/com.tesla.3p.public-key.pem" \
TESLA_FLEET_API_BASE_URL="http://127.0.0.1:$FLEET_API_PORT" TESLA_AUTH_BASE_URL="http://127.0.0.1:$FLEET_API_PORT" \
TESLA_CLIENT_ID=demo TESLA_CLIENT_SECRET=demo TESLA_REFRESH_TOKEN=vehicle-sim-refresh-token \
  "$BIN/teslasync-api" 2> >(tee "$RUN_DIR/teslasync-api.log" >&2) &
pids+=($!)
for _ in $(seq 1 100); do port_in_use "$API_PORT" && break; sleep 0.1; done
port_in_use "$API_PORT" || { echo "demo: teslasync-api did not start; see $RUN_DIR/teslasync-api.log" >&2; exit 1; }

cat <<MSG

  TeslaSync Telemetry demo is running
    Mosquitto         127.0.0.1:$MQTT_PORT
    telemetry-server  wss://localhost:$VEHICLE_PORT  (metrics: http://127.0.0.1:$METRICS_PORT/metrics)
    teslasync-api     http://127.0.0.1:$API_PORT  (token: $RUN_DIR/data/admin-token)
    Fleet API stand-in http://127.0.0.1:$FLEET_API_PORT
    vehicle-sim       $VEHICLES vehicles x $RATE Hz for $DURATION s

  Watch the signals:   mosquitto_sub -p $MQTT_PORT -t 'telemetry/#' -v
  Live over SSE:       curl -N -H "Authorization: Bearer \$(cat $RUN_DIR/data/admin-token)" http://127.0.0.1:$API_PORT/api/v1/events
  Pipeline health:     curl -H "Authorization: Bearer \$(cat $RUN_DIR/data/admin-token)" http://127.0.0.1:$API_PORT/api/v1/system/telemetry-pipeline
  Stop:                Ctrl-C

MSG
"$BIN/vehicle-sim" run --server "127.0.0.1:$VEHICLE_PORT" --certs "$RUN_DIR/certs" \
  --vehicles "$VEHICLES" --rate "$RATE" --duration "$DURATION" &
pids+=($!)
wait "${pids[-1]}"

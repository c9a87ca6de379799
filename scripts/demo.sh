#!/usr/bin/env bash
# The main job: installs what is needed, builds, and runs the pipeline as far as it is built —
# Mosquitto, telemetry-server and simulated vehicles — on 127.0.0.1 with development certificates.
# Watch the data with:  mosquitto_sub -t 'telemetry/#' -v
#
# Environment: VEHICLES (default 5), RATE (records/s per vehicle, default 1), DURATION (seconds,
# default 3600), MQTT_PORT (default 1883), VEHICLE_PORT (default 4443), METRICS_PORT (default 9090).
set -euo pipefail
cd "$(dirname "$0")/.."

VEHICLES=${VEHICLES:-5}
RATE=${RATE:-1}
DURATION=${DURATION:-3600}
MQTT_PORT=${MQTT_PORT:-1883}
VEHICLE_PORT=${VEHICLE_PORT:-4443}
METRICS_PORT=${METRICS_PORT:-9090}
RUN_DIR=${RUN_DIR:-run/demo}

scripts/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default --target telemetry-server tsctl vehicle-sim

mkdir -p "$RUN_DIR"
BIN=build/bin
if [[ ! -f "$RUN_DIR/certs/ca.pem" ]] || (( $(ls "$RUN_DIR"/certs/vehicle-*.pem 2>/dev/null | wc -l) < VEHICLES )); then
  "$BIN/tsctl" dev-ca --out "$RUN_DIR/certs" --count "$VEHICLES" >/dev/null
fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$MQTT_PORT" "$VEHICLE_PORT" "$METRICS_PORT"; do
  if port_in_use "$p"; then
    echo "demo: port $p on 127.0.0.1 is already in use (stop what runs there, or set MQTT_PORT/VEHICLE_PORT/METRICS_PORT)" >&2
    exit 1
  fi
done

cat > "$RUN_DIR/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
# Acks to vehicles wait for the broker: do not let Nagle delay its replies.
set_tcp_nodelay true
CONF

cat > "$RUN_DIR/config.json" <<CONF
{
  "host": "127.0.0.1",
  "port": $VEHICLE_PORT,
  "log_level": "info",
  "namespace": "tesla_telemetry",
  "records": {"V": ["mqtt"], "alerts": ["mqtt"], "errors": ["mqtt"], "connectivity": ["mqtt"]},
  "mqtt": {"broker": "127.0.0.1:$MQTT_PORT", "client_id": "telemetry-server-demo", "topic_base": "telemetry", "qos": 0},
  "monitoring": {"prometheus_metrics_port": $METRICS_PORT},
  "tls": {"server_cert": "$RUN_DIR/certs/server.pem", "server_key": "$RUN_DIR/certs/server.key", "ca_file": "$RUN_DIR/certs/ca.pem"}
}
CONF

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "demo: stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
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

cat <<MSG

  TeslaSync Telemetry demo is running
    Mosquitto         127.0.0.1:$MQTT_PORT
    telemetry-server  wss://localhost:$VEHICLE_PORT  (metrics: http://127.0.0.1:$METRICS_PORT/metrics)
    vehicle-sim       $VEHICLES vehicles x $RATE Hz for $DURATION s

  Watch the signals:   mosquitto_sub -p $MQTT_PORT -t 'telemetry/#' -v
  Stop:                Ctrl-C

MSG
"$BIN/vehicle-sim" run --server "127.0.0.1:$VEHICLE_PORT" --certs "$RUN_DIR/certs" \
  --vehicles "$VEHICLES" --rate "$RATE" --duration "$DURATION" &
pids+=($!)
wait "${pids[-1]}"

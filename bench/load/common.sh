# Shared by the load scenarios (run.sh, api.sh); sourced once WORK, CERTS, BIN and WORKERS are
# set. Processes started here are stopped when the script exits.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# ensure_certs N: a dev-ca directory in $CERTS with at least N vehicle certificates.
ensure_certs() {
  local have
  have=$(ls "$CERTS"/vehicle-*.pem 2>/dev/null | wc -l || true)
  if (( have < $1 )); then "$BIN/tsctl" dev-ca --out "$CERTS" --count "$1" >/dev/null; fi
}

# start_broker PORT [LINE...]: Mosquitto on 127.0.0.1:PORT, with extra mosquitto.conf lines.
start_broker() {
  local port=$1; shift
  {
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n' "$port"
    printf '%s\n' "$@"
  } >"$WORK/mosquitto.conf"
  mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 & pids+=($!)
}

# start_server PORT MQTT_PORT MQTT_FIELDS [TOP_LEVEL_FIELDS]: telemetry-server on 127.0.0.1:PORT
# publishing to the broker; MQTT_FIELDS are more members of "mqtt" (`"qos": 1, ...`),
# TOP_LEVEL_FIELDS more members of the config (`"monitoring": {...},`).
start_server() {
  cat >"$WORK/config.json" <<CONF
{"host": "127.0.0.1", "port": $1, "log_level": "${LOG_LEVEL:-warn}", ${4:-}
 "records": {"V": ["mqtt"], "alerts": ["mqtt"], "errors": ["mqtt"], "connectivity": ["mqtt"]},
 "mqtt": {"broker": "127.0.0.1:$2", "topic_base": "telemetry", $3},
 "tls": {"server_cert": "$CERTS/server.pem", "server_key": "$CERTS/server.key", "ca_file": "$CERTS/ca.pem"}}
CONF
  "$BIN/telemetry-server" --config "$WORK/config.json" --workers "$WORKERS" 2>"$WORK/server.log" & pids+=($!)
}

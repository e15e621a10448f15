# Sourced by the benchmark scripts: start and stop the release binary.
#   start_engram DATA_DIR LOG   serves DATA_DIR with the local model on a free
#                               loopback port; sets $pid and $port; returns once
#                               /readyz answers (fails after 60 s).
#   stop_engram                 stops it and waits until it has saved and exited.

pid=""

start_engram() {
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  ENGRAM_SERVER_ACCESS_LOG=false ENGRAM_LOG=warn ENGRAM_EMBEDDER_MODEL_DIR="$PWD/models/all-MiniLM-L6-v2" \
    ./target/release/engram serve --listen "127.0.0.1:$port" --data-dir "$1" 2>>"$2" &
  pid=$!
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "engram did not become ready in 60 s; see $2" >&2
  return 1
}

stop_engram() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

#!/usr/bin/env bash
# A throwaway MongoDB-wire server for the tests (issue 14): SecantusDB (PyPI
# `SecantusDB`, GPL-2.0, WiredTiger), run as a separate process from its own
# venv — never vendored or linked. It is a single node that presents itself
# as the replica set `secantus` (change streams and transactions need that),
# on 127.0.0.1 and a free port, committing to disk on every commit
# (--sync-on-commit) so the crash tests can SIGKILL it. It is not mongod:
# docs/mongodb.md lists what differs.
# Usage: scripts/mongo.sh start   a fresh server unless one runs; prints the URL
#        scripts/mongo.sh stop    stops it (no error when it is not running)
#        scripts/mongo.sh url     the URL of the running server
#        scripts/mongo.sh kill    SIGKILLs it, keeping its data and port
#        scripts/mongo.sh resume  starts a killed server again on the same port and data
# The URL (mongodb://127.0.0.1:PORT/?directConnection=true&retryWrites=false: the server keeps a
# record of every retryable write for 30 minutes and each one grows slower) is also in $MONGO_DIR/url.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
MONGO_DIR=${MONGO_DIR:-/tmp/engram-mongo-$(echo "$root" | sha256sum | cut -c1-12)}
venv=$root/.venv-mongo

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

running() {
  [ -f "$MONGO_DIR/pid" ] && kill -0 "$(cat "$MONGO_DIR/pid")" 2>/dev/null
}

# Starts the server on port $1 and waits until it answers a ping (60 s at most).
run_server() {
  local port=$1
  setsid "$venv/bin/secantusd-py" --host 127.0.0.1 --port "$port" --storage-path "$MONGO_DIR/data" \
    --sync-on-commit --log-level WARNING >>"$MONGO_DIR/server.log" 2>&1 </dev/null &
  echo $! >"$MONGO_DIR/pid"
  local url="mongodb://127.0.0.1:$port/?directConnection=true&retryWrites=false"
  for _ in $(seq 1 120); do
    if "$venv/bin/python" - "$url" <<'PY' 2>/dev/null; then
import sys, pymongo
pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=500).admin.command("ping")
PY
      return 0
    fi
    if ! running; then
      echo "the MongoDB-wire test server exited at start; its log:" >&2
      tail -20 "$MONGO_DIR/server.log" >&2
      exit 1
    fi
    sleep 0.5
  done
  echo "the MongoDB-wire test server did not answer within 60 s; its log ($MONGO_DIR/server.log):" >&2
  tail -20 "$MONGO_DIR/server.log" >&2
  exit 1
}

start() {
  ./scripts/venv.sh tests/mongo/requirements.txt "$venv"
  mkdir -p "$MONGO_DIR"
  if running; then
    cat "$MONGO_DIR/url"
    return
  fi
  # Not running: start from empty storage (the tests' databases are throwaway).
  rm -rf "$MONGO_DIR/data" && mkdir -p "$MONGO_DIR/data"
  local port
  port=$(free_port)
  echo "$port" >"$MONGO_DIR/port"
  run_server "$port"
  local url="mongodb://127.0.0.1:$port/?directConnection=true&retryWrites=false"
  echo "$url" >"$MONGO_DIR/url"
  echo "$url"
}

stop() {
  running || return 0
  local pid
  pid=$(cat "$MONGO_DIR/pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$MONGO_DIR/pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) cat "$MONGO_DIR/url" ;;
  kill) running && kill -9 "$(cat "$MONGO_DIR/pid")"; rm -f "$MONGO_DIR/pid" ;;
  resume) run_server "$(cat "$MONGO_DIR/port")" ;;
  *) echo "usage: $0 start|stop|url|kill|resume" >&2; exit 2 ;;
esac

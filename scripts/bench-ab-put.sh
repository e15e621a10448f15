#!/usr/bin/env bash
# A/B of durable LangGraph put_item (index=false, new keys) on two engram
# binaries, interleaved rounds: each round starts each binary on a fresh
# SQLite data directory without an embedder and runs wrk for 5 s at 1 and at
# 32 connections. Prints "round binary conns req/s p50 p99".
#   scripts/bench-ab-put.sh path/to/engram-before path/to/engram-after [rounds]
# (build "before" from an older commit with e.g. `git worktree add`.)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 BEFORE_BIN AFTER_BIN [ROUNDS]" >&2; exit 2; }
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
export BENCH_DIR=$PWD/scripts/bench
for round in $(seq "${3:-3}"); do
  for bin in "$1" "$2"; do
    data=$(mktemp -d); port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    ENGRAM_EMBEDDER_PROVIDER=none ENGRAM_SERVER_ACCESS_LOG=false ENGRAM_LOG=warn "$bin" serve --listen 127.0.0.1:$port --data-dir "$data" 2>/dev/null &
    pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
    for c in 1 32; do
      out=$(wrk -t1 -c$c -d5s --latency -s scripts/bench/put_item.lua "http://127.0.0.1:$port" 2>&1)
      echo "$round $bin $c $(echo "$out" | awk '/Requests\/sec/ {print $2}') $(echo "$out" | awk '$1=="50%" {print $2}') $(echo "$out" | awk '$1=="99%" {print $2}')"
    done
    kill $pid; wait $pid 2>/dev/null || true; rm -rf "$data"
  done
done

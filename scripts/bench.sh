#!/usr/bin/env bash
# HTTP benchmarks for engram with redis-benchmark as a same-machine peer.
#   get-by-id, LangGraph get_item, durable put_item (index=false) at 1, 8, 32
#   connections (wrk), then redis GET/SET at the same connection counts, and
#   batched writes (100 memories per POST) at 8 connections.
# Output: a Markdown table on stdout and in .bench/http.md.
# Knobs: DURATION (s per run, default 5), ROUNDS (default 3), SEED (memories
# and items to seed, default 20000), CONNS (default "1 8 32").
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench/locomo.sh
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
SEED=${SEED:-20000}
CONNS=${CONNS:-"1 8 32"}
out=.bench; mkdir -p "$out"
export BENCH_DIR=$PWD/scripts/bench

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -q -p engram-server
./target/release/engram model fetch >/dev/null

data=$(mktemp -d); port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ENGRAM_SERVER_ACCESS_LOG=false ENGRAM_LOG=warn ./target/release/engram serve --listen 127.0.0.1:$port --data-dir "$data" 2>"$out/engram.log" &
pid=$!
redis_port=$((port + 1))
redis-server --port $redis_port --save '' --appendonly no --daemonize no >/dev/null 2>&1 &
rpid=$!
trap 'kill $pid $rpid 2>/dev/null || true; wait $pid $rpid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

echo "seeding $SEED memories and $SEED items" >&2
python3 - "$port" "$SEED" "$out/ids.txt" <<'PY'
import json, sys, urllib.request
port, n, ids_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
base = f"http://127.0.0.1:{port}"
def post(path, body, method="POST"):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")
ids = []
for start in range(0, n, 1000):
    batch = [{"namespace": ["bench", "mem", f"g{i % 100}"], "text": f"benchmark memory {i} about topic {i % 37}",
              "metadata": {"i": i}} for i in range(start, min(n, start + 1000))]
    ids += [r["memory"]["id"] for r in post("/v1/memories", {"memories": batch})["results"]]
open(ids_file, "w").write("\n".join(ids) + "\n")
for i in range(n):
    post("/store/items", {"namespace": ["bench", "items", f"g{i % 100}"], "key": f"k{i}",
                          "value": {"i": i, "note": "seeded item"}, "index": False}, method="PUT")
PY

raw="$out/http.tsv"; : > "$raw"
run_wrk() { # name script conns
  local line
  line=$(IDS_FILE="$out/ids.txt" ITEMS=$SEED wrk -t $(( $3 < 2 ? 1 : 2 )) -c "$3" -d "${DURATION}s" -s "$2" "http://127.0.0.1:$port" | grep '^RESULT')
  eval "${line#RESULT }"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$3" "$rps" "$p50_ms" "$p99_ms" "$errors" | tee -a "$raw" >&2
}
run_redis() { # conns
  local n=$(( $1 == 1 ? 50000 : 200000 ))
  redis-benchmark -p $redis_port -t get,set -n $n -c "$1" --csv 2>/dev/null | tail -n +2 | tr -d '"' |
  while IFS=, read -r test rps avg min p50 p95 p99 max; do
    printf 'redis %s\t%s\t%s\t%s\t%s\t0\n' "$test" "$1" "${rps%.*}" "$p50" "$p99" | tee -a "$raw" >&2
  done
}
# Rounds interleave engram and redis so both see the same machine load; the
# table reports the median of the rounds.
for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  for c in $CONNS; do
    run_wrk "engram get by id" scripts/bench/get_by_id.lua "$c"
    run_wrk "engram LangGraph get_item" scripts/bench/get_item.lua "$c"
    run_wrk "engram durable put_item (index=false)" scripts/bench/put_item.lua "$c"
    run_redis "$c"
  done
  run_wrk "engram POST /v1/memories, 100 per request" scripts/bench/post_batch.lua 8
done
python3 - "$raw" "$out/http.md" <<'PY'
import statistics, sys
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    name, conns, rps, p50, p99, err = line.rstrip("\n").split("\t")
    rows[(name, int(conns))].append((float(rps), float(p50), float(p99), int(err)))
med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v),
           statistics.median(r[2] for r in v), sum(r[3] for r in v), len(v)) for k, v in rows.items()}
peer = lambda name: "redis GET" if "get" in name else "redis SET"
out = ["| workload | conns | req/s (median) | p50 ms | p99 ms | errors | vs redis (same conns) |",
       "|---|---:|---:|---:|---:|---:|---:|"]
for (name, c), (rps, p50, p99, err, n) in sorted(med.items(), key=lambda kv: (kv[0][0].startswith("redis"), kv[0][0], kv[0][1])):
    if "100 per request" in name:
        ratio = f"= {rps * 100:.0f} memories/s"
    else:
        ratio = "" if name.startswith("redis") else f"{rps / med[(peer(name), c)][0]:.2f}x {peer(name)}"
    out.append(f"| {name} | {c} | {rps:.0f} | {p50:.3f} | {p99:.3f} | {err} | {ratio} |")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
echo "medians of $ROUNDS rounds of ${DURATION}s; engram: $(./target/release/engram --version); wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); $(redis-server --version | cut -d' ' -f1-3); $(nproc) cores; $(date -u +%F)" | tee -a "$out/http.md"

# Raw throughput of the local embedding model (the ceiling for batched ingest).
kill $pid $rpid 2>/dev/null || true
cargo run --release -q -p engram-embed --example throughput -- models/all-MiniLM-L6-v2 \
  "$LOCOMO" 1024 | tee "$out/model.md"

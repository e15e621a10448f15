#!/usr/bin/env bash
# HTTP benchmarks for engram with redis-benchmark as a same-machine peer, in
# two situations, each named in the table:
#   idle     the seeded memories are all embedded (the script waits for the
#            queue to drain) and nothing else runs: get-by-id, LangGraph
#            get_item, durable put_item (index=false) at 1, 8, 32 connections
#            (wrk), redis GET/SET at the same counts; and GET /healthz at 32
#            connections, a route that does no work (the HTTP stack's ceiling);
#   backlog  the local model is embedding a backlog (BACKLOG memories of
#            ~25 words posted just before): get-by-id and get_item at 32
#            connections beside redis GET, and how fast the queue embedded
#            while serving (from engram_embedded_texts_total); then batched
#            writes (100 keyword-indexed memories per POST) at 8 connections,
#            last because their memories join the queue too.
# Output: a Markdown table on stdout and in .bench/http.md, and the plot
# docs/bench/throughput-vs-connections.png (scripts/bench/plots.py).
# Knobs: DURATION (s per run, default 5), ROUNDS (default 3), SEED (memories
# and items to seed, default 20000), CONNS (default "1 8 32"), BACKLOG
# (default 40000).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
SEED=${SEED:-20000}
CONNS=${CONNS:-"1 8 32"}
BACKLOG=${BACKLOG:-40000}
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
sys.path.insert(0, "scripts/bench")
from http_texts import sentence
ids = []
for start in range(0, n, 1000):
    # Distinct texts: near-duplicates would be merged once embedded, and a
    # merged memory's id is gone.
    batch = [{"namespace": ["bench", "mem", f"g{i % 100}"], "text": sentence(i, 12),
              "metadata": {"i": i}} for i in range(start, min(n, start + 1000))]
    ids += [r["memory"]["id"] for r in post("/v1/memories", {"memories": batch})["results"]]
open(ids_file, "w").write("\n".join(ids) + "\n")
for i in range(n):
    post("/store/items", {"namespace": ["bench", "items", f"g{i % 100}"], "key": f"k{i}",
                          "value": {"i": i, "note": "seeded item"}, "index": False}, method="PUT")
PY
embedded() { curl -sf "http://127.0.0.1:$port/metrics" | awk '/^engram_embedded_texts_total/ {print $2}'; }
started=$(date +%s.%N)
e=0; while [ "${e%.*}" -lt "$SEED" ]; do sleep 0.5; e=$(embedded); done
idle_rate=$(python3 -c "print(f'{$SEED / ($(date +%s.%N) - $started):.0f}')")
echo "the queue embedded the $SEED seeded memories; idle from here" >&2

raw="$out/http.tsv"; : > "$raw"
situation=idle
run_wrk() { # name script conns
  local line
  line=$(IDS_FILE="$out/ids.txt" ITEMS=$SEED wrk -t $(( $3 < 2 ? 1 : 2 )) -c "$3" -d "${DURATION}s" -s "$2" "http://127.0.0.1:$port" | grep '^RESULT')
  eval "${line#RESULT }"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$situation" "$1" "$3" "$rps" "$p50_ms" "$p99_ms" "$errors" | tee -a "$raw" >&2
}
run_redis() { # conns
  local n=$(( $1 == 1 ? 50000 : 200000 ))
  redis-benchmark -p $redis_port -t "${2:-get,set}" -n $n -c "$1" --csv 2>/dev/null | tail -n +2 | tr -d '"' |
  while IFS=, read -r test rps avg min p50 p95 p99 max; do
    printf '%s\tredis %s\t%s\t%s\t%s\t%s\t0\n' "$situation" "$test" "$1" "${rps%.*}" "$p50" "$p99" | tee -a "$raw" >&2
  done
}
# Rounds interleave engram and redis so both see the same machine load; the
# table reports the median of the rounds.
for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  # The ceiling of any route on this machine: a request that does no work.
  run_wrk "engram GET /healthz (no work)" scripts/bench/healthz.lua 32
  for c in $CONNS; do
    run_wrk "engram get by id" scripts/bench/get_by_id.lua "$c"
    run_wrk "engram LangGraph get_item" scripts/bench/get_item.lua "$c"
    run_wrk "engram durable put_item (index=false)" scripts/bench/put_item.lua "$c"
    run_redis "$c"
  done
done

# The same reads while the local model embeds a backlog.
echo "posting a backlog of $BACKLOG memories to embed" >&2
python3 - "$port" "$BACKLOG" <<'PY'
import json, sys, urllib.request
port, n = int(sys.argv[1]), int(sys.argv[2])
sys.path.insert(0, "scripts/bench")
from http_texts import sentence
for start in range(0, n, 1000):
    batch = [{"namespace": ["bench", "backlog", f"g{i % 100}"],
              "text": sentence(1_000_000 + i, 25)}
             for i in range(start, min(n, start + 1000))]
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/memories", data=json.dumps({"memories": batch}).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
PY
situation=backlog
before=$(embedded); t0=$(date +%s.%N)
for round in $(seq "$ROUNDS"); do
  echo "backlog round $round of $ROUNDS" >&2
  run_wrk "engram get by id" scripts/bench/get_by_id.lua 32
  run_wrk "engram LangGraph get_item" scripts/bench/get_item.lua 32
  run_redis 32 get
done
after=$(embedded); t1=$(date +%s.%N)
# Batched writes last: each request's 100 memories join the queue, so
# nothing after them would be idle.
for round in $(seq "$ROUNDS"); do
  run_wrk "engram POST /v1/memories, 100 per request" scripts/bench/post_batch.lua 8
done
backlog_line=$(python3 -c "
done = $after - $before; secs = $t1 - $t0; left = $BACKLOG - ($after - $SEED)
print(f'While serving the backlog rounds the queue embedded {done:.0f} memories in {secs:.0f} s = {done / secs:.0f}/s '
      f'({left:.0f} of {$BACKLOG} still queued at the end, so the backlog lasted through every run); '
      f'idle, it embedded the {$SEED} short seeded memories at {$idle_rate}/s.')")

python3 - "$raw" "$out/http.md" "$backlog_line" <<'PY'
import statistics, sys
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    situation, name, conns, rps, p50, p99, err = line.rstrip("\n").split("\t")
    rows[(situation, name, int(conns))].append((float(rps), float(p50), float(p99), int(err)))
med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v),
           statistics.median(r[2] for r in v), sum(r[3] for r in v), len(v)) for k, v in rows.items()}
peer = lambda name: "redis GET" if "get" in name else "redis SET"
out = ["| situation | workload | conns | req/s (median) | p50 ms | p99 ms | errors | vs redis (same situation, same conns) |",
       "|---|---|---:|---:|---:|---:|---:|---:|"]
order = lambda kv: (kv[0][0] != "idle", kv[0][1].startswith("redis"), kv[0][1], kv[0][2])
for (sit, name, c), (rps, p50, p99, err, n) in sorted(med.items(), key=order):
    if "100 per request" in name:
        ratio = f"= {rps * 100:.0f} memories/s"
    elif name.startswith("redis"):
        ratio = ""
    elif "healthz" in name:
        ratio = f"{rps / med[(sit, 'redis GET', c)][0]:.2f}x redis GET (the ceiling of any route)"
    else:
        ratio = f"{rps / med[(sit, peer(name), c)][0]:.2f}x {peer(name)}"
        if sit == "backlog":
            ratio += f" ({rps / med[('idle', peer(name), c)][0]:.2f}x idle {peer(name)})"
    out.append(f"| {sit} | {name} | {c} | {rps:.0f} | {p50:.3f} | {p99:.3f} | {err} | {ratio} |")
out += ["", sys.argv[3]]
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
echo "medians of $ROUNDS rounds of ${DURATION}s (backlog: ${BACKLOG} memories of ~25 words posted before its rounds); engram: $(./target/release/engram --version); wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); $(redis-server --version | cut -d' ' -f1-3); $(nproc) cores; $(date -u +%F)" | tee -a "$out/http.md"
# The plot of throughput against connections (docs/bench/throughput-vs-connections.png).
./scripts/venv.sh scripts/bench/requirements.txt .venv-bench
.venv-bench/bin/python scripts/bench/plots.py --http "$raw" --out docs/bench

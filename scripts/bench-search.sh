#!/usr/bin/env bash
# Search over 100 000 memories (DESIGN §8, issue 3): Engram in-process and over
# HTTP beside ChromaDB on the same vectors, in one script on one machine.
#   1. a synthetic dataset (scripts/bench/gen_vectors.py: clustered 384-dim
#      unit vectors + short texts, 1000 queries with texts, exact top-10);
#   2. engram in-process (examples/search_bench.rs: MemoryService on SQLite,
#      the local model loaded, query embeddings supplied);
#   3. what HTTP adds: the release binary serving step 2's store, the same
#      searches posted by wrk on one connection (scripts/bench/search_bodies.*);
#   4. engram over HTTP (scripts/bench/engram_search.py against the release binary),
#      then again after a restart on the same data (the RSS at rest);
#   5. ChromaDB PersistentClient with the same HNSW settings (scripts/bench/chroma_search.py).
# Output: JSON per system and a Markdown table in .bench/search.md.
# Knobs: N (default 100000), QUERIES (default 1000), DIST (clustered|uniform).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
QUERIES=${QUERIES:-1000}
DIST=${DIST:-clustered}
out=.bench; mkdir -p "$out"
./scripts/venv.sh scripts/bench/requirements.txt .venv-bench
py=.venv-bench/bin/python
data="$out/vectors-$DIST-$N"
[ -f "$data/meta.json" ] || $py scripts/bench/gen_vectors.py --n "$N" --queries "$QUERIES" --dims 384 --seed 7 \
  --distribution "$DIST" --out "$data" >&2
cargo build --release -q -p engram-server --bin engram --example search_bench
./target/release/engram model fetch >/dev/null

. scripts/bench/serve.sh
kept=$(mktemp -d); dir=$(mktemp -d); : > "$out/engram-search.log"
trap 'stop_engram; rm -rf "$dir" "$kept"' EXIT

echo "engram in-process" >&2
SEARCH_BENCH_DB=$kept ./target/release/examples/search_bench "$data" models/all-MiniLM-L6-v2 \
  "$out/search-engram-inprocess.json" >/dev/null

# What HTTP adds: the same searches (same store, queries and settings) over
# HTTP, timed by wrk on one connection.
echo "engram over HTTP on the in-process run's store" >&2
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
start_engram "$kept" "$out/engram-search.log"
: > "$out/search-http-overhead.txt"
for mode in hybrid vector keyword; do
  (cd scripts/bench && ../../$py search_bodies.py --data "../../$data" --mode $mode) > "$out/search-bodies-$mode.jsonl"
  # 3 s first, untimed: the new process's page caches and the keyword index's load.
  for secs in 3 10; do
    line=$(BODIES="$out/search-bodies-$mode.jsonl" BENCH_DIR=$PWD/scripts/bench wrk -t 1 -c 1 -d ${secs}s \
      -s scripts/bench/search_bodies.lua "http://127.0.0.1:$port" | grep '^RESULT')
  done
  echo "$mode ${line#RESULT }" >> "$out/search-http-overhead.txt"
done
stop_engram

echo "engram over HTTP" >&2
start_engram "$dir" "$out/engram-search.log"
$py scripts/bench/engram_search.py --url "http://127.0.0.1:$port" --pid $pid --data "$data" \
  --out "$out/search-engram-http.json" >/dev/null
stop_engram
echo "engram over HTTP, restarted on the same data" >&2
start_engram "$dir" "$out/engram-search.log"
$py scripts/bench/engram_search.py --url "http://127.0.0.1:$port" --pid $pid --data "$data" --restarted \
  --out "$out/search-engram-http-restarted.json" >/dev/null
stop_engram

echo "chromadb" >&2
$py scripts/bench/chroma_search.py --data "$data" --out "$out/search-chroma.json" >/dev/null

$py - "$out" "$data" <<'PY' | tee "$out/search.md"
import json, sys
out, data = sys.argv[1], sys.argv[2]
e = json.load(open(f"{out}/search-engram-inprocess.json"))
h = json.load(open(f"{out}/search-engram-http.json"))
r = json.load(open(f"{out}/search-engram-http-restarted.json"))
c = json.load(open(f"{out}/search-chroma.json"))
meta = json.load(open(f"{data}/meta.json"))
print(f"Dataset: {meta['n']} × {meta['dims']}-dim unit vectors ({meta['distribution']}), {meta['queries']} queries, k = 10.\n")
print("| system | search | p50 ms | p99 ms | recall@10 | ingest memories/s | RSS MB |")
print("|---|---|---:|---:|---:|---:|---:|")
for mode in ("hybrid", "vector", "keyword"):
    s = e["search"][mode]
    print(f"| engram in-process | {mode} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} | "
          f"{format(e['recall_at_10'], '.4f') if mode == 'vector' else ''} | {e['ingest']['memories_per_s']:.0f} | "
          f"{e['rss_mb']['after_queries']:.0f} |")
for mode in ("hybrid", "vector", "keyword"):
    s = h["search"][mode]
    print(f"| engram HTTP | {mode} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} | "
          f"{format(h['recall_at_10'], '.4f') if mode == 'vector' else ''} | {h['ingest']['memories_per_s']:.0f} | "
          f"{h['server_rss_mb']['after_queries']['VmRSS']:.0f} |")
for mode in ("hybrid", "vector", "keyword"):
    s = r["search"][mode]
    print(f"| engram HTTP, restarted | {mode} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} | "
          f"{format(r['recall_at_10'], '.4f') if mode == 'vector' else ''} | | {r['server_rss_mb']['after_queries']['VmRSS']:.0f} |")
print(f"| chromadb {c['version']} in-process | vector | {c['search']['p50_ms']:.3f} | {c['search']['p99_ms']:.3f} | "
      f"{c['recall_at_10']:.4f} | {c['ingest']['vectors_per_s']:.0f} | {c['rss']['after_queries']['current_mb']:.0f} |")
wrk = {}
for line in open(f"{out}/search-http-overhead.txt"):
    mode, *fields = line.split()
    wrk[mode] = {k: float(v) for k, v in (f.split("=") for f in fields)}
print("\nWhat HTTP adds (the release binary serving the in-process run's store, the same searches "
      "posted by wrk on one connection, 10 s per mode after 3 s untimed):\n")
print("| search | in-process p50 ms | HTTP p50 ms (wrk) | HTTP adds at p50 ms | in-process p99 ms | HTTP p99 ms |")
print("|---|---:|---:|---:|---:|---:|")
for mode in ("hybrid", "vector", "keyword"):
    s, w = e["search"][mode], wrk[mode]
    print(f"| {mode} | {s['p50_ms']:.3f} | {w['p50_ms']:.3f} | {w['p50_ms'] - s['p50_ms']:.3f} | "
          f"{s['p99_ms']:.3f} | {w['p99_ms']:.3f} |")
chroma_p50 = c['search']['p50_ms']
print(f"\nVector search p50, chroma in-process / engram in-process: {chroma_p50 / e['search']['vector']['p50_ms']:.1f}x; "
      f"engram over HTTP / chroma in-process: {h['search']['vector']['p50_ms'] / chroma_p50:.2f}x. "
      f"Ingest, engram HTTP / chroma: {h['ingest']['memories_per_s'] / c['ingest']['vectors_per_s']:.2f}x.")
PY

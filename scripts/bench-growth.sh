#!/usr/bin/env bash
# Search latency as the corpus grows (issue 13, item 3): for each size in
# SIZES, Engram in-process (examples/search_bench.rs: MemoryService on SQLite,
# query embeddings supplied) beside ChromaDB (PersistentClient, same vectors,
# same HNSW settings), on the synthetic dataset of bench-search.sh.
# Output: .bench/growth.json, a Markdown table in .bench/growth.md, and the
# plot docs/bench/latency-vs-corpus.png (scripts/bench/plots.py).
# Knobs: SIZES (default "10000 100000"; add 1000000 where memory and time
# allow: ~4.5 GB and ~35 min for engram here, as long again for chroma),
# CHROMA_SIZES (the sizes chroma runs at, default SIZES), QUERIES (default
# 1000), DIST (clustered|uniform).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-10000 100000}
CHROMA_SIZES=${CHROMA_SIZES:-$SIZES}
QUERIES=${QUERIES:-1000}
DIST=${DIST:-clustered}
out=.bench; mkdir -p "$out/growth"
./scripts/venv.sh scripts/bench/requirements.txt .venv-bench
py=.venv-bench/bin/python
cargo build --release -q -p engram-server --bin engram --example search_bench
./target/release/engram model fetch >/dev/null
for n in $SIZES; do
  # Clusters of 50 vectors at every size (2 000 at 100 000, as bench-search.sh):
  # with a fixed count, small corpora would be near-uniform noise.
  clusters=$((n / 50))
  data="$out/vectors-$DIST-$n-c$clusters"
  [ -f "$data/meta.json" ] || $py scripts/bench/gen_vectors.py --n "$n" --queries "$QUERIES" --dims 384 --seed 7 \
    --distribution "$DIST" --clusters "$clusters" --out "$data" >&2
  echo "engram in-process, $n memories" >&2
  ./target/release/examples/search_bench "$data" models/all-MiniLM-L6-v2 "$out/growth/engram-$n.json" >/dev/null
  case " $CHROMA_SIZES " in
    *" $n "*)
      echo "chromadb, $n memories" >&2
      $py scripts/bench/chroma_search.py --data "$data" --out "$out/growth/chroma-$n.json" >/dev/null ;;
    *) rm -f "$out/growth/chroma-$n.json" ;;
  esac
done
$py - "$out" $SIZES <<'PY' | tee "$out/growth.md"
import json, sys
out, sizes = sys.argv[1], [int(s) for s in sys.argv[2:]]
rows = []
print("| memories | system | search | p50 ms | p99 ms | recall@10 | ingest memories/s | RSS MB |")
print("|---:|---|---|---:|---:|---:|---:|---:|")
for n in sizes:
    e = json.load(open(f"{out}/growth/engram-{n}.json"))
    try:
        c = json.load(open(f"{out}/growth/chroma-{n}.json"))
    except FileNotFoundError:  # not run at this size (CHROMA_SIZES)
        c = None
    for mode in ("hybrid", "vector", "keyword"):
        s = e["search"][mode]
        rows.append({"n": n, "system": "engram", "mode": mode, "p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"]})
        print(f"| {n} | engram in-process | {mode} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} | "
              f"{format(e['recall_at_10'], '.4f') if mode == 'vector' else ''} | {e['ingest']['memories_per_s']:.0f} | "
              f"{e['rss_mb']['after_queries']:.0f} |")
    if c is None:
        print(f"| {n} | chromadb | vector | not run | | | | |")
        continue
    rows.append({"n": n, "system": "chroma", "mode": "vector", "p50_ms": c["search"]["p50_ms"], "p99_ms": c["search"]["p99_ms"]})
    print(f"| {n} | chromadb {c['version']} in-process | vector | {c['search']['p50_ms']:.3f} | {c['search']['p99_ms']:.3f} | "
          f"{c['recall_at_10']:.4f} | {c['ingest']['vectors_per_s']:.0f} | {c['rss']['after_queries']['current_mb']:.0f} |")
json.dump(rows, open(f"{out}/growth.json", "w"), indent=1)
PY
$py scripts/bench/plots.py --growth "$out/growth.json" --out docs/bench

#!/usr/bin/env bash
# Retrieval quality on LoCoMo raw turns (issue 3): evidence recall@1/5/10 per
# question category for Engram's keyword, vector and hybrid search, beside mem0
# (infer=False, same model's vectors, local vector store), plus the ingest rate
# of Engram's embedding queue against the raw model on the same texts.
#   1. the raw model: every needed text (turns + questions) embedded in sorted
#      batches of 32 by examples/embed_jsonl.rs — its vectors also feed mem0;
#   2. engram (release binary, local model) over HTTP: scripts/bench/engram_locomo.py,
#      on SQLite and then on PostgreSQL (a throwaway server, scripts/postgres.sh);
#   3. mem0: scripts/bench/mem0_locomo.py.
# Output: JSON per system and a Markdown summary in .bench/quality.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench/locomo.sh
out=.bench; mkdir -p "$out"
./scripts/venv.sh scripts/bench/requirements.txt .venv-bench
py=.venv-bench/bin/python
cargo build --release -q -p engram-server --bin engram
./target/release/engram model fetch >/dev/null
cargo build --release -q -p engram-embed --example embed_jsonl

echo "raw model on the LoCoMo texts" >&2
(cd scripts/bench && ../../$py mem0_locomo.py --locomo "$LOCOMO" --dump-texts "../../$out/locomo-texts.jsonl")
# The raw ceiling on exactly the texts engram ingests (the turns), then every
# text mem0 needs (turns and questions).
$py -c "import json,sys; sys.path.insert(0,'scripts/bench'); import locomo_data as l; d=json.load(open('$LOCOMO'))
for c in d:
    for _,_,t in l.turns_of(c['conversation']): print(json.dumps(l.memory_text(t)))" > "$out/locomo-turns.jsonl"
./target/release/examples/embed_jsonl models/all-MiniLM-L6-v2 < "$out/locomo-turns.jsonl" 2> "$out/raw-model.json" >/dev/null
./target/release/examples/embed_jsonl models/all-MiniLM-L6-v2 < "$out/locomo-texts.jsonl" > "$out/locomo-vectors.jsonl" 2>/dev/null

echo "engram" >&2
. scripts/bench/serve.sh
dir=$(mktemp -d); : > "$out/engram-quality.log"
trap 'stop_engram; rm -rf "$dir"' EXIT
start_engram "$dir" "$out/engram-quality.log"
(cd scripts/bench && ../../$py engram_locomo.py --url "http://127.0.0.1:$port" --locomo "$LOCOMO" \
  --out "../../$out/quality-engram.json" >/dev/null)
stop_engram

echo "engram on PostgreSQL" >&2
./scripts/postgres.sh start >/dev/null
trap 'stop_engram; rm -rf "$dir"; ./scripts/postgres.sh stop' EXIT
ENGRAM_STORE_URL=$(./scripts/postgres.sh createdb bench_quality) start_engram "$dir" "$out/engram-quality.log"
(cd scripts/bench && ../../$py engram_locomo.py --url "http://127.0.0.1:$port" --locomo "$LOCOMO" \
  --out "../../$out/quality-engram-pg.json" >/dev/null)
stop_engram

echo "mem0" >&2
(cd scripts/bench && ../../$py mem0_locomo.py --locomo "$LOCOMO" --vectors "../../$out/locomo-vectors.jsonl" \
  --out "../../$out/quality-mem0.json" >/dev/null)

$py - "$out" <<'PY' | tee "$out/quality.md"
import json, sys
out = sys.argv[1]
raw = json.loads(open(f"{out}/raw-model.json").read().strip().splitlines()[-1])
e = json.load(open(f"{out}/quality-engram.json"))
pg = json.load(open(f"{out}/quality-engram-pg.json"))
m = json.load(open(f"{out}/quality-mem0.json"))
cats = ["1", "2", "3", "4", "5"]
names = {"1": "multi-hop", "2": "temporal", "3": "open-domain", "4": "single-hop", "5": "adversarial"}
n = e["recall"]["hybrid"]["overall"]["n"]
print(f"LoCoMo dev split, raw turns, {n} questions with evidence; hit-rate recall (an evidence turn in the top k).\n")
print("| system | mode | R@1 | R@5 | R@10 | " + " | ".join(f"R@10 {names[c]} (n={e['recall']['hybrid'][c]['n']})" for c in cats) + " |")
print("|---|---|---:|---:|---:|" + "---:|" * len(cats))
rows = [("engram (SQLite)", mode, r) for mode, r in e["recall"].items()]
rows += [("engram (PostgreSQL)", mode, r) for mode, r in pg["recall"].items()]
rows.append((f"mem0 {m['version']}", "vector (" + m["vector_store"].split()[0] + ")", m["recall"]))
for system, mode, r in rows:
    o = r["overall"]
    print(f"| {system} | {mode} | {o['1']:.3f} | {o['5']:.3f} | {o['10']:.3f} | "
          + " | ".join(f"{r[c]['10']:.3f}" for c in cats) + " |")
gap = {mode: pg["recall"][mode]["overall"]["10"] - e["recall"][mode]["overall"]["10"] for mode in e["recall"]}
print("\nPostgreSQL minus SQLite, R@10: " + ", ".join(f"{k} {v:+.3f}" for k, v in gap.items()) + ".")
ing = e["ingest"]
raw_rate = raw["texts_per_s"]
print(f"\nIngest with the local model: engram's queue embedded {ing['turns']} turns in {ing['indexed_seconds']:.1f} s "
      f"= {ing['turns_per_s_indexed']:.1f} turns/s (written in {ing['write_seconds']:.2f} s, keyword-searchable at once); "
      f"the raw model on the same {raw['texts']} texts, sorted, in batches of 32: {raw_rate:.1f} texts/s "
      f"(model load excluded); ratio {ing['turns_per_s_indexed'] / raw_rate:.2f}.")
lat = e["search_latency_incl_query_embedding"]
print("Search latency over HTTP, query embedding included: " + ", ".join(
    f"{k} p50 {v['p50_ms']:.1f} ms / p99 {v['p99_ms']:.1f} ms" for k, v in lat.items())
      + f"; mem0 search p50 {m['search']['p50_ms']:.1f} ms (vector lookup only, embedding precomputed).")
PY

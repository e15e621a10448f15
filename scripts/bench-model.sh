#!/usr/bin/env bash
# The local model beside sentence-transformers (issue 13, item 1), same texts,
# same machine, same script: the 2 760 LoCoMo turns ("speaker: text") embedded
# in sorted calls of 32 (texts/s, model load excluded) and the 999 LoCoMo
# questions embedded one at a time (p50 / p99 ms), ROUNDS interleaved rounds,
# medians reported; then the largest cosine distance between the two systems'
# vectors of every text.
#   engram: crates/engram-embed/examples/model_bench.rs (ONNX Runtime)
#   peer:   scripts/bench/st_model.py (sentence-transformers on CPU torch)
# Output: .bench/model.md. Knobs: ROUNDS (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench/locomo.sh
ROUNDS=${ROUNDS:-3}
out=.bench; mkdir -p "$out"
./scripts/venv.sh scripts/bench/requirements-model.txt .venv-model
py=.venv-model/bin/python
cargo build --release -q -p engram-server --bin engram
./target/release/engram model fetch >/dev/null
cargo build --release -q -p engram-embed --example model_bench

$py -c "import json,sys; sys.path.insert(0,'scripts/bench'); import locomo_data as l; d=json.load(open('$LOCOMO'))
t=open('$out/model-turns.jsonl','w'); q=open('$out/model-queries.jsonl','w')
for c in d:
    for _,_,x in l.turns_of(c['conversation']): t.write(json.dumps(l.memory_text(x))+'\n')
    for qa in c['qa']: q.write(json.dumps(qa['question'])+'\n')"
model=models/all-MiniLM-L6-v2
: > "$out/model-runs.jsonl"
for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  ./target/release/examples/model_bench $model "$out/model-turns.jsonl" "$out/model-queries.jsonl" "$out/model-engram.vec" |
    sed 's/^{/{"system":"engram",/' >> "$out/model-runs.jsonl"
  HF_HUB_OFFLINE=1 $py scripts/bench/st_model.py $model "$out/model-turns.jsonl" "$out/model-queries.jsonl" "$out/model-st.vec" 2>/dev/null |
    sed 's/^{/{"system":"sentence-transformers",/' >> "$out/model-runs.jsonl"
done
$py - "$out" <<'PY' | tee "$out/model.md"
import json, statistics, sys
import numpy as np
out = sys.argv[1]
runs = [json.loads(l) for l in open(f"{out}/model-runs.jsonl")]
med = lambda sys_, k: statistics.median(r[k] for r in runs if r["system"] == sys_)
a = np.array([json.loads(l) for l in open(f"{out}/model-engram.vec")])
b = np.array([json.loads(l) for l in open(f"{out}/model-st.vec")])
cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
st = [r for r in runs if r["system"] == "sentence-transformers"][0]
print("| system | LoCoMo turns/s (calls of 32) | one query p50 ms | one query p99 ms |")
print("|---|---:|---:|---:|")
for s in ("engram", "sentence-transformers"):
    print(f"| {s} | {med(s, 'texts_per_s'):.1f} | {med(s, 'query_p50_ms'):.2f} | {med(s, 'query_p99_ms'):.2f} |")
print()
print(f"Throughput ratio engram / sentence-transformers: {med('engram', 'texts_per_s') / med('sentence-transformers', 'texts_per_s'):.2f}x; "
      f"one-query p50 ratio: {med('sentence-transformers', 'query_p50_ms') / med('engram', 'query_p50_ms'):.2f}x faster. "
      f"Largest cosine distance between the two systems' vectors over {len(a)} texts: {1 - cos.min():.1e}.")
print(f"Medians of {len(runs) // 2} interleaved rounds; {st['texts']} turns, {st['queries']} questions; "
      f"torch {st['torch']} with {st['threads']} threads; {__import__('os').cpu_count()} cores.")
PY

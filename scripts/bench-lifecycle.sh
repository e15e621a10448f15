#!/usr/bin/env bash
# The memory lifecycle over HTTP (issue 4), one server per part, release binary
# with the local model (scripts/bench/engram_lifecycle.py):
#   1. LoCoMo end to end: conversations replayed through sessions (extractive
#      distillation on), questions asked through /v1/recall; how often an
#      evidence turn's memory reaches the context; turn ingest rate;
#   2. recall latency with 10 000 episodic + 10 000 semantic memories, beside
#      search on the same queries;
#   3. memory growth under a steady mixed load (STEADY_SECONDS, default 600).
# Output: JSON per part and a Markdown summary in .bench/lifecycle.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench/locomo.sh
STEADY_SECONDS=${STEADY_SECONDS:-600}
out=.bench; mkdir -p "$out"
./scripts/venv.sh scripts/bench/requirements.txt .venv-bench
py=$PWD/.venv-bench/bin/python
cargo build --release -q -p engram-server --bin engram
./target/release/engram model fetch >/dev/null
data="$out/vectors-clustered-100000"
[ -f "$data/meta.json" ] || $py scripts/bench/gen_vectors.py --n 100000 --queries 1000 --dims 384 --seed 7 \
  --distribution clustered --out "$data" >&2

. scripts/bench/serve.sh
dir=""
trap 'stop_engram; [ -n "$dir" ] && rm -rf "$dir"' EXIT
: > "$out/engram-lifecycle.log"
run_part() { # run_part NAME ARGS...: a fresh server and data directory per part
  local name=$1; shift
  echo "lifecycle: $name" >&2
  dir=$(mktemp -d)
  start_engram "$dir" "$out/engram-lifecycle.log"
  (cd scripts/bench && $py engram_lifecycle.py "$name" --url "http://127.0.0.1:$port" --pid "$pid" "$@" \
    --out "../../$out/lifecycle-$name.json" >/dev/null)
  stop_engram
  rm -rf "$dir"; dir=""
}
# PARTS chooses which parts run (default all three); a summary covers what ran.
PARTS=${PARTS:-locomo recall steady}
for part in $PARTS; do
  case $part in
    locomo) run_part locomo --locomo "$LOCOMO" ;;
    recall) run_part recall --data "../../$data" ;;
    steady) run_part steady --locomo "$LOCOMO" --seconds "$STEADY_SECONDS" ;;
    *) echo "unknown part $part (locomo, recall, steady)" >&2; exit 2 ;;
  esac
done

$py - "$out" <<'PY' | tee "$out/lifecycle.md"
import json, os, sys
out = sys.argv[1]
load = lambda name: json.load(open(f"{out}/lifecycle-{name}.json")) if os.path.exists(f"{out}/lifecycle-{name}.json") else None
l, r, s = load("locomo"), load("recall"), load("steady")
if l is not None:
    rows = l["recall"]
    cats = [k for k in rows if k != "overall"]
    print(f"LoCoMo dev, {l['turns']} turns replayed through sessions ({l['memories']} memories distilled), "
          f"{rows['overall']['n']} questions through /v1/recall (limit 10, token_budget {l['token_budget']}).\n")
    print("| | overall | " + " | ".join(f"{rows[c]['name']} (n={rows[c]['n']})" for c in cats) + " |")
    print("|---|---:|" + "---:|" * len(cats))
    for field, label in (("context_hit_rate", "evidence turn's memory in the context"),
                         ("evidence_distilled", "evidence turn kept by distillation")):
        print(f"| {label} | {rows['overall'][field]:.3f} | " + " | ".join(f"{rows[c][field]:.3f}" for c in cats) + " |")
    i = l["ingest"]
    print(f"\nTurn ingest with distillation on (2 turns per call, extractive, inline): {i['turns_per_s_acknowledged']} turns/s "
          f"acknowledged; {i['turns_per_s_until_embedded']} turns/s until every memory is embedded. "
          f"Recall latency on LoCoMo: p50 {l['recall_latency']['p50_ms']} ms, p99 {l['recall_latency']['p99_ms']} ms "
          f"(query embedding included). Intents: {l['intents']}.\n")
    o = l["offtopic"]
    print(f"Off-topic questions ({o['questions']}: scripts/bench/data/offtopic_questions.txt asked of every conversation): "
          f"{o['empty_context_share']:.3f} get an empty context.\n")
    print("Relevance floor (best cosine of a long-term memory) against LoCoMo's context hit rate and the off-topic empty share:\n")
    print("| floor | LoCoMo context hit rate | off-topic empty context |")
    print("|---:|---:|---:|")
    for p in l["relevance_floor_curve"]:
        print(f"| {p['floor']:.2f} | {p['locomo_context_hit_rate']:.3f} | {p['offtopic_empty_share']:.3f} |")
    print()
if r is not None:
    lat = r["latency"]
    print(f"Recall with {r['memories']['episodic']} episodic + {r['memories']['semantic']} semantic memories, "
          f"{lat['recall']['n']} queries: " + "; ".join(f"{k} p50 {v['p50_ms']} ms / p99 {v['p99_ms']} ms" for k, v in lat.items())
          + f" (the server embeds each query in both). Server RSS {r['server_rss_mb']['VmRSS']} MB.\n")
if s is not None:
    g = s["rss_mb"]
    print(f"Steady load for {s['seconds']:.0f} s ({s['rounds_per_s']} rounds/s: a turn appended, a recall, a citation each; "
          f"{s['ops']}): RSS median {g['first_minute_median']} MB in the first minute, {g['last_minute_median']} MB in the last "
          f"(growth {g['growth_mb']} MB), max {g['max']} MB.")
PY

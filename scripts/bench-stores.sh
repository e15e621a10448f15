#!/usr/bin/env bash
# The durable stores side by side (issue 14, DESIGN §8): one engram node
# (release binary, local model loaded, callers' vectors) on each of
#   SQLite      a data directory on local disk;
#   PostgreSQL  18 + pgvector (scripts/postgres.sh, its own cluster, fsync on);
#   MongoDB     the MongoDB-wire test server (scripts/mongo.sh): SecantusDB, a
#               single node in Python over WiredTiger, syncing on every
#               commit. It is NOT mongod: its figures say what engram costs
#               on that server, not what it would do on MongoDB itself.
# Each store is seeded with the same N items and vectors through the API
# (scripts/bench/engram_pg_seed.py, batches of 500), then wrk replays the same
# put / get / search requests as bench-postgres (pg_put.lua: a new keyed
# memory with its vector; get_item.lua: LangGraph get_item; pg_search.lua: top
# 10 by vector under bench/seed) at CONNS connections for DURATION s. Rounds
# interleave the stores; the table gives medians and the ratio to SQLite. With
# MongoDB, each round also measures the test server itself
# (scripts/bench/mongo_peer.py: bare lookups and inserts through pymongo), the
# ceiling engram's figures there are read against.
# Output: .bench/stores.md. Knobs: N (default 5000), DURATION (s, default 5),
# ROUNDS (default 3), CONNS (default 16), STORES (default "sqlite postgres mongo").
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}; DURATION=${DURATION:-5}; ROUNDS=${ROUNDS:-3}; CONNS=${CONNS:-16}
read -r -a stores <<<"${STORES:-sqlite postgres mongo}"
out=.bench; mkdir -p "$out"
export BENCH_DIR=$PWD/scripts/bench
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
./scripts/venv.sh scripts/bench/requirements.txt .venv-bench
py=.venv-bench/bin/python
cargo build --release -q -p engram-server
./target/release/engram model fetch >/dev/null

export PG_DIR=/tmp/engram-pg-stores PG_FSYNC=on MONGO_DIR=/tmp/engram-mongo-stores
. scripts/bench/serve.sh
. scripts/bench/wrk.sh
declare -A port_of pid_of
dirs=()
cleanup() {  # every node started, the last one too if it never became ready
  for p in "${pid_of[@]}" $pid; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "${dirs[@]}"
  ./scripts/postgres.sh stop || true
  ./scripts/mongo.sh stop || true
}
trap cleanup EXIT
store_url() { # store: its URL, starting its server
  case "$1" in
    sqlite) echo "" ;;  # the data directory's default
    postgres) ./scripts/postgres.sh start >/dev/null && ./scripts/postgres.sh createdb engram_stores ;;
    mongo) ./scripts/mongo.sh start | sed 's|/?|/engram_stores?|' ;;
    *) echo "unknown store $1 (sqlite, postgres, mongo)" >&2; return 1 ;;
  esac
}

data="$out/vectors-clustered-$N"
[ -f "$data/meta.json" ] || $py scripts/bench/gen_vectors.py --n "$N" --queries 1000 --dims 384 --seed 7 --out "$data" >&2
: > "$out/engram-stores.log"
for s in "${stores[@]}"; do
  url=$(store_url "$s")
  d=$(mktemp -d); dirs+=("$d")
  if [ -n "$url" ]; then ENGRAM_STORE_URL="$url" start_engram "$d" "$out/engram-stores.log"
  else start_engram "$d" "$out/engram-stores.log"; fi
  pid_of[$s]=$pid; port_of[$s]=$port
  echo "seeding $N items on $s" >&2
  $py scripts/bench/engram_pg_seed.py --url "http://127.0.0.1:$port" --data "$data" --bodies "$out" \
    >"$out/stores-seed-$s.json"
done

raw="$out/stores.tsv"; : > "$raw"
for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  for w in "put scripts/bench/pg_put.lua" "get scripts/bench/get_item.lua" "search scripts/bench/pg_search.lua"; do
    set -- $w
    for s in "${stores[@]}"; do
      line=$(wrk_line "$2" "$CONNS" "${port_of[$s]}"); eval "${line#RESULT }"
      [ "$errors" = 0 ] || echo "warning: $errors errors in $s $1 (see $out/engram-stores.log)" >&2
      record "$s" "$1" "$rps" "$p50_ms" "$p99_ms"
    done
  done
  if [ -n "${port_of[mongo]:-}" ]; then  # the test server's own ceiling, same round
    .venv-mongo/bin/python scripts/bench/mongo_peer.py --url "$(./scripts/mongo.sh url)" --conns "$CONNS" \
      --duration "$DURATION" --n "$N" | python3 -c '
import json, sys
r = json.load(sys.stdin)
for w in ("put", "get"):
    print("mongo-peer\t%s\t%.0f\t%.3f\t%.3f" % (w, r[w]["rps"], r[w]["p50_ms"], r[w]["p99_ms"]))' | tee -a "$raw" >&2
  fi
done

python3 - "$raw" "$out" "$N" "$CONNS" "${stores[@]}" <<'PY' | tee "$out/stores.md"
import json, statistics, sys
from collections import defaultdict
raw, out, n, conns, stores = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
names = {"sqlite": "SQLite", "postgres": "PostgreSQL + pgvector", "mongo": "MongoDB wire (SecantusDB)"}
rows = defaultdict(list)
for line in open(raw):
    store, w, rps, p50, p99 = line.rstrip("\n").split("\t")
    rows[(store, w)].append((float(rps), float(p50), float(p99)))
med = {k: tuple(statistics.median(r[i] for r in v) for i in range(3)) for k, v in rows.items()}
peer = stores[0]
print(f"{n} items of 384 dims, {conns} concurrent requests, one engram node each; medians of the rounds.\n")
print(f"| store | workload | req/s | p50 ms | p99 ms | vs {names[peer]} |")
print("|---|---|---:|---:|---:|---:|")
for w in ("put", "get", "search"):
    for s in stores:
        rps, p50, p99 = med[(s, w)]
        ratio = "" if s == peer else f"{rps / med[(peer, w)][0]:.2f}x"
        print(f"| {names[s]} | {w} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {ratio} |")
if ("mongo-peer", "get") in med:
    print("\nThe test server itself, same rounds (pymongo, %s threads: get = `find_one` by `_id`, put = `insert_one`, "
          "w: majority, j: true):\n" % conns)
    print("| workload | server req/s | p50 ms | p99 ms | engram on it / server |")
    print("|---|---:|---:|---:|---:|")
    for w in ("put", "get"):
        rps, p50, p99 = med[("mongo-peer", w)]
        print(f"| {w} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {med[('mongo', w)][0] / rps:.2f}x |")
seeds = {s: json.load(open(f"{out}/stores-seed-{s}.json")) for s in stores}
print("\nSeeding (batches of 500, one request at a time), items/s: "
      + ", ".join(f"{names[s]} {seeds[s]['seed_items_per_s']:.0f}" for s in stores)
      + ". Recall@10 of the search (200 queries, exact top 10): "
      + ", ".join(f"{names[s]} {seeds[s]['recall_at_10']:.3f}" for s in stores) + ".")
PY
servers=""
[[ " ${stores[*]} " == *" postgres "* ]] && servers+="PostgreSQL 18.6 + pgvector 0.8 (fsync on); "
[[ " ${stores[*]} " == *" mongo "* ]] && servers+="$(grep -im1 '^secantusdb' tests/mongo/requirements.txt) (--sync-on-commit); "
echo "engram: $(./target/release/engram --version); $servers$(nproc) cores; $(date -u +%F)" | tee -a "$out/stores.md"

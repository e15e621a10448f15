#!/usr/bin/env bash
# Admission under overload (issue 12): engram (release, keyword search only,
# limits.max_in_flight = IN_FLIGHT) serving keyword searches over N memories,
# driven by wrk at half IN_FLIGHT connections (within capacity) and then at
# 10x IN_FLIGHT (closed loop: a shed request is sent again at once); beside
# wrk a probe (scripts/bench/overload_probe.py) times /healthz and single
# searches every 20 ms and samples the server's RSS each second.
# Output: .bench/admission.md. Knobs: IN_FLIGHT (default 16), N (default
# 20000), DURATION (s per run, default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
IN_FLIGHT=${IN_FLIGHT:-16}; N=${N:-20000}; DURATION=${DURATION:-20}
out=.bench; mkdir -p "$out"
export BENCH_DIR=$PWD/scripts/bench
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p engram-server
. scripts/bench/serve.sh
d=$(mktemp -d)
ENGRAM_EMBEDDER_PROVIDER=none ENGRAM_LIMITS_MAX_IN_FLIGHT=$IN_FLIGHT start_engram "$d" "$out/engram-admission.log"
trap 'stop_engram; rm -rf "$d"' EXIT
python3 - "$port" "$N" <<'PY'
import http.client, json, random, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
words = "river garden music travel kitchen letter winter market morning friend city book".split()
rng = random.Random(7)
c = http.client.HTTPConnection("127.0.0.1", port)
for start in range(0, n, 1000):
    mems = [{"namespace": ["load", f"u{i % 50}"], "text": " ".join(rng.choice(words) for _ in range(12)) + f" note {i}"}
            for i in range(start, min(n, start + 1000))]
    c.request("POST", "/v1/memories", json.dumps({"memories": mems}), {"Content-Type": "application/json"})
    r = c.getresponse(); r.read(); assert r.status == 201, r.status
PY
rows=()
for factor in 0.5 10; do
  conns=$(python3 -c "print(max(1, int($IN_FLIGHT * $factor)))")
  python3 scripts/bench/overload_probe.py --url "http://127.0.0.1:$port" --pid "$pid" --duration "$DURATION" >"$out/probe-$factor.json" &
  probe=$!
  line=$(wrk -t 2 -c "$conns" -d "${DURATION}s" -s scripts/bench/search_kw.lua "http://127.0.0.1:$port" | grep '^RESULT')
  wait $probe
  rows+=("$factor $conns ${line#RESULT }")
done
python3 - "$IN_FLIGHT" "$N" "$out" "${rows[@]}" <<'PY' | tee "$out/admission.md"
import json, sys
in_flight, n, out = sys.argv[1], sys.argv[2], sys.argv[3]
print(f"engram, keyword search over {n} memories, limits.max_in_flight = {in_flight}; wrk on the same 2 cores.\n")
print("| load (x max_in_flight) | wrk conns | wrk req/s | wrk non-2xx | wrk p50 / p99 ms | probe: searches admitted / shed | admitted p50 / p99 ms | /healthz p50 / p99 ms | RSS min / max MB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for row in sys.argv[4:]:
    factor, conns, *kv = row.split()
    w = dict(x.split("=") for x in kv)
    p = json.load(open(f"{out}/probe-{factor}.json"))
    f = lambda v: "-" if v is None else f"{v:.2f}"
    print(f"| {factor}x | {conns} | {float(w['rps']):.0f} | {w['errors']} of {w['requests']} | {float(w['p50_ms']):.2f} / {float(w['p99_ms']):.2f} "
          f"| {p['search_admitted']} / {p['search_shed']} | {f(p['search_p50_ms'])} / {f(p['search_p99_ms'])} "
          f"| {f(p['health_p50_ms'])} / {f(p['health_p99_ms'])} | {p['rss_min_mb']:.0f} / {p['rss_max_mb']:.0f} |")
    others = {k: v for k, v in p["search_statuses"].items() if k not in ("200", "503")}
    if others:
        print(f"\n(probe searches at {factor}x answered otherwise: {others})")
PY
echo "engram $(./target/release/engram --version); $(nproc) cores; $(date -u +%F)" | tee -a "$out/admission.md"

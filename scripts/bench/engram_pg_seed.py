#!/usr/bin/env python3
"""Engram's side of scripts/bench-postgres.sh: seeds the dataset's N items the
way langgraph_pg.py seeds LangGraph's store — ("bench","seed","g<i%100>") /
"k<i>", data {"text", "i"}, the text indexed with base row i as its vector —
through POST /v1/memories (500 a request, caller vectors); writes the request
bodies wrk replays (puts: new items with base rows' texts and vectors;
searches: vector search of ("bench","seed") for a query row, limit 10); and
measures recall@10 of that search over 200 queries against truth.i32.

Usage: engram_pg_seed.py --url http://127.0.0.1:PORT --data DIR --bodies OUTDIR
"""
import argparse
import http.client
import json
import time
import urllib.parse

import dataset


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--bodies", required=True)
    a = ap.parse_args()
    data = dataset.load(a.data)
    base, queries, truth, texts = data.base, data.queries, data.truth, data.texts
    n = len(texts)
    u = urllib.parse.urlparse(a.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)

    def post(path, body):
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise SystemExit(f"{path}: {r.status} {data[:300]!r}")
        return json.loads(data)

    t0 = time.perf_counter()
    for start in range(0, n, 500):
        post("/v1/memories", {"memories": [
            {"namespace": ["bench", "seed", f"g{i % 100}"], "key": f"k{i}", "text": texts[i],
             "data": {"text": texts[i], "i": i}, "embedding": base[i].tolist()}
            for i in range(start, min(n, start + 500))]})
    seed_rate = n / (time.perf_counter() - t0)

    def search_body(j):
        return {"namespace_prefix": ["bench", "seed"], "query_embedding": queries[j].tolist(), "mode": "vector",
                "limit": 10, "context_weight": 0}

    with open(f"{a.bodies}/puts.txt", "w") as f:
        for row in range(min(n, 2000)):
            fragment = json.dumps({"text": texts[row], "data": {"text": texts[row], "i": row},
                                   "embedding": base[row].tolist()})
            f.write(fragment[1:-1] + "\n")  # members only: the wrk script adds namespace and key
    with open(f"{a.bodies}/searches.txt", "w") as f:
        for j in range(len(queries)):
            f.write(json.dumps(search_body(j)) + "\n")

    hits = 0
    for j in range(min(200, len(queries))):
        found = post("/v1/memories/search", search_body(j))["results"]
        hits += len({r["memory"]["data"]["i"] for r in found} & set(truth[j].tolist()))
    print(json.dumps({"seed_items_per_s": seed_rate, "recall_at_10": hits / (10 * min(200, len(queries)))}))


main()

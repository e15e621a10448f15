#!/usr/bin/env python3
"""Engram over HTTP on the vector-search benchmark (the dataset of gen_vectors.py,
the same vectors ChromaDB gets in chroma_search.py).

  1. ingests every base vector as a memory (its text, metadata {"i": index},
     the vector as a caller-supplied `embedding`) with POST /v1/memories in
     batches of 1000, timing the whole ingest (memories/s; each batch is one
     durable transaction and is in the vector index when acknowledged);
  2. after ~50 warm-up queries, runs every query one at a time with a
     keep-alive connection, in three modes: hybrid (query text +
     `query_embedding`, so the server does not embed: DESIGN §8 excludes the
     query embedding), vector (`context_weight` 0) and keyword; the request
     bodies are encoded before timing, so the figures are one HTTP round trip
     each, Python's client included;
  3. recall@10 of the vector mode against the exact top-10 (truth.i32);
  4. the server's RSS (VmRSS, VmHWM of --pid) after ingest and after queries.

With --restarted, the memories are already there (a server restarted on the
data directory of an earlier run): only the queries run, and the RSS shows
what the server holds at rest.

Usage: engram_search.py --url http://127.0.0.1:7700 --pid PID --data DIR --out result.json [--restarted]
"""
import argparse
import http.client
import json
import time
import urllib.parse

import numpy as np

import dataset
import report
from engram_client import rss_mb


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", required=True, type=int)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--restarted", action="store_true", help="skip the ingest")
    a = ap.parse_args()
    data = dataset.load(a.data)
    base, queries, truth, texts, query_texts = data.base, data.queries, data.truth, data.texts, data.query_texts

    u = urllib.parse.urlparse(a.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)

    def post(path, body):
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise RuntimeError(f"POST {path} -> {r.status}: {data[:300]!r}")
        return json.loads(data)

    rss_empty = rss_mb(a.pid)
    statuses = {}
    started = time.perf_counter()
    for start in range(0, 0 if a.restarted else len(base), 1000):
        batch = [{"namespace": ["bench", f"n{i % 10}"], "text": texts[i], "metadata": {"i": i},
                  "embedding": base[i].tolist()} for i in range(start, min(len(base), start + 1000))]
        for r in post("/v1/memories", json.dumps({"memories": batch}))["results"]:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    ingest_s = time.perf_counter() - started
    rss_ingest = rss_mb(a.pid)

    def body(mode, q):
        b = {"namespace_prefix": ["bench"], "mode": mode, "limit": 10, "query": query_texts[q]}
        if mode != "keyword":
            b["query_embedding"] = queries[q].tolist()
        if mode == "vector":
            b["context_weight"] = 0
        return json.dumps(b)

    for q in range(min(a.warmup, len(queries))):
        post("/v1/memories/search", body("hybrid", q))
    search, recall = {}, None
    for mode in ("hybrid", "vector", "keyword"):
        bodies = [body(mode, q) for q in range(len(queries))]
        lat, found = [], 0
        for q, b in enumerate(bodies):
            t0 = time.perf_counter()
            out = post("/v1/memories/search", b)
            lat.append((time.perf_counter() - t0) * 1000)
            if mode == "vector":
                got = {r["memory"]["metadata"]["i"] for r in out["results"]}
                found += len(got & set(truth[q].tolist()))
        search[mode] = {"p50_ms": round(float(np.percentile(lat, 50)), 3),
                        "p99_ms": round(float(np.percentile(lat, 99)), 3),
                        "mean_ms": round(float(np.mean(lat)), 3)}
        if mode == "vector":
            recall = round(found / (10 * len(queries)), 4)

    result = {
        "system": "engram over HTTP (release binary, SQLite + usearch HNSW)",
        "n": len(base), "queries": len(queries),
        "ingest": None if a.restarted else {"seconds": round(ingest_s, 3), "memories_per_s": round(len(base) / ingest_s, 1),
                   "statuses": statuses,
                   "note": "POST /v1/memories, 1000 memories with caller vectors per request, one durable transaction each"},
        "search": search,
        "recall_at_10": recall,
        "server_rss_mb": {"model_loaded_empty": rss_empty, "after_ingest": rss_ingest, "after_queries": rss_mb(a.pid)},
    }
    report.write(result, a.out)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Engram on the LoCoMo retrieval benchmark (raw turns), over HTTP.

What it measures: evidence hit-rate recall@1/5/10 of POST /v1/memories/search in
each mode (keyword, vector, hybrid; vector and hybrid also without neighbour
context), per question category and overall; the
ingest rate of the embedding queue (turns written without waiting, timed until
the last one is findable by meaning); search latency per mode.

How: one namespace per conversation (["locomo", <sample_id>]); each turn is a
memory with text "<speaker>: <text>" and metadata dia_id, session, session_date,
written in batches of 200 in conversation order. Then every question with
evidence is searched in its conversation's namespace with limit 10.

Usage: engram_locomo.py --url http://127.0.0.1:7700 --locomo locomo-dev.json --out result.json
"""
import argparse
import json
import time

import numpy as np

from locomo_data import Recall, memory_text, questions, turns_of
import report
from engram_client import Client, pending_embeddings

# (name, search fields): the three modes as a client gets them, then the two
# that use vectors without neighbour context, to show what context adds.
MODES = (
    ("keyword", {"mode": "keyword"}),
    ("vector", {"mode": "vector"}),
    ("hybrid", {"mode": "hybrid"}),
    ("vector, context off", {"mode": "vector", "context_weight": 0}),
    ("hybrid, context off", {"mode": "hybrid", "context_weight": 0}),
)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--locomo", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    data = json.load(open(a.locomo))
    client = Client(a.url)

    statuses, n_turns = {}, 0
    started = time.perf_counter()
    for c in data:
        ns = ["locomo", c["sample_id"]]
        batch = [{"namespace": ns, "text": memory_text(t),
                  "metadata": {"dia_id": t["dia_id"].strip(), "session": s, "session_date": date}}
                 for s, date, t in turns_of(c["conversation"])]
        n_turns += len(batch)
        for i in range(0, len(batch), 200):
            for r in client.post("/v1/memories", {"memories": batch[i:i + 200]})["results"]:
                statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    written = time.perf_counter() - started
    while pending_embeddings(client, ["locomo"]) > 0:
        time.sleep(0.05)
    indexed = time.perf_counter() - started

    recall, latency = {}, {}
    for name, fields in MODES:
        rec, lat = Recall(), []
        for c in data:
            ns = ["locomo", c["sample_id"]]
            for q, category, evidence in questions(c):
                t0 = time.perf_counter()
                out = client.post("/v1/memories/search", {"query": q, "namespace_prefix": ns, "limit": 10, **fields})
                lat.append((time.perf_counter() - t0) * 1000)
                if out["mode"] != fields["mode"]:
                    raise RuntimeError(f"asked for {fields['mode']}, server ran {out['mode']}")
                rec.add(category, evidence, [r["memory"]["metadata"].get("dia_id") for r in out["results"]])
        recall[name] = rec.table()
        latency[name] = {"p50_ms": round(float(np.percentile(lat, 50)), 3),
                         "p99_ms": round(float(np.percentile(lat, 99)), 3)}

    result = {
        "system": "engram",
        "recall": recall,
        "search_latency_incl_query_embedding": latency,
        "ingest": {"turns": n_turns, "write_statuses": statuses,
                   "write_seconds": round(written, 3), "indexed_seconds": round(indexed, 3),
                   "turns_per_s_indexed": round(n_turns / indexed, 1)},
    }
    report.write(result, a.out)


if __name__ == "__main__":
    main()

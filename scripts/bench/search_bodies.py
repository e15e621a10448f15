"""Writes the request bodies of POST /v1/memories/search for one mode, one
JSON object per line, from a dataset of scripts/bench/gen_vectors.py: the same
queries, texts and settings examples/search_bench.rs runs in process
(namespace prefix ["bench"], limit 10; hybrid and keyword with context on,
vector with context off), so wrk (scripts/bench/search_bodies.lua) can time
the same searches over HTTP.

  python search_bodies.py --data DIR --mode hybrid|vector|keyword > bodies.jsonl
"""
import argparse
import json
import sys

from dataset import load


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--mode", required=True, choices=["hybrid", "vector", "keyword"])
    a = ap.parse_args()
    d = load(a.data)
    for vector, text in zip(d.queries, d.query_texts):
        body = {"query": text, "namespace_prefix": ["bench"], "mode": a.mode, "limit": 10}
        if a.mode != "keyword":
            body["query_embedding"] = [round(float(x), 7) for x in vector]
        if a.mode == "vector":
            body["context_weight"] = 0.0
        sys.stdout.write(json.dumps(body, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()

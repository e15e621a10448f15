#!/usr/bin/env python3
"""The MongoDB-wire test server's own ceiling, for scripts/bench-stores.sh:
CONNS threads of pymongo against the same server for DURATION s each —
`get`: find_one by `_id` on N small documents; `put`: insert_one of a new
document (w: majority, j: true, as engram writes). What engram's figures on
that server can be read against: one engram get is one such lookup, one put
about a dozen statements in a transaction.

Usage: mongo_peer.py --url MONGODB_URL --conns 16 --duration 5 --n 5000
Prints {"get": {"rps", "p50_ms", "p99_ms"}, "put": {...}} as JSON.
"""
import argparse
import json
import random
import statistics
import threading
import time

import pymongo
from pymongo.write_concern import WriteConcern


def run(conns, duration, op):
    lat, stop = [], time.perf_counter() + duration
    lock = threading.Lock()

    def worker(w):
        mine, i = [], 0
        while time.perf_counter() < stop:
            t = time.perf_counter()
            op(w, i)
            mine.append(time.perf_counter() - t)
            i += 1
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(conns)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.perf_counter() - t0
    lat.sort()
    return {"rps": len(lat) / secs, "p50_ms": statistics.median(lat) * 1000,
            "p99_ms": lat[int(len(lat) * 0.99)] * 1000}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--n", type=int, default=5000)
    a = ap.parse_args()
    client = pymongo.MongoClient(a.url, maxPoolSize=a.conns)
    db = client.get_database("peer", write_concern=WriteConcern(w="majority", j=True))
    db.drop_collection("docs")
    docs = db.docs
    docs.insert_many([{"_id": i, "text": f"item {i}"} for i in range(a.n)])
    out = {
        "get": run(a.conns, a.duration, lambda w, i: docs.find_one({"_id": random.randrange(a.n)})),
        "put": run(a.conns, a.duration, lambda w, i: docs.insert_one({"w": w, "i": i, "text": f"new {w} {i}"})),
    }
    client.drop_database("peer")
    print(json.dumps(out))


main()

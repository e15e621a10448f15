#!/usr/bin/env python3
"""LangGraph's own AsyncPostgresStore (langgraph-checkpoint-postgres, a
pgvector HNSW index, cosine) doing what scripts/bench-postgres.sh has engram
do, on the same PostgreSQL server and the same vectors:

  seed     N items ("bench","seed","g<i%100>") / "k<i>", value {"text", "i"},
           the text indexed (its vector: base row i, through the `embed`
           function, which looks vectors up instead of running a model);
  put      new items under ("bench","puts",...), one aput each;
  get      aget of a random seeded item;
  search   asearch(("bench","seed"), query=<query text>, limit=10), the query
           text's vector being query row j;

each phase a closed loop of --conns concurrent tasks for --duration seconds,
over a pool of --conns connections. Also recall@10 of search against the
exact top-10 (truth.i32) over the seeded items. Prints one JSON object.

Usage: langgraph_pg.py --url postgres://... --data DIR --conns 16 --duration 5 [--seed]
"""
import argparse
import asyncio
import json
import random
import time

from langgraph.store.base import PutOp
from langgraph.store.postgres.aio import AsyncPostgresStore
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

import dataset


def pct(sorted_xs, p):
    return sorted_xs[min(len(sorted_xs) - 1, int(len(sorted_xs) * p / 100))]


async def closed_loop(conns, duration, op):
    lat = []
    stop = time.perf_counter() + duration

    async def worker(w):
        i = 0
        while time.perf_counter() < stop:
            t = time.perf_counter()
            await op(w, i)
            lat.append(time.perf_counter() - t)
            i += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(conns)))
    elapsed = time.perf_counter() - t0
    lat.sort()
    return {"rps": len(lat) / elapsed, "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3,
            "requests": len(lat)}


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--seed", action="store_true", help="create the tables and seed the items first")
    ap.add_argument("--round", default="0")
    a = ap.parse_args()
    data = dataset.load(a.data)
    dims = data.dims
    base, queries, truth, texts, qtexts = data.base, data.queries, data.truth, data.texts, data.query_texts
    n = len(texts)

    # Texts end in "#<base row>" or "?<query row>": the embedder looks the vector up.
    def embed(batch):
        out = []
        for t in batch:
            if "#" in t:
                out.append(base[int(t.rsplit("#", 1)[1])].tolist())
            else:
                out.append(queries[int(t.rsplit("?", 1)[1])].tolist())
        return out

    pool = AsyncConnectionPool(a.url, min_size=a.conns, max_size=a.conns, open=False,
                               kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row})
    await pool.open()
    store = AsyncPostgresStore(pool, index={
        "dims": dims, "embed": embed, "fields": ["text"],
        "ann_index_config": {"kind": "hnsw", "vector_type": "vector"}, "distance_type": "cosine"})
    result = {}
    if a.seed:
        await store.setup()
        t0 = time.perf_counter()
        for start in range(0, n, 500):
            await store.abatch([PutOp(("bench", "seed", f"g{i % 100}"), f"k{i}", {"text": f"{texts[i]} #{i}", "i": i})
                                for i in range(start, min(n, start + 500))])
        result["seed_items_per_s"] = n / (time.perf_counter() - t0)

    async def put(w, i):
        row = (w * 7919 + i) % n
        await store.aput(("bench", "puts", f"r{a.round}w{w}"), f"k{i}", {"text": f"{texts[row]} #{row}", "i": row})

    async def get(w, i):
        k = random.randrange(n)
        item = await store.aget(("bench", "seed", f"g{k % 100}"), f"k{k}")
        assert item is not None

    async def search(w, i):
        j = random.randrange(len(qtexts))
        await store.asearch(("bench", "seed"), query=f"{qtexts[j]} ?{j}", limit=10)

    for name, op in (("put", put), ("get", get), ("search", search)):
        result[name] = await closed_loop(a.conns, a.duration, op)

    if a.seed:
        hits = 0
        for j in range(min(200, len(qtexts))):
            found = await store.asearch(("bench", "seed"), query=f"{qtexts[j]} ?{j}", limit=10)
            hits += len({int(f.key[1:]) for f in found} & set(truth[j].tolist()))
        result["recall_at_10"] = hits / (10 * min(200, len(qtexts)))
    await pool.close()
    print(json.dumps(result))


asyncio.run(main())

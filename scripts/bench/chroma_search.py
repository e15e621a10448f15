#!/usr/bin/env python3
"""ChromaDB peer for the vector-search benchmark (same vectors Engram gets).

Reads a dataset written by gen_vectors.py (base.f32, queries.f32, truth.i32,
texts.jsonl, meta.json), then in one process:
  1. opens a chromadb.PersistentClient in a fresh temp dir and creates one
     collection with cosine space and explicit HNSW settings (M=16,
     ef_construction=128, ef_search=96, as Engram's index) and no embedding
     function (all vectors are supplied);
  2. adds every base vector with its text as the document, in batches of the
     client's max batch size, timing the whole ingest (vectors/s);
  3. runs ~50 warm-up queries (not counted), then every query one at a time
     with collection.query(query_embeddings=[q], n_results=10,
     include=["documents", "distances"]) (what a memory search returns: text and
     score; --include '' for ids only), timing each call: p50/p99/mean ms;
  4. recall@10 = mean over queries of |returned ids ∩ exact top-10| / 10;
  5. RSS of this process (VmRSS current, VmHWM peak, from /proc/self/status)
     after ingest and after the queries. Chroma runs in-process, so this is
     Python + chromadb + its Rust bindings together; the raw vectors loaded by
     numpy (n*dims*4 bytes) are included and reported separately.
Prints the result JSON and writes it to --out.

Usage: chroma_search.py --data DIR --out result.json [--warmup 50] [--keep-dir]
"""
import argparse
import json
import os
import shutil
import tempfile
import time

import numpy as np

import report

M, EF_CONSTRUCTION, EF_SEARCH, K = 16, 128, 96, 10


def rss_mb():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line[:5]] = round(int(line.split()[1]) / 1024, 1)
    return {"current_mb": out["VmRSS"], "peak_mb": out["VmHWM"]}


def pct(xs, p):
    return float(np.percentile(np.asarray(xs), p))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--include", default="documents,distances",
                    help="what each query returns (comma list; '' = ids only)")
    ap.add_argument("--keep-dir", action="store_true", help="do not delete the chroma dir")
    a = ap.parse_args()
    include = [x for x in a.include.split(",") if x]

    import chromadb

    meta = json.load(open(os.path.join(a.data, "meta.json")))
    n, dims, nq = meta["n"], meta["dims"], meta["queries"]
    base = np.fromfile(os.path.join(a.data, "base.f32"), "<f4").reshape(n, dims)
    queries = np.fromfile(os.path.join(a.data, "queries.f32"), "<f4").reshape(nq, dims)
    truth = np.fromfile(os.path.join(a.data, "truth.i32"), "<i4").reshape(nq, -1)[:, :K]
    with open(os.path.join(a.data, "texts.jsonl")) as f:
        texts = [json.loads(line) for line in f]
    assert len(texts) == n, (len(texts), n)
    rss_loaded = rss_mb()

    tmp = tempfile.mkdtemp(prefix="chroma-bench-")
    try:
        client = chromadb.PersistentClient(
            path=tmp, settings=chromadb.Settings(anonymized_telemetry=False))
        coll = client.create_collection(
            "bench", embedding_function=None,
            configuration={"hnsw": {"space": "cosine", "max_neighbors": M,
                                    "ef_construction": EF_CONSTRUCTION, "ef_search": EF_SEARCH}})
        batch = client.get_max_batch_size()
        ids = [str(i) for i in range(n)]

        t0 = time.perf_counter()
        for lo in range(0, n, batch):
            hi = min(n, lo + batch)
            coll.add(ids=ids[lo:hi], embeddings=base[lo:hi], documents=texts[lo:hi])
        ingest_s = time.perf_counter() - t0
        count = coll.count()
        rss_ingest = rss_mb()

        rng = np.random.default_rng(0)
        for qi in rng.integers(0, nq, size=a.warmup):
            coll.query(query_embeddings=queries[qi:qi + 1], n_results=K, include=include)

        lat, hits = [], []
        for qi in range(nq):
            t = time.perf_counter()
            r = coll.query(query_embeddings=queries[qi:qi + 1], n_results=K, include=include)
            lat.append((time.perf_counter() - t) * 1000)
            found = {int(x) for x in r["ids"][0]}
            hits.append(len(found & set(truth[qi].tolist())) / K)
        rss_query = rss_mb()
        config = coll.configuration_json if hasattr(coll, "configuration_json") else None
        disk = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tmp) for f in fs)
    finally:
        if a.keep_dir:
            print(f"chroma dir kept: {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    result = {
        "system": "chromadb",
        "version": chromadb.__version__,
        "client": "PersistentClient (embedded, temp dir)",
        "hnsw": {"space": "cosine", "M": M, "construction_ef": EF_CONSTRUCTION,
                 "search_ef": EF_SEARCH},
        "collection_configuration": config,
        "dataset": {k: meta.get(k) for k in ("n", "queries", "dims", "seed", "distribution")},
        "ingest": {"vectors": count, "batch_size": batch, "seconds": round(ingest_s, 3),
                   "vectors_per_s": round(n / ingest_s, 1), "with_documents": True},
        "search": {"k": K, "queries": nq, "warmup": a.warmup,
                   "include": include,
                   "p50_ms": round(pct(lat, 50), 4), "p99_ms": round(pct(lat, 99), 4),
                   "mean_ms": round(float(np.mean(lat)), 4)},
        "recall_at_10": round(float(np.mean(hits)), 4),
        "rss": {"after_load_vectors": rss_loaded, "after_ingest": rss_ingest,
                "after_queries": rss_query,
                "numpy_arrays_mb": round((base.nbytes + queries.nbytes) / 2**20, 1)},
        "disk_mb": round(disk / 2**20, 1),
        "cpus": os.cpu_count(),
    }
    report.write(result, a.out)


if __name__ == "__main__":
    main()

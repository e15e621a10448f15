#!/usr/bin/env python3
"""mem0 peer for the LoCoMo retrieval benchmark (raw turns, precomputed vectors).

What it measures: evidence hit-rate recall@1/5/10 of mem0's own search over the
raw LoCoMo turns, per question category and overall, plus add throughput and
search latency. Vectors are not computed here: VECTORS.jsonl (lines
{"text": ..., "vector": [384 floats]}, all-MiniLM-L6-v2 as in Engram) must hold
every string mem0 will embed: each memory "<speaker>: <text>" (the turn's text
verbatim, surrounding whitespace included) and each question as mem0 passes it
to the embedder (stripped; a file key is also registered stripped). Use
--dump-texts FILE to write the exact list of needed strings.

How:
  * mem0ai's Memory (sync) with a local vector store on a temp path: ChromaDB
    (embedded, Rust core; mem0's default l2 space and HNSW settings) by default,
    or --store qdrant (qdrant-client local mode: exact search, but filters are
    evaluated in pure Python, so search is slow); history DB in the temp dir,
    telemetry off. The embedder is replaced by a lookup table that raises
    on any text not in VECTORS.jsonl; the LLM is replaced by an object that
    raises if touched (infer=False must never call it). A dummy OPENAI_API_KEY
    is set only so the default config can be constructed.
  * one user_id per conversation (all in one collection, as in production);
    each turn is one m.add("<speaker>: <text>", user_id=..., infer=False,
    metadata={"dia_id", "session", "session_date"}). Afterwards get_all checks
    that mem0 holds exactly one verbatim memory per turn (no dedupe, no drops).
  * every question with a non-empty evidence list: m.search(question,
    filters={"user_id": ...}, top_k=10, threshold=0.0); a question is a hit at
    k if any of its evidence dia_ids is among the top k results' dia_id.
    Evidence ids are normalised: whitespace stripped, split on ';' or ',',
    "D:11:26" -> "D11:26". Ids that still match no turn are reported; such a
    question counts (as a miss unless another of its ids hits).
Categories: 1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop, 5 adversarial.

Usage: mem0_locomo.py --locomo locomo-dev.json --vectors VECTORS.jsonl --out result.json
       [--store qdrant|chroma] [--dump-texts needed.jsonl]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from locomo_data import Recall, memory_text, needed_texts, normalise_evidence, turns_of
import report


class NoLLM:
    def __getattr__(self, name):
        raise RuntimeError(f"mem0 touched the LLM ({name}) although infer=False")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--locomo", required=True)
    ap.add_argument("--vectors")
    ap.add_argument("--out")
    ap.add_argument("--store", choices=["qdrant", "chroma"], default="chroma")
    ap.add_argument("--dump-texts", help="write the strings that need vectors (JSONL) and exit")
    a = ap.parse_args()
    data = json.load(open(a.locomo))

    if a.dump_texts:
        with open(a.dump_texts, "w") as f:
            f.writelines(json.dumps(t) + "\n" for t in dict.fromkeys(needed_texts(data)))
        return
    if not (a.vectors and a.out):
        ap.error("--vectors and --out are required")

    tmp = tempfile.mkdtemp(prefix="mem0-locomo-")
    os.environ["MEM0_TELEMETRY"] = "False"
    os.environ["MEM0_DIR"] = os.path.join(tmp, "mem0home")
    os.environ.setdefault("OPENAI_API_KEY", "sk-dummy-never-used")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    import importlib.metadata
    from mem0 import Memory
    from mem0.embeddings.base import EmbeddingBase

    table = {}
    with open(a.vectors) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                table[r["text"]] = r["vector"]
    for k in list(table):
        table.setdefault(k.strip(), table[k])
    dims = len(next(iter(table.values())))
    missing = [t for t in needed_texts(data) if t not in table]
    if missing:
        sys.exit(f"{len(missing)} texts have no vector in {a.vectors}, e.g. {missing[:3]!r} "
                 f"(write the needed list with --dump-texts)")

    class LookupEmbedding(EmbeddingBase):
        calls = 0

        def embed(self, text, memory_action=None):
            LookupEmbedding.calls += 1
            try:
                return table[text]
            except KeyError:
                raise KeyError(f"no vector for text {text!r} ({memory_action})") from None

    # otherwise mem0's defaults (chroma: its default l2 space and HNSW settings)
    store_cfg = {"collection_name": "locomo", "path": os.path.join(tmp, a.store)}
    if a.store == "qdrant":
        store_cfg["embedding_model_dims"] = dims
    config = {
        "vector_store": {"provider": a.store, "config": store_cfg},
        "llm": {"provider": "openai", "config": {"api_key": "sk-dummy-never-used"}},
        "embedder": {"provider": "openai", "config": {"api_key": "sk-dummy-never-used",
                                                      "embedding_dims": dims}},
        "history_db_path": os.path.join(tmp, "history.db"),
    }
    try:
        m = Memory.from_config(config)
        m.embedding_model = LookupEmbedding()
        m.llm = NoLLM()

        # ingest
        add_s, add_cpu, per_conv, rewritten, unmatched = 0.0, 0.0, {}, {}, {}
        dia_ids = {}
        for c in data:
            uid = c["sample_id"]
            turns = turns_of(c["conversation"])
            dia_ids[uid] = {t["dia_id"].strip() for _, _, t in turns}
            given = []
            for s, date, t in turns:
                text = memory_text(t)
                given.append(text)
                t0, c0 = time.perf_counter(), time.process_time()
                m.add(text, user_id=uid, infer=False,
                      metadata={"dia_id": t["dia_id"].strip(), "session": s, "session_date": date})
                add_s += time.perf_counter() - t0
                add_cpu += time.process_time() - c0
            held = m.get_all(filters={"user_id": uid}, top_k=100000)["results"]
            held_texts = sorted(h["memory"] for h in held)
            per_conv[uid] = {"turns_given": len(given), "memories_held": len(held),
                             "verbatim": held_texts == sorted(given),
                             "held_dia_ids_distinct": len({(h.get("metadata") or {}).get("dia_id")
                                                           for h in held})}
        n_turns = sum(v["turns_given"] for v in per_conv.values())

        # search
        rec = Recall()
        lat, no_match_q = [], 0
        returned_lens = []
        search_cpu0 = time.process_time()
        for c in data:
            uid = c["sample_id"]
            for q in c["qa"]:
                if not q.get("evidence"):
                    continue
                ev = normalise_evidence(q["evidence"])
                if ev != [e.strip() for e in q["evidence"]]:
                    rewritten[f"{uid}:{q['evidence']}"] = ev
                bad = [e for e in ev if e not in dia_ids[uid]]
                for e in bad:
                    unmatched.setdefault(uid, []).append(e)
                if len(bad) == len(ev):
                    no_match_q += 1
                t0 = time.perf_counter()
                res = m.search(q["question"], filters={"user_id": uid}, top_k=10,
                               threshold=0.0)["results"]
                lat.append((time.perf_counter() - t0) * 1000)
                returned_lens.append(len(res))
                got = [(r.get("metadata") or {}).get("dia_id") for r in res]
                rec.add(q["category"], ev, got)
        search_cpu = time.process_time() - search_cpu0
        store_config = None
        if a.store == "chroma":
            store_config = getattr(m.vector_store.collection, "configuration_json", None)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    recall = rec.table()

    bm25 = bool(getattr(m.vector_store, "_bm25_encoder", None))
    try:
        import spacy  # noqa: F401
        spacy_ok = True
    except ImportError:
        spacy_ok = False
    result = {
        "system": "mem0",
        "version": importlib.metadata.version("mem0ai"),
        "vector_store": f"{a.store} (local, embedded, temp dir)",
        "vector_store_version": importlib.metadata.version(
            "qdrant-client" if a.store == "qdrant" else "chromadb"),
        "vector_store_config": store_config,
        "mode": "infer=False, raw turns, search(top_k=10, threshold=0.0, rerank=False)",
        "retrieval_signals": {"semantic": True, "bm25": bm25,
                              "entity_boost": False,
                              "note": "mem0 adds BM25 only with qdrant + fastembed (Qdrant/bm25 "
                                      "from the model hub); entity boosts need spaCy and entities "
                                      "linked at add time, which infer=False never does"},
        "spacy_installed": spacy_ok,
        "embedding": {"source": os.path.abspath(a.vectors), "dims": dims,
                      "lookups": LookupEmbedding.calls},
        "recall": recall,
        "conversations": per_conv,
        "ingest": {"turns": n_turns, "seconds": round(add_s, 3),
                   "cpu_seconds": round(add_cpu, 3),
                   "turns_per_s": round(n_turns / add_s, 1),
                   "note": "one m.add per turn; includes the vector store's and mem0's "
                           "history-DB commits (fsync: wall >> cpu means disk-bound); "
                           "embedding is a dict lookup"},
        "search": {"queries": len(lat), "cpu_seconds": round(search_cpu, 3),
                   "p50_ms": round(float(np.percentile(lat, 50)), 3),
                   "p99_ms": round(float(np.percentile(lat, 99)), 3),
                   "mean_ms": round(float(np.mean(lat)), 3),
                   "min_results_returned": min(returned_lens)},
        "evidence": {"normalisation": "strip whitespace; split on ';' or ','; 'D:n:m' -> 'Dn:m'",
                     "rewritten": rewritten, "unmatched_ids": unmatched,
                     "questions_with_no_matching_id": no_match_q},
    }
    report.write(result, a.out)


if __name__ == "__main__":
    main()

"""sentence-transformers (PyTorch, CPU) measured the way examples/model_bench.rs
measures Engram's local model, on the same texts (`make bench-model`):

- throughput: every text of TURNS through `encode(batch_size=32)` (which sorts
  by length itself), model load excluded;
- query latency: each text of QUERIES encoded alone, one after another, p50 /
  p99 in ms after 20 warm-up queries;
- vectors of TURNS then QUERIES written to OUT as JSON lines, in input order.

Prints one JSON object. Usage: st_model.py MODEL_DIR TURNS.jsonl QUERIES.jsonl OUT.jsonl
"""
import json
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402


def lines(path):
    with open(path) as f:
        return [json.loads(x) for x in f if x.strip()]


def main():
    model_dir, turns_path, queries_path, out = sys.argv[1:5]
    turns, queries = lines(turns_path), lines(queries_path)
    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = 256  # the model card's setting (the directory holds no sentence-transformers config)
    with torch.inference_mode():
        t = time.perf_counter()
        tv = model.encode(turns, batch_size=32, normalize_embeddings=True)
        secs = time.perf_counter() - t
        for q in queries[:20]:
            model.encode([q], normalize_embeddings=True)
        ms, qv = [], []
        for q in queries:
            t = time.perf_counter()
            qv.append(model.encode([q], normalize_embeddings=True)[0])
            ms.append((time.perf_counter() - t) * 1e3)
    with open(out, "w") as f:
        for v in list(tv) + qv:
            f.write(json.dumps([float(x) for x in v]) + "\n")
    ms.sort()
    pick = lambda p: ms[round((len(ms) - 1) * p)]  # noqa: E731
    print(json.dumps({
        "texts": len(turns), "seconds": secs, "texts_per_s": len(turns) / secs,
        "queries": len(queries), "query_p50_ms": pick(0.5), "query_p99_ms": pick(0.99),
        "query_mean_ms": statistics.mean(ms), "torch": torch.__version__, "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()

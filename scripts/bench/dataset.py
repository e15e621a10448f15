"""The search benchmarks' dataset, as gen_vectors.py writes it: vectors,
queries, exact top-10, and texts, loaded from its directory."""

import json
from types import SimpleNamespace

import numpy as np


def load(d):
    """`dims`, `base` (n x dims), `queries`, `truth` (queries x 10),
    `texts` and `query_texts` of the dataset in directory `d`."""
    dims = json.load(open(f"{d}/meta.json"))["dims"]
    return SimpleNamespace(
        dims=dims,
        base=np.fromfile(f"{d}/base.f32", dtype="<f4").reshape(-1, dims),
        queries=np.fromfile(f"{d}/queries.f32", dtype="<f4").reshape(-1, dims),
        truth=np.fromfile(f"{d}/truth.i32", dtype="<i4").reshape(-1, 10),
        texts=[json.loads(line) for line in open(f"{d}/texts.jsonl")],
        query_texts=[json.loads(line) for line in open(f"{d}/query_texts.jsonl")],
    )

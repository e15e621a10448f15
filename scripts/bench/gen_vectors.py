#!/usr/bin/env python3
"""Deterministic synthetic vector + text dataset for the search benchmarks.

Writes to --out DIR (all little-endian, no headers):
  base.f32           n x dims float32, unit length
  queries.f32        queries x dims float32, unit length (not copies of base rows)
  truth.i32          queries x 10 int32: exact top-10 base indices by inner product
                     (numpy brute force in float64, chunked), best first
  texts.jsonl        one JSON string per base vector: 6-14 words
  query_texts.jsonl  one JSON string per query: 3-6 words, biased towards the
                     words of the text of its nearest base vector
  meta.json          parameters and measured properties (cosines, tie gaps, timings)

Distributions:
  clustered (default): --clusters random unit centres; each vector is
    normalise(centre + s * g) with g ~ N(0, I/dims), so |g| ~ 1 and the expected
    cosine between two members of one cluster is 1/(1+s^2); s is chosen from
    --intra-cos (default 0.5). Random pairs have cosine ~ 0. Cluster sizes are
    mildly skewed (lognormal weights), like topics in real sentence embeddings.
  uniform: normalised Gaussian vectors (uniform on the sphere).

Texts: a fixed synthetic vocabulary of ~5000 pronounceable words (built from
syllables with the seed); words are drawn Zipf-like (p ~ 1/rank). In the
clustered distribution half of a text's words come from its cluster's 24 topic
words, so words and vectors agree the way they do in real data.

Usage: gen_vectors.py --n 100000 --queries 1000 --dims 384 --seed 7 --out DIR
"""
import argparse
import json
import os
import time

import numpy as np

K = 10
ONSETS = ["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t",
          "v", "w", "z", "br", "ch", "cl", "dr", "fl", "gr", "pl", "pr", "sh", "st", "th", "tr"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "y"]
CODAS = ["", "", "", "n", "r", "s", "l", "m", "t", "nd", "rk", "st"]


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def vocabulary(rng, size):
    words, seen = [], set()
    while len(words) < size:
        n = int(rng.choice(3, p=[0.25, 0.55, 0.2])) + 1
        w = "".join(ONSETS[rng.integers(len(ONSETS))] + VOWELS[rng.integers(len(VOWELS))]
                    for _ in range(n)) + CODAS[rng.integers(len(CODAS))]
        if len(w) >= 3 and w not in seen:
            seen.add(w)
            words.append(w)
    return words


def draw_vectors(rng, count, dims, centres, weights, noise):
    if centres is None:
        return unit(rng.standard_normal((count, dims))).astype(np.float32), None
    labels = rng.choice(len(centres), size=count, p=weights)
    out = np.empty((count, dims), np.float32)
    for lo in range(0, count, 20000):  # bounded temporaries
        hi = min(count, lo + 20000)
        g = rng.standard_normal((hi - lo, dims)) / np.sqrt(dims)
        out[lo:hi] = unit(centres[labels[lo:hi]] + noise * g)
    return out, labels


def exact_topk(base, queries, k):
    """Top-k (and the (k+1)-th score, to measure ties) by inner product, float64."""
    idx = np.empty((len(queries), k), np.int32)
    gap = np.empty(len(queries))
    q64 = queries.astype(np.float64)
    chunk = 20000
    for qlo in range(0, len(queries), 250):
        qs = q64[qlo:qlo + 250]
        best_s = np.full((len(qs), 0), 0.0)
        best_i = np.zeros((len(qs), 0), np.int64)
        for lo in range(0, len(base), chunk):
            s = qs @ base[lo:lo + chunk].astype(np.float64).T
            top = np.argpartition(-s, k, axis=1)[:, :k + 1]
            best_s = np.concatenate([best_s, np.take_along_axis(s, top, 1)], 1)
            best_i = np.concatenate([best_i, top + lo], 1)
        order = np.argsort(-best_s, axis=1, kind="stable")[:, :k + 1]
        s_sorted = np.take_along_axis(best_s, order, 1)
        idx[qlo:qlo + len(qs)] = np.take_along_axis(best_i, order[:, :k], 1)
        gap[qlo:qlo + len(qs)] = s_sorted[:, k - 1] - s_sorted[:, k]
    return idx, gap


def pair_cosines(rng, x, labels, pairs=20000):
    a, b = rng.integers(len(x), size=(2, pairs))
    rand = np.einsum("ij,ij->i", x[a], x[b])
    res = {"random_pairs_mean": float(rand.mean()), "random_pairs_std": float(rand.std())}
    if labels is not None:
        order = np.argsort(labels, kind="stable")
        lab = labels[order]
        starts = np.searchsorted(lab, lab, "left")
        ends = np.searchsorted(lab, lab, "right")
        pick = rng.integers(len(x), size=pairs)
        first = order[pick]
        partner_pos = starts[pick] + rng.integers(0, 1 << 30, size=pairs) % (ends[pick] - starts[pick])
        second = order[partner_pos]
        keep = first != second
        same = np.einsum("ij,ij->i", x[first[keep]], x[second[keep]])
        res.update(same_cluster_mean=float(same.mean()), same_cluster_std=float(same.std()),
                   same_cluster_pairs=int(keep.sum()))
    res["pairs"] = pairs
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--dims", type=int, default=384)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--distribution", choices=["clustered", "uniform"], default="clustered")
    ap.add_argument("--clusters", type=int, default=2000)
    ap.add_argument("--intra-cos", type=float, default=0.5,
                    help="target mean cosine between two members of one cluster")
    ap.add_argument("--vocab", type=int, default=5000)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    t0 = time.time()
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)

    centres = weights = None
    noise = None
    if a.distribution == "clustered":
        centres = unit(rng.standard_normal((a.clusters, a.dims)))
        weights = rng.lognormal(0.0, 0.5, a.clusters)
        weights /= weights.sum()
        noise = float(np.sqrt(1.0 / a.intra_cos - 1.0))
    base, base_lab = draw_vectors(rng, a.n, a.dims, centres, weights, noise)
    queries, q_lab = draw_vectors(rng, a.queries, a.dims, centres, weights, noise)
    t_vec = time.time() - t0

    truth, gap = exact_topk(base, queries, K)
    t_truth = time.time() - t0 - t_vec

    # texts
    words = np.array(vocabulary(rng, a.vocab))
    zipf = 1.0 / np.arange(1, a.vocab + 1)
    zipf /= zipf.sum()
    topics = (rng.choice(np.arange(a.vocab // 10, a.vocab), size=(a.clusters, 24))
              if base_lab is not None else None)
    lens = rng.integers(6, 15, size=a.n)
    glob = rng.choice(a.vocab, size=(a.n, 14), p=zipf)
    if topics is not None:
        use_topic = rng.random((a.n, 14)) < 0.5
        tw = topics[base_lab[:, None], rng.integers(0, 24, size=(a.n, 14))]
        glob = np.where(use_topic, tw, glob)
    texts = [" ".join(words[glob[i, :lens[i]]]) for i in range(a.n)]

    qlens = rng.integers(3, 7, size=a.queries)
    qtexts = []
    for qi in range(a.queries):
        near = texts[truth[qi, 0]].split()
        picks = rng.permutation(len(near))
        out = []
        for j in range(qlens[qi]):
            if rng.random() < 0.75 and j < len(picks):
                out.append(near[picks[j]])
            else:
                out.append(str(words[rng.choice(a.vocab, p=zipf)]))
        qtexts.append(" ".join(out))

    base.astype("<f4").tofile(os.path.join(a.out, "base.f32"))
    queries.astype("<f4").tofile(os.path.join(a.out, "queries.f32"))
    truth.astype("<i4").tofile(os.path.join(a.out, "truth.i32"))
    for name, lines in (("texts.jsonl", texts), ("query_texts.jsonl", qtexts)):
        with open(os.path.join(a.out, name), "w") as f:
            f.writelines(json.dumps(t) + "\n" for t in lines)

    meta = {
        "generator": "scripts/bench/gen_vectors.py",
        "n": a.n, "queries": a.queries, "dims": a.dims, "seed": a.seed, "k": K,
        "distribution": a.distribution,
        "files": {
            "base.f32": f"float32 little-endian [{a.n}, {a.dims}], unit length",
            "queries.f32": f"float32 little-endian [{a.queries}, {a.dims}], unit length",
            "truth.i32": f"int32 little-endian [{a.queries}, {K}], exact top-{K} base indices "
                         "by inner product (float64 brute force), best first",
            "texts.jsonl": "one JSON string per base vector, 6-14 words",
            "query_texts.jsonl": "one JSON string per query, 3-6 words; each word with p=0.75 "
                                 "from the text of the query's exact nearest base vector",
        },
        "clusters": a.clusters if centres is not None else None,
        "cluster_weights": "lognormal(0, 0.5), normalised" if centres is not None else None,
        "noise_scale": noise,
        "target_intra_cluster_cosine": a.intra_cos if centres is not None else None,
        "measured_cosine_base": pair_cosines(rng, base, base_lab),
        "query_to_nearest_base_cosine_mean": float(np.einsum(
            "ij,ij->i", queries, base[truth[:, 0]]).mean()),
        "query_to_10th_base_cosine_mean": float(np.einsum(
            "ij,ij->i", queries, base[truth[:, K - 1]]).mean()),
        "truth_gap_10th_11th": {"min": float(gap.min()), "median": float(np.median(gap)),
                                "queries_below_1e-6": int((gap < 1e-6).sum())},
        "vocabulary": {"size": a.vocab, "zipf_exponent": 1.0,
                       "cluster_topic_words": 24 if topics is not None else 0,
                       "topic_word_share": 0.5 if topics is not None else 0.0,
                       "sample": words[:12].tolist()},
        "numpy": np.__version__,
        "seconds": {"vectors": round(t_vec, 2), "truth": round(t_truth, 2),
                    "total": round(time.time() - t0, 2)},
    }
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()

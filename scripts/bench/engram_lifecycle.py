#!/usr/bin/env python3
"""Engram's memory lifecycle over HTTP: sessions, distillation and recall (issue 4).

Subcommands:
  locomo  Replays every LoCoMo conversation session by session through
          POST /v1/sessions/{id}/turns (distillation on, the extractive
          distiller), distils each session's remainder when it ends, waits for
          the embeddings, then asks every question with evidence through
          POST /v1/recall (limit 10, token_budget 1000) and counts how often a
          memory distilled from an evidence turn reaches the returned context.
          Also: the turn ingest rate with distillation, how many evidence turns
          were kept by distillation at all, and off-topic questions
          (data/offtopic_questions.txt, asked of every conversation): how often
          their context is empty. Every question is asked twice, as the server
          is configured and with relevance_floor 0, which gives the hit rate
          and the off-topic share at every floor (the calibration curve).
  recall  Writes 10 000 episodic + 10 000 semantic memories (caller vectors
          from the search dataset) and times POST /v1/recall (the server embeds
          each query) beside POST /v1/memories/search on the same queries.
  steady  A steady mixed load (turn appends, recalls, citations) for a given
          time; samples the server's RSS every 10 s.
"""
import argparse
import json
import os
import re
import time

import numpy as np

import report
from engram_client import Client, pending_embeddings, rss_mb
from locomo_data import CATEGORIES, questions, turns_of

MONTHS = {m: i for i, m in enumerate(["January", "February", "March", "April", "May", "June", "July", "August",
                                      "September", "October", "November", "December"], 1)}


def locomo_time(s):
    """'1:56 pm on 8 May, 2023' -> '2023-05-08T13:56:00Z'."""
    m = re.match(r"\s*(\d+):(\d+)\s*(am|pm)\s+on\s+(\d+)\s+(\w+),?\s+(\d{4})", s)
    if not m:
        return None
    h, mi, ap, d, mon, y = m.groups()
    h = int(h) % 12 + (12 if ap == "pm" else 0)
    return f"{y}-{MONTHS[mon]:02d}-{int(d):02d}T{h:02d}:{int(mi):02d}:00Z"


def percentiles(lat):
    return {"p50_ms": round(float(np.percentile(lat, 50)), 2), "p99_ms": round(float(np.percentile(lat, 99)), 2),
            "mean_ms": round(float(np.mean(lat)), 2), "n": len(lat)}


def cmd_locomo(a, client):
    data = json.load(open(a.locomo))
    n_turns, distilled_ids = 0, 0
    started = time.perf_counter()
    for c in data:
        conv, sid = c["conversation"], c["sample_id"]
        ns = ["locomo", sid]
        speakers = {conv["speaker_a"]: "user", conv["speaker_b"]: "assistant"}
        by_session = {}
        for s, date, t in turns_of(conv):
            by_session.setdefault(s, (date, []))[1].append(t)
        for s, (date, turns) in by_session.items():
            at = locomo_time(date)
            body = [{"role": speakers.get(t["speaker"], "user"), "content": t["text"],
                     "metadata": {"speaker": t["speaker"], "dia_id": t["dia_id"].strip()}, **({"at": at} if at else {})}
                    for t in turns]
            session = f"{sid}-s{s}"
            # A client sends turns as they happen: a few at a time.
            for i in range(0, len(body), a.turns_per_call):
                out = client.post(f"/v1/sessions/{session}/turns", {"namespace": ns, "turns": body[i:i + a.turns_per_call]})
                distilled_ids += len(out["distilled"])
            distilled_ids += len(client.post(f"/v1/sessions/{session}/distill", {})["distilled"])
            n_turns += len(turns)
    written = time.perf_counter() - started
    while pending_embeddings(client, ["locomo"]) > 0:
        time.sleep(0.2)
    indexed = time.perf_counter() - started

    # Which turn each memory came from (the turn's dia_id is carried in its metadata).
    source = {}
    for c in data:
        cursor = ""
        while True:
            page = client.get(f"/v1/memories?namespace=locomo/{c['sample_id']}&limit=1000{cursor}")
            for m in page["memories"]:
                source[m["id"]] = (c["sample_id"], m["metadata"].get("dia_id"))
            if not page.get("next_cursor"):
                break
            cursor = f"&cursor={page['next_cursor']}"
    kept = {v for v in source.values()}

    def context_hit(out, evidence):
        in_context = [r for r in out["results"] if r.get("id") and r["text"] in out["context"]]
        got = {source.get(r["id"], (None, None))[1] for r in in_context}
        return bool(got & set(evidence))

    hits, counts, covered, lat, intents = {}, {}, {}, [], {}
    curve_points = []  # (top_similarity, hit without a floor) per LoCoMo question
    for c in data:
        sid = c["sample_id"]
        for q, cat, evidence in questions(c):
            body = {"query": q, "namespace_prefix": ["locomo", sid], "limit": 10, "token_budget": a.token_budget}
            t0 = time.perf_counter()
            out = client.post("/v1/recall", body)
            lat.append((time.perf_counter() - t0) * 1000)
            intents[out["intent"]] = intents.get(out["intent"], 0) + 1
            hit = context_hit(out, evidence)
            bare = client.post("/v1/recall", {**body, "relevance_floor": 0})
            curve_points.append((bare.get("top_similarity") or 0.0, context_hit(bare, evidence)))
            any_kept = any((sid, e) in kept for e in evidence)
            for key in (str(cat), "overall"):
                counts[key] = counts.get(key, 0) + 1
                hits[key] = hits.get(key, 0) + hit
                covered[key] = covered.get(key, 0) + any_kept
    offtopic = [line.strip() for line in open(os.path.join(os.path.dirname(__file__), "data", "offtopic_questions.txt"))
                if line.strip()]
    off_points, off_empty = [], 0
    for c in data:
        for q in offtopic:
            body = {"query": q, "namespace_prefix": ["locomo", c["sample_id"]], "limit": 10, "token_budget": a.token_budget}
            off_empty += client.post("/v1/recall", body)["context"] == ""
            bare = client.post("/v1/recall", {**body, "relevance_floor": 0})
            off_points.append((bare.get("top_similarity") or 0.0, bare["context"] == ""))
    curve = []
    for f in [0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5]:
        curve.append({"floor": f,
                      "locomo_context_hit_rate": round(sum(h and t >= f for t, h in curve_points) / len(curve_points), 4),
                      "offtopic_empty_share": round(sum(e or t < f for t, e in off_points) / len(off_points), 4)})
    table = {}
    for key in ["overall"] + sorted(k for k in counts if k != "overall"):
        table[key] = {"context_hit_rate": round(hits[key] / counts[key], 4),
                      "evidence_distilled": round(covered[key] / counts[key], 4), "n": counts[key]}
        if key != "overall":
            table[key]["name"] = CATEGORIES[int(key)]
    return {
        "turns": n_turns, "memories": len(source), "distilled_in_requests": distilled_ids,
        "ingest": {"write_seconds": round(written, 2), "turns_per_s_acknowledged": round(n_turns / written, 1),
                   "indexed_seconds": round(indexed, 2), "turns_per_s_until_embedded": round(n_turns / indexed, 1)},
        "recall": table, "recall_latency": percentiles(lat), "intents": intents, "token_budget": a.token_budget,
        "offtopic": {"questions": len(off_points), "empty_context_share": round(off_empty / len(off_points), 4)},
        "relevance_floor_curve": curve,
    }


def cmd_recall(a, client):
    d = a.data
    dims = json.load(open(f"{d}/meta.json"))["dims"]
    base = np.fromfile(f"{d}/base.f32", dtype="<f4").reshape(-1, dims)[:2 * a.per_tier]
    texts = [json.loads(line) for line, _ in zip(open(f"{d}/texts.jsonl"), range(2 * a.per_tier))]
    qtexts = [json.loads(line) for line in open(f"{d}/query_texts.jsonl")][:a.queries]
    started = time.perf_counter()
    for i in range(0, len(base), 1000):
        batch = [{"namespace": ["bench", f"u{j % 10}"], "text": texts[j], "embedding": base[j].tolist(),
                  "tier": "episodic" if j < a.per_tier else "semantic"} for j in range(i, min(i + 1000, len(base)))]
        client.post("/v1/memories", {"memories": batch})
    ingest = time.perf_counter() - started
    for q in qtexts[:50]:
        client.post("/v1/recall", {"query": q, "namespace_prefix": ["bench"]})
    out = {}
    for name, path, body in (
        ("recall", "/v1/recall", lambda q: {"query": q, "namespace_prefix": ["bench"], "limit": 10}),
        ("search (hybrid, same queries)", "/v1/memories/search",
         lambda q: {"query": q, "namespace_prefix": ["bench"], "limit": 10, "tiers": ["episodic", "semantic"]}),
    ):
        lat = []
        for q in qtexts:
            t0 = time.perf_counter()
            client.post(path, body(q))
            lat.append((time.perf_counter() - t0) * 1000)
        out[name] = percentiles(lat)
    return {"memories": {"episodic": a.per_tier, "semantic": a.per_tier}, "ingest_seconds": round(ingest, 2),
            "latency": out, "server_rss_mb": rss_mb(a.pid)}


def cmd_steady(a, client):
    data = json.load(open(a.locomo))
    turns = [(t["speaker"], t["text"]) for c in data for _, _, t in turns_of(c["conversation"])]
    qs = [q for c in data for q, _, _ in questions(c)]
    samples, i, ops = [], 0, {"turns": 0, "recalls": 0, "cites": 0}
    started = time.perf_counter()
    next_sample = 0.0
    while True:
        now = time.perf_counter() - started
        if now >= next_sample:
            samples.append({"t_s": round(now, 1), **rss_mb(a.pid)})
            next_sample += a.sample_every
        if now >= a.seconds:
            break
        # Each round: one turn into one of 50 rotating sessions, one recall, one citation.
        speaker, text = turns[i % len(turns)]
        session = f"steady-{i % 50}-{i // 5000}"
        client.post(f"/v1/sessions/{session}/turns", {"namespace": ["steady"], "turns": [
            {"role": "user", "content": text, "metadata": {"speaker": speaker}}]})
        ops["turns"] += 1
        out = client.post("/v1/recall", {"query": qs[i % len(qs)], "session_id": session, "limit": 5})
        ops["recalls"] += 1
        ids = [r["id"] for r in out["results"] if r.get("id")]
        if ids:
            client.post(f"/v1/memories/{ids[0]}/cite", {})
            ops["cites"] += 1
        i += 1
        if a.rate:
            time.sleep(max(0.0, i / a.rate - (time.perf_counter() - started)))
    rss = [s["VmRSS"] for s in samples]
    minute = max(1, int(60 / a.sample_every))
    first, last = float(np.median(rss[1:1 + minute])), float(np.median(rss[-minute:]))
    return {"seconds": a.seconds, "ops": ops, "rounds_per_s": round(i / a.seconds, 1),
            "rss_mb": {"first_minute_median": first, "last_minute_median": last,
                       "growth_mb": round(last - first, 1), "max": max(rss)},
            "samples": samples}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["locomo", "recall", "steady"])
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--locomo")
    ap.add_argument("--data", help="the search dataset (scripts/bench/gen_vectors.py)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--turns-per-call", type=int, default=2)
    ap.add_argument("--token-budget", type=int, default=1000)
    ap.add_argument("--per-tier", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--rate", type=float, default=20, help="rounds per second (0 = as fast as possible)")
    ap.add_argument("--sample-every", type=float, default=10)
    a = ap.parse_args()
    client = Client(a.url)
    result = {"locomo": cmd_locomo, "recall": cmd_recall, "steady": cmd_steady}[a.command](a, client)
    result["command"] = a.command
    result["cpus"] = os.cpu_count()
    report.write(result, a.out)


if __name__ == "__main__":
    main()

"""Draws the benchmark plots into docs/bench (PNG): throughput against
connections from scripts/bench.sh's raw rows (.bench/http.tsv), and search
latency against corpus size from scripts/bench-growth.sh (.bench/growth.json).
Each input is optional; a plot is drawn for each one given."""

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def throughput(tsv, out):
    """req/s against connections, idle, one line per workload."""
    series = {}
    for line in open(tsv):
        situation, workload, conns, rps, *_ = line.rstrip("\n").split("\t")
        if situation != "idle":
            continue
        series.setdefault(workload, {}).setdefault(int(conns), []).append(float(rps))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for workload, points in sorted(series.items()):
        xs = sorted(points)
        ys = [sorted(points[x])[len(points[x]) // 2] for x in xs]  # median of the rounds
        ax.plot(xs, ys, marker="o", linestyle="--" if workload.startswith("redis") else "-", label=workload)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("connections")
    ax.set_ylabel("requests/s (median of rounds)")
    ax.set_title("Throughput against connections, idle server (scripts/bench.sh)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out, "throughput-vs-connections.png")
    fig.savefig(path, dpi=110)
    print(path)


def growth(path_json, out):
    """p50 and p99 against corpus size, one line per system and search mode."""
    rows = json.load(open(path_json))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharey=True)
    for ax, stat in zip(axes, ("p50_ms", "p99_ms")):
        keys = sorted({(r["system"], r["mode"]) for r in rows})
        for system, mode in keys:
            pts = sorted((r["n"], r[stat]) for r in rows if r["system"] == system and r["mode"] == mode)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                    linestyle="--" if system == "chroma" else "-", label=f"{system} {mode}")
        ax.set_xscale("log")
        ax.set_xlabel("memories")
        ax.set_title(stat.replace("_ms", "") + " latency, in-process, k = 10")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("ms")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out, "latency-vs-corpus.png")
    fig.savefig(path, dpi=110)
    print(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--http", help=".bench/http.tsv from scripts/bench.sh")
    ap.add_argument("--growth", help=".bench/growth.json from scripts/bench-growth.sh")
    ap.add_argument("--out", default="docs/bench")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.http:
        throughput(a.http, a.out)
    if a.growth:
        growth(a.growth, a.out)


if __name__ == "__main__":
    main()

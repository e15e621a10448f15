#!/usr/bin/env python3
"""One client beside the load generator in scripts/bench-admission.sh: every
20 ms, GET /healthz and one keyword search, each on a fresh connection,
timing each answer; and the server's RSS (VmRSS) once a second. Prints one
JSON object: health p50/p99, searches admitted (200) and shed (503), the
admitted searches' p50/p99, and RSS min/max in MB.

Usage: overload_probe.py --url http://127.0.0.1:PORT --pid PID --duration S
"""
import argparse
import http.client
import json
import time
import urllib.parse


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] if xs else None


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def timed(host, port, method, path, body=None):
    t = time.perf_counter()
    c = http.client.HTTPConnection(host, port, timeout=30)
    c.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
    status = c.getresponse().status
    c.close()
    return status, (time.perf_counter() - t) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--duration", type=float, required=True)
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    health, admitted, shed, rss, statuses = [], [], 0, [], {}
    stop = time.time() + a.duration
    next_rss = 0.0
    body = json.dumps({"query": "garden", "mode": "keyword", "limit": 10})
    while time.time() < stop:
        if time.time() >= next_rss:
            rss.append(rss_mb(a.pid))
            next_rss = time.time() + 1
        s, ms = timed(u.hostname, u.port, "GET", "/healthz")
        if s == 200:
            health.append(ms)
        s, ms = timed(u.hostname, u.port, "POST", "/v1/memories/search", body)
        statuses[str(s)] = statuses.get(str(s), 0) + 1
        if s == 200:
            admitted.append(ms)
        elif s == 503:
            shed += 1
        time.sleep(0.02)
    print(json.dumps({
        "health_p50_ms": pct(health, 50), "health_p99_ms": pct(health, 99), "health_ok": len(health),
        "search_admitted": len(admitted), "search_shed": shed,
        "search_p50_ms": pct(admitted, 50), "search_p99_ms": pct(admitted, 99),
        "rss_min_mb": min(rss), "rss_max_mb": max(rss), "search_statuses": statuses,
    }))


main()

"""A keep-alive JSON client for Engram's HTTP API, and the server's memory use,
shared by the benchmark drivers."""

import http.client
import json
import urllib.parse


class Client:
    """One keep-alive connection; non-2xx answers raise."""

    def __init__(self, url, key=None):
        u = urllib.parse.urlparse(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
        self.headers = {"Content-Type": "application/json"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"

    def call(self, method, path, body=None):
        raw = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
        self.conn.request(method, path, raw, self.headers)
        r = self.conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path} -> {r.status}: {data[:500]!r}")
        return json.loads(data) if data else None

    def post(self, path, body):
        return self.call("POST", path, body)

    def get(self, path):
        return self.call("GET", path)


def rss_mb(pid):
    """The process's resident memory now (VmRSS) and at its peak (VmHWM), in MB,
    and what the resident part is: anonymous (heap) or file pages (the binary,
    libraries, mapped files)."""
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            fields[name] = round(int(rest.split()[0]) / 1024, 1)
    return fields


def pending_embeddings(client, prefix):
    """Memories under `prefix` not yet findable by meaning."""
    out = client.post("/v1/memories/search", {"query": "pending", "namespace_prefix": prefix, "mode": "keyword", "limit": 1})
    return out["pending_embeddings"]

"""Starts a real engram binary on a temp data dir and a free port for each test module.

With ENGRAM_TEST_BACKEND=postgres the server stores in a fresh database on the
PostgreSQL test server named by ENGRAM_TEST_POSTGRES_URL (make test runs these
suites on both backends)."""

import os
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
ENGRAM_BIN = os.environ.get("ENGRAM_BIN", os.path.join(ROOT, "target", "debug", "engram"))
# The real local model (make test fetches it first).
MODEL_DIR = os.environ.get("ENGRAM_TEST_MODEL_DIR", os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))


def _store_env() -> dict:
    """The store settings of this run: SQLite by default, else a fresh PostgreSQL database."""
    backend = os.environ.get("ENGRAM_TEST_BACKEND", "sqlite")
    if backend == "sqlite":
        return {}
    if backend != "postgres":
        raise RuntimeError(f"ENGRAM_TEST_BACKEND={backend!r}: use sqlite or postgres")
    import psycopg

    admin = os.environ.get("ENGRAM_TEST_POSTGRES_URL")
    if not admin:
        raise RuntimeError("ENGRAM_TEST_POSTGRES_URL is not set; make test starts a server (scripts/postgres.sh)")
    name = f"engram_c_{os.getpid()}_{time.time_ns() % 10**12}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base = admin.rsplit("/", 1)[0]
    return {"ENGRAM_STORE_URL": f"{base}/{name}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Engram:
    def __init__(self, data_dir: str):
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.store_env = _store_env()
        env = dict(
            os.environ,
            ENGRAM_SERVER_ACCESS_LOG="false",
            ENGRAM_EMBEDDER_MODEL_DIR=os.path.abspath(MODEL_DIR),
            **self.store_env,
        )
        self.proc = subprocess.Popen(
            [ENGRAM_BIN, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", data_dir],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("engram exited: " + self.proc.stderr.read().decode())
                time.sleep(0.05)
        raise RuntimeError("engram did not start")

    def cli(self, *args: str) -> str:
        env = dict(os.environ, **self.store_env)
        out = subprocess.run(
            [ENGRAM_BIN, *args, "--data-dir", self.data_dir], capture_output=True, text=True, check=True, env=env
        )
        return out.stdout.strip()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)


@pytest.fixture(scope="module")
def engram():
    if not os.path.exists(ENGRAM_BIN):
        pytest.fail(f"engram binary not found at {ENGRAM_BIN}; build it first (make test does)")
    with tempfile.TemporaryDirectory() as d:
        server = Engram(d)
        try:
            yield server
        finally:
            server.stop()

"""Engram's MCP tools driven by the official MCP Python SDK (`mcp` on PyPI):
over stdio (`engram mcp`) and over streamable HTTP (`POST /mcp`), with the
HTTP API's auth rules: initialize, list tools, remember, then recall finds it."""

import asyncio
import json
import os
import subprocess
import tempfile

import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from conftest import ENGRAM_BIN, MODEL_DIR, Engram, _store_env

TOOLS = {"remember", "recall", "search_memories", "get_memory", "update_memory", "forget", "add_turns", "get_session"}


def structured(result):
    assert not result.is_error, result.content
    return result.structured_content


async def exercise(session: ClientSession, ns: str, source: dict | None = None):
    init = await session.initialize()
    assert init.server_info.name == "engram"
    tools = await session.list_tools()
    assert {t.name for t in tools.tools} == TOOLS
    remember = next(t for t in tools.tools if t.name == "remember")
    assert set(remember.input_schema["required"]) == {"namespace", "text"}

    out = structured(await session.call_tool("remember", arguments={
        "namespace": ["users", ns], "text": "Maya is allergic to peanuts", "tier": "semantic"}))
    assert out["status"] == "created"
    if source is not None:
        assert out["memory"]["source"] == source, out["memory"]
    memory_id = out["memory"]["id"]

    recalled = structured(await session.call_tool("recall", arguments={
        "query": "What is Maya allergic to?", "namespace_prefix": ["users", ns]}))
    assert recalled["results"][0]["id"] == memory_id
    assert "allergic to peanuts" in recalled["context"]

    got = structured(await session.call_tool("get_memory", arguments={"id": memory_id}))
    assert got["text"] == "Maya is allergic to peanuts"
    updated = structured(await session.call_tool("update_memory", arguments={"id": memory_id, "patch": {"pinned": True}}))
    assert updated["pinned"] is True and updated["version"] == 2

    turns = structured(await session.call_tool("add_turns", arguments={
        "session_id": f"chat-{ns}", "namespace": ["users", ns],
        "turns": [{"role": "user", "content": "I moved to Lisbon last year."}]}))
    assert turns["turn_count"] == 1
    session_view = structured(await session.call_tool("get_session", arguments={"session_id": f"chat-{ns}"}))
    assert session_view["turns"][0]["content"] == "I moved to Lisbon last year."

    hits = structured(await session.call_tool("search_memories", arguments={"query": "peanuts", "mode": "keyword"}))
    assert [h["memory"]["id"] for h in hits["results"]] == [memory_id]

    # Domain errors come back as tool errors the model can read.
    bad = await session.call_tool("remember", arguments={"namespace": ["a/b"], "text": "x"})
    assert bad.is_error and "invalid_input" in bad.content[0].text
    missing = await session.call_tool("get_memory", arguments={"id": "0190a0a0-0000-7000-8000-000000000000"})
    assert missing.is_error and "not_found" in missing.content[0].text

    forgotten = structured(await session.call_tool("forget", arguments={"id": memory_id}))
    assert forgotten == {"deleted": memory_id}


def test_stdio():
    with tempfile.TemporaryDirectory() as d:
        params = StdioServerParameters(
            command=ENGRAM_BIN, args=["mcp", "--data-dir", d],
            env={"ENGRAM_EMBEDDER_MODEL_DIR": os.path.abspath(MODEL_DIR), "ENGRAM_LOG": "warn",
                 "ENGRAM_AGENT_ID": "desktop-assistant", **_store_env()})

        async def run():
            async with stdio_client(params) as (read, write):
                async with ClientSession(read, write) as session:
                    # Writes over stdio name the agent of ENGRAM_AGENT_ID (dev mode: no key).
                    await exercise(session, "stdio", {"kind": "api", "agent_id": "desktop-assistant"})

        asyncio.run(run())


def client_headers(key: str | None) -> dict:
    headers = {"x-agent-id": "mcp-tester"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


async def http_session(url: str, ns: str, key: str | None, key_id: str | None = None):
    # Writes record the caller and the agent it names (x-agent-id).
    headers = client_headers(key)
    source = {"kind": "api", "agent_id": "mcp-tester"}
    if key_id:
        source["by"] = f"key:{key_id}"
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as client:
        async with streamable_http_client(url + "/mcp", http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                await exercise(session, ns, source)


def test_streamable_http(engram):
    asyncio.run(http_session(engram.url, "http", None))


def test_http_and_stdio_follow_the_api_key_rules():
    with tempfile.TemporaryDirectory() as d:
        server = Engram(d)
        try:
            key = server.cli("keys", "create", "--tenant", "acme", "--scopes", "read,write")
            [listed] = [json.loads(line) for line in server.cli("keys", "list").splitlines()]
            # Without a key: 401 in the API's envelope, before any MCP message is read.
            r = httpx2.post(server.url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                            headers={"Accept": "application/json, text/event-stream"})
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
            asyncio.run(http_session(server.url, "keyed", key, listed["id"]))
        finally:
            server.stop()
        # stdio on a store with keys needs ENGRAM_API_KEY too.
        denied = subprocess.run([ENGRAM_BIN, "mcp", "--data-dir", d], input="", capture_output=True, text=True,
                                env=dict(os.environ, ENGRAM_EMBEDDER_PROVIDER="none", **server.store_env), timeout=60)
        assert denied.returncode == 1 and "key" in denied.stderr.lower(), denied.stderr


async def limited_session(url: str, key: str, outside_id: str):
    async with httpx2.AsyncClient(headers=client_headers(key), timeout=httpx2.Timeout(30, read=60)) as client:
        async with streamable_http_client(url + "/mcp", http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                mine = structured(await session.call_tool("remember", arguments={
                    "namespace": ["users", "alice"], "text": "Alice keeps bees"}))["memory"]["id"]
                refused = await session.call_tool("remember", arguments={"namespace": ["users", "bob"], "text": "x"})
                assert refused.is_error and "forbidden" in refused.content[0].text
                for tool, args in [("get_memory", {"id": outside_id}), ("forget", {"id": outside_id}),
                                   ("update_memory", {"id": outside_id, "patch": {"pinned": True}}),
                                   ("get_session", {"session_id": "chat-bob"})]:
                    r = await session.call_tool(tool, arguments=args)
                    assert r.is_error and "not_found" in r.content[0].text, (tool, r.content)
                r = await session.call_tool("add_turns", arguments={
                    "session_id": "chat-bob", "turns": [{"role": "user", "content": "hi"}]})
                assert r.is_error and "not_found" in r.content[0].text and "users" not in r.content[0].text, r.content
                hits = structured(await session.call_tool("search_memories", arguments={"query": "bees", "mode": "keyword"}))
                assert [h["memory"]["id"] for h in hits["results"]] == [mine]
                recalled = structured(await session.call_tool("recall", arguments={"query": "who keeps bees?"}))
                assert {r["id"] for r in recalled["results"]} == {mine}, recalled


def test_a_key_limited_to_namespaces_reaches_nothing_else_through_mcp():
    with tempfile.TemporaryDirectory() as d:
        server = Engram(d)
        try:
            admin = server.cli("keys", "create", "--tenant", "acme", "--scopes", "read,write")
            limited = server.cli("keys", "create", "--tenant", "acme", "--scopes", "read,write",
                                 "--namespaces", "users/alice,shared")
            listed = [json.loads(line) for line in server.cli("keys", "list").splitlines()]
            assert sorted(k.get("namespaces") is not None for k in listed) == [False, True], listed
            h = {"Authorization": f"Bearer {admin}"}
            bob = httpx2.post(server.url + "/v1/memories", headers=h, json={"memories": [
                {"namespace": ["users", "bob"], "text": "Bob keeps bees too"}]})
            assert bob.status_code == 201, bob.text
            turns = httpx2.post(server.url + "/v1/sessions/chat-bob/turns", headers=h, json={
                "namespace": ["users", "bob"], "turns": [{"role": "user", "content": "I keep bees"}]})
            assert turns.status_code == 200, turns.text
            asyncio.run(limited_session(server.url, limited, bob.json()["results"][0]["memory"]["id"]))
        finally:
            server.stop()

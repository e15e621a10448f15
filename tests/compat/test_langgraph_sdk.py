"""Drives a running engram with the store client of the real `langgraph-sdk` package."""

import time

import httpx
import pytest
from langgraph_sdk import get_client, get_sync_client


@pytest.fixture(scope="module")
def store(engram):
    return get_sync_client(url=engram.url, api_key=None).store


def test_put_get_delete(store):
    store.put_item(["users", "alice", "prefs"], key="drink", value={"name": "green tea", "sugar": False})
    item = store.get_item(["users", "alice", "prefs"], key="drink")
    assert item["namespace"] == ["users", "alice", "prefs"]
    assert item["key"] == "drink"
    assert item["value"] == {"name": "green tea", "sugar": False}
    assert item["created_at"] and item["updated_at"]

    store.put_item(["users", "alice", "prefs"], key="drink", value={"name": "oolong"})
    again = store.get_item(["users", "alice", "prefs"], key="drink")
    assert again["value"] == {"name": "oolong"}
    assert again["created_at"] == item["created_at"]

    store.delete_item(["users", "alice", "prefs"], key="drink")
    assert store.get_item(["users", "alice", "prefs"], key="drink") is None
    # Deleting what is not there is not an error, as in LangGraph.
    store.delete_item(["users", "alice", "prefs"], key="drink")


def test_search_with_filter_limit_offset(store):
    for i in range(7):
        store.put_item(["docs", "team"], key=f"d{i}", value={"title": f"Doc {i}", "rank": i, "kind": "even" if i % 2 == 0 else "odd"})
    store.put_item(["other"], key="x", value={"title": "Elsewhere", "rank": 100, "kind": "even"})

    evens = store.search_items(["docs"], filter={"kind": "even"}, limit=10)["items"]
    assert sorted(i["key"] for i in evens) == ["d0", "d2", "d4", "d6"]
    high = store.search_items(["docs"], filter={"rank": {"$gte": 5}})["items"]
    assert sorted(i["key"] for i in high) == ["d5", "d6"]

    page1 = store.search_items(["docs", "team"], limit=3, offset=0)["items"]
    page2 = store.search_items(["docs", "team"], limit=3, offset=3)["items"]
    page3 = store.search_items(["docs", "team"], limit=3, offset=6)["items"]
    keys = [i["key"] for i in page1 + page2 + page3]
    assert len(page1) == 3 and len(page2) == 3 and len(page3) == 1
    assert sorted(keys) == [f"d{i}" for i in range(7)]

    everything = store.search_items([], limit=100)["items"]
    assert {"x", "d0"} <= {i["key"] for i in everything}


def test_semantic_query_does_not_fail(store):
    store.put_item(["notes"], key="n1", value={"text": "Alice is allergic to peanuts"})
    store.put_item(["notes"], key="n2", value={"text": "Bob plays the cello"})
    res = store.search_items(["notes"], query="what is Alice allergic to?")["items"]
    assert res and res[0]["key"] == "n1"
    assert "score" in res[0]


def test_query_is_semantic_and_honours_index(store):
    # No word of the query is in any value: only meaning finds the item.
    store.put_item(["pets"], key="max", value={"about": "Max is a golden retriever puppy", "tag": "zzz"}, index=["about"])
    store.put_item(["pets"], key="tax", value={"about": "The tax return is due in April", "tag": "dog"}, index=["about"])
    store.put_item(["pets"], key="off", value={"about": "a dog and another dog"}, index=False)
    res = store.search_items(["pets"], query="which canine do I have", limit=3)["items"]
    keys = [i["key"] for i in res]
    assert keys[0] == "max", keys
    assert "off" not in keys, keys
    assert res[0]["score"] > res[1]["score"]


def test_list_namespaces(store):
    for ns in (["a", "b", "c"], ["a", "b", "d"], ["a", "x"], ["z", "b"]):
        store.put_item(ns, key="k", value={"v": 1})
    all_a = store.list_namespaces(prefix=["a"])["namespaces"]
    assert all_a == [["a", "b", "c"], ["a", "b", "d"], ["a", "x"]]
    assert store.list_namespaces(prefix=["a"], max_depth=2)["namespaces"] == [["a", "b"], ["a", "x"]]
    assert store.list_namespaces(suffix=["b"])["namespaces"] == [["z", "b"]]
    assert store.list_namespaces(prefix=["a"], limit=1, offset=1)["namespaces"] == [["a", "b", "d"]]


def test_ttl_and_refresh_ttl(store):
    # ttl is in minutes: 0.01 min = 0.6 s.
    store.put_item(["ttl"], key="read_often", value={"v": 1}, ttl=0.01)
    store.put_item(["ttl"], key="never_read", value={"v": 2}, ttl=0.01)
    for _ in range(4):
        time.sleep(0.25)
        assert store.get_item(["ttl"], key="read_often", refresh_ttl=True) is not None
    assert store.get_item(["ttl"], key="never_read", refresh_ttl=False) is None
    time.sleep(0.7)
    assert store.get_item(["ttl"], key="read_often", refresh_ttl=False) is None
    assert store.search_items(["ttl"])["items"] == []


def test_async_client_and_api_keys(engram):
    import asyncio

    secret = engram.cli("keys", "create", "--tenant", "acme", "--scopes", "read,write")

    async def run():
        keyed = get_client(url=engram.url, api_key=secret).store
        await keyed.put_item(["secure"], key="k", value={"owner": "acme"})
        got = await keyed.get_item(["secure"], key="k")
        assert got["value"] == {"owner": "acme"}
        anonymous = get_client(url=engram.url, api_key=None).store
        # Once a key exists the server leaves dev mode (within its 5 s auth cache).
        deadline = time.time() + 10
        while True:
            try:
                await anonymous.get_item(["secure"], key="k")
            except httpx.HTTPStatusError as e:
                assert e.response.status_code == 401
                break
            assert time.time() < deadline, "anonymous access still allowed"
            await asyncio.sleep(0.25)

    asyncio.run(run())


def test_errors_surface_as_http_errors(engram):
    store = get_sync_client(url=engram.url, api_key=None).store
    with pytest.raises(httpx.HTTPStatusError) as e:
        store.search_items(["docs"], filter={"$where": "1"})
    assert e.value.response.status_code in (400, 401)

"""The redis backend: restart persistence and cross-replica visibility (exact and semantic).

Each "replica" here is an in-process gateway with its own Gateway, store client and semantic stage
(its own FAISS index), so they share nothing but Redis — as two ingress replicas, or two
SemanticCache replicas, do. Everything is written under a per-test prefix in Redis db 7, and only
that prefix is deleted afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.cache_client import ADMIN, ask, eventually, vectors_within
from tests.support.services import REDIS_URL, redis_prefix


@pytest.fixture
def prefix() -> Iterator[str]:
    with redis_prefix() as p:
        yield p


def config(prefix: str, **cache: Any) -> dict[str, Any]:
    return {"providers": {"sandbox": {"type": "mock"}}, "default_provider": "sandbox",
            "gateway": {"admin_keys": [{"id": "ops", "key": "adm-key"}]},
            "cache": {"enabled": True, "backend": "redis", "url": REDIS_URL, "prefix": prefix,
                      "sync_interval_s": 0.1, **cache}}








def wait_idle(server: Any) -> None:
    deadline = time.time() + 10
    while server.gateway.cache.pending and time.time() < deadline:
        time.sleep(0.01)


def test_exact_entries_survive_a_restart(gateway_server, prefix):
    first = gateway_server(config(prefix))
    status, answer, _ = ask(first.base_url, "persist me")
    assert status == "MISS"
    first.stop()
    second = gateway_server(config(prefix))  # a new process state: new store client, empty memory
    status, again, _ = ask(second.base_url, "persist me")
    assert status == "HIT" and again.choices[0].message.content == answer.choices[0].message.content
    stats = httpx.get(second.url + "/v1/admin/cache/stats", headers=ADMIN).json()
    assert stats["backend"] == "redis" and stats["entries"] == 1 and stats["hits"] == 1


def test_semantic_index_is_rebuilt_after_a_restart(gateway_server, prefix):
    first = gateway_server(config(prefix, mode="semantic"))
    assert ask(first.base_url, "How do I install Docker on Ubuntu?")[0] == "MISS"
    wait_idle(first)
    first.stop()
    second = gateway_server(config(prefix, mode="semantic"))
    assert ask(second.base_url, "What are the steps to install Docker on Ubuntu?")[0] == "SEMANTIC_HIT"
    stats = httpx.get(second.url + "/v1/admin/cache/stats", headers=ADMIN).json()
    assert stats["semantic"]["vectors"] == 1


def test_entries_are_visible_across_replicas_through_redis(gateway_server, prefix):
    a = gateway_server(config(prefix, mode="semantic"))
    b = gateway_server(config(prefix, mode="semantic"))
    # warm both replicas' models and indexes
    ask(a.base_url, "warm up a")
    ask(b.base_url, "warm up b")
    assert ask(a.base_url, "What is the capital of Norway?")[0] == "MISS"
    # bounded waits, not timing claims (the sync interval's figure is in bench/results/cache.md)
    eventually(b.base_url, "What is the capital of Norway?", "HIT", within=15.0)
    vectors_within(b.url, 3, 15.0)  # a's insert reached b's index through redis
    assert ask(b.base_url, "Which city is the capital of Norway?")[0] == "SEMANTIC_HIT"
    # invalidating through b removes the entry (and its vector) for a too
    r = httpx.post(b.url + "/v1/admin/cache/invalidate", json={"pattern": "norway"}, headers=ADMIN)
    assert r.json()["removed"] == 1
    assert ask(a.base_url, "What is the capital of Norway?")[0] == "MISS"
    wait_idle(a)
    time.sleep(0.3)
    stats = httpx.get(a.url + "/v1/admin/cache/stats", headers=ADMIN).json()
    assert stats["entries"] == 3 and stats["semantic"]["vectors"] == 3


def test_lru_and_ttl_with_redis(gateway_server, prefix):
    srv = gateway_server(config(prefix, max_size=2, ttl=0.5))
    for q in ("one", "two", "three"):
        assert ask(srv.base_url, q)[0] == "MISS"
    assert ask(srv.base_url, "one")[0] == "MISS"  # evicted (least recently used)
    time.sleep(0.7)
    assert ask(srv.base_url, "three")[0] == "MISS"  # expired
    stats = httpx.get(srv.url + "/v1/admin/cache/stats", headers=ADMIN).json()
    assert stats["evictions"] >= 2 and stats["expirations"] >= 1 and stats["entries"] <= 2

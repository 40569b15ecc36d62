"""A replica's prompt copy: used as-is within the TTL, revision-checked after it, versions fetched once."""

from __future__ import annotations

import asyncio
from typing import Any

from deployments.prompts.cache import PromptCache

ROW = {"content": {"messages": [{"role": "user", "content": "v {{x}}"}], "model": "m", "parameters": {}}}


class FakeStore:
    def __init__(self) -> None:
        self.revision = 1
        self.versions = {"1.0.0": ROW}
        self.labels: dict[str, str] = {}
        self.calls: list[tuple[int | None, list[str]]] = []
        self.delay = 0.0

    async def snapshot(self, name: str, revision: int | None, known: Any) -> dict[str, Any] | None:
        self.calls.append((revision, sorted(known)))
        if self.delay:
            await asyncio.sleep(self.delay)
        if name != "p":
            return None
        if revision == self.revision:
            return {"revision": self.revision}
        return {"revision": self.revision, "all_versions": list(self.versions),
                "versions": {v: r for v, r in self.versions.items() if v not in known},
                "labels": dict(self.labels), "tests": {}}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_within_the_ttl_no_store_call_then_only_a_revision_check() -> None:
    store, clock = FakeStore(), Clock()
    cache = PromptCache(store, ttl=2.0, clock=clock)
    view = await cache.get("p")
    assert view is not None and list(view.versions) == ["1.0.0"]
    for _ in range(100):
        assert await cache.get("p") is view
    assert len(store.calls) == 1
    clock.now += 2.5
    assert await cache.get("p") is view  # unchanged revision: the same copy
    assert store.calls[-1] == (1, ["1.0.0"])


async def test_a_new_revision_fetches_only_new_versions_and_drops_deleted_ones() -> None:
    store, clock = FakeStore(), Clock()
    cache = PromptCache(store, ttl=2.0, clock=clock)
    first = await cache.get("p")
    store.versions = {"1.0.0": ROW, "1.1.0": ROW}
    store.labels = {"production": "1.1.0"}
    store.revision = 2
    assert await cache.get("p") is first  # stale within the TTL: the documented bound
    clock.now += 2.0
    view = await cache.get("p")
    assert view.labels == {"production": "1.1.0"} and set(view.versions) == {"1.0.0", "1.1.0"}
    assert view.versions["1.0.0"] is first.versions["1.0.0"]  # compiled once, kept
    store.versions = {"1.1.0": ROW}
    store.revision = 3
    clock.now += 2.0
    assert set((await cache.get("p")).versions) == {"1.1.0"}


async def test_invalidate_and_unknown_prompts() -> None:
    store, clock = FakeStore(), Clock()
    cache = PromptCache(store, ttl=60, clock=clock)
    await cache.get("p")
    store.labels, store.revision = {"staging": "1.0.0"}, 2
    cache.invalidate("p")  # a write through this replica
    assert (await cache.get("p")).labels == {"staging": "1.0.0"}
    assert await cache.get("nope") is None
    assert await cache.get("nope") is None
    assert sum(1 for _ in store.calls) == 3  # the unknown name is cached too


async def test_concurrent_renders_share_one_refresh() -> None:
    store, clock = FakeStore(), Clock()
    store.delay = 0.05
    cache = PromptCache(store, ttl=2.0, clock=clock)
    views = await asyncio.gather(*(cache.get("p") for _ in range(20)))
    assert len(store.calls) == 1 and all(v is views[0] for v in views)


async def test_max_age_rechecks_sooner_than_the_ttl() -> None:
    store, clock = FakeStore(), Clock()
    cache = PromptCache(store, ttl=60, clock=clock)
    await cache.get("p")
    store.labels, store.revision = {"canary": "1.0.0"}, 2
    assert (await cache.get("p", max_age=0.05)).labels == {}  # checked just now: no second call
    clock.now += 0.1
    assert (await cache.get("p", max_age=0.05)).labels == {"canary": "1.0.0"}
    assert len(store.calls) == 2

"""Both backends: TTL, LRU at max_size, counters, invalidation, audit; redis survives a new client."""

from __future__ import annotations

import time

import pytest

from deployments.cache.store import Entry, MemoryStore, RedisStore

from .conftest import REDIS_URL, run


def entry(key: str, provider: str = "p", model: str = "m", ttl: float = 60, prompt: str = "", created=None):
    now = time.time() if created is None else created
    return Entry(key, b'{"choices":[]}', provider, model, "scope", "text " + key, prompt or f"prompt {key}",
                 now, now + ttl)


@pytest.fixture(params=["memory", "redis"])
def make(request):
    made = []

    def factory(max_size: int = 100):
        if request.param == "memory":
            return MemoryStore(max_size)
        prefix = request.getfixturevalue("redis_prefix")
        store = RedisStore(REDIS_URL, prefix, max_size)
        made.append(store)
        return store

    return factory


def test_get_put_and_counters(make):
    async def go():
        s = make()
        assert await s.get("a", time.time(), 0, "hits", miss=("p", "m")) is None
        await s.put(entry("a"))
        got = await s.get("a", time.time(), 0, "hits")
        assert got is not None and got.body == b'{"choices":[]}' and got.provider == "p"
        assert await s.get("a", time.time(), 0, "semantic_hits") is not None
        await s.count_miss("p", "m")
        st = await s.stats()
        assert (st["entries"], st["hits"], st["semantic_hits"], st["misses"]) == (1, 1, 1, 2)
        assert st["hit_rate"] == 0.5 and st["bytes"] > 0
        assert st["by_provider_model"][0]["entries"] == 1
        await s.close()
    run(go())


def test_ttl_expiry(make):
    async def go():
        s = make()
        await s.put(entry("old", ttl=0.2))
        await s.put(entry("new", ttl=60))
        assert await s.get("old", time.time(), 0, "hits") is not None
        assert await s.get("old", time.time() + 0.3, 0, "hits") is None  # expired: never served
        time.sleep(0.3)
        st = await s.stats()
        assert st["entries"] == 1 and st["expirations"] == 1
        assert st["by_provider_model"][0]["expirations"] == 1
        await s.close()
    run(go())


def test_max_age_of_the_request(make):
    async def go():
        s = make()
        await s.put(entry("a", ttl=1000, created=time.time() - 100))
        assert await s.get("a", time.time(), time.time() - 50, "hits") is None
        assert await s.get("a", time.time(), time.time() - 200, "hits") is not None
        await s.close()
    run(go())


def test_lru_eviction_at_max_size(make):
    async def go():
        s = make(max_size=3)
        for k in "abc":
            await s.put(entry(k))
            time.sleep(0.002)
        await s.get("a", time.time(), 0, "hits")  # a is now the most recently used
        time.sleep(0.002)
        removed = await s.put(entry("d"))
        assert removed == ["b"]
        assert await s.get("b", time.time(), 0, "hits") is None
        st = await s.stats()
        assert st["entries"] == 3 and st["evictions"] == 1
        assert st["by_provider_model"][0]["evictions"] == 1 and st["by_provider"][0]["evictions"] == 1
        await s.close()
    run(go())


def test_invalidate_by_pattern_provider_and_all(make):
    async def go():
        s = make()
        await s.put(entry("k1", "openai", prompt="How do I scale Kubernetes?"))
        await s.put(entry("k2", "other", prompt="kubernetes pods"))
        await s.put(entry("k3", "openai", prompt="Docker volumes"))
        assert sorted(await s.invalidate(lambda p, m, t: "kubernetes" in t.lower() and p == "openai")) == ["k1"]
        assert sorted(await s.invalidate(lambda p, m, t: p == "other")) == ["k2"]
        assert sorted(await s.invalidate(None)) == ["k3"]
        assert (await s.stats())["entries"] == 0
        await s.record_invalidation({"admin": "ops", "removed": 3})
        assert (await s.invalidations())[0]["admin"] == "ops"
        await s.close()
    run(go())


def test_redis_entries_survive_a_new_client_and_keys_stay_under_the_prefix(redis_prefix):
    import redis

    async def go():
        a = RedisStore(REDIS_URL, redis_prefix, 10)
        await a.put(entry("persist"))
        await a.set_vector("persist", b"\x00" * 16)
        await a.close()
        b = RedisStore(REDIS_URL, redis_prefix, 10)
        assert (await b.get("persist", time.time(), 0, "hits")) is not None
        rows = await b.vectors(["persist"])
        assert rows[0][0] == "persist" and rows[0][4] == b"\x00" * 16
        position, events = await b.log_since("0-0", 10)
        assert ("add", "persist") in events
        await b.close()
    run(go())
    keys = redis.Redis.from_url(REDIS_URL).keys("*")
    ours = [k for k in keys if k.decode().startswith(redis_prefix)]
    assert ours and all(k.decode().startswith(redis_prefix) for k in ours)


def test_a_put_sweeps_a_bounded_slice_of_expired_entries():
    from deployments.cache.store import SWEEP_PER_PUT

    store = MemoryStore(100_000)
    n = SWEEP_PER_PUT * 3
    for i in range(n):
        run(store.put(Entry(f"k{i}", b"x", "p", "m", created=0.0, expires=10.0)))
    removed = run(store.put(Entry("new", b"x", "p", "m", created=20.0, expires=100.0)))
    assert len(removed) == SWEEP_PER_PUT and len(store.entries) == n - SWEEP_PER_PUT + 1
    for j in range(3):
        run(store.put(Entry(f"more{j}", b"x", "p", "m", created=20.0, expires=100.0)))
    assert set(store.entries) == {"new", "more0", "more1", "more2"}
    assert run(store.get("k0", 20.0, 0.0, "hits")) is None

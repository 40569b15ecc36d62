"""SemanticStage with a fake embedder (fast) and with the real model (one shared load)."""

from __future__ import annotations

import hashlib
import time

import numpy as np

from deployments.cache.config import CacheConfig
from deployments.cache.stage import SemanticStage
from deployments.cache.store import Entry, RedisStore

from .conftest import REDIS_URL, run


def fake_embed_factory(dim: int = 16):
    """Texts that differ only in case/punctuation get the same vector; others are near-orthogonal."""
    async def embed(text: str) -> np.ndarray:
        norm = "".join(c for c in text.lower() if c.isalnum() or c == " ")
        seed = int(hashlib.sha1(norm.encode()).hexdigest()[:8], 16)
        v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
        return v / np.linalg.norm(v)
    return embed


def test_lookup_insert_remove_with_fake_embedder():
    async def go():
        st = SemanticStage(CacheConfig(similarity_threshold=0.9), fake_embed_factory(), dim=16)
        assert await st.lookup("ns", "scope", "Hello there") == []
        await st.insert("ns", "scope", "k1", "Hello there", time.time() + 60)
        got = await st.lookup("ns", "scope", "hello there!")
        assert [m.key for m in got] == ["k1"] and got[0].score > 0.99
        assert await st.lookup("ns", "other-scope", "hello there") == []
        assert await st.lookup("other-ns", "scope", "hello there") == []
        assert await st.remove("ns", ["k1"]) == 1
        assert await st.lookup("ns", "scope", "hello there") == []
        stats = await st.stats()
        assert stats["inserts"] == 1 and stats["vectors"] == 0
    run(go())


def test_real_model_paraphrase_hits_and_verification_rejects(embedder):
    async def embed(text):
        return embedder.encode([text])[0]

    async def go():
        st = SemanticStage(CacheConfig(), embed, dim=embedder.dim)
        await st.insert("", "s", "k", "How do I install Docker on Ubuntu?", time.time() + 60)
        assert [m.key for m in await st.lookup("", "s", "What are the steps to install Docker on Ubuntu?")] == ["k"]
        # close in vector space, but another meaning: rejected by the verification step
        assert await st.lookup("", "s", "How do I uninstall Docker on Ubuntu?", threshold=0.6) == []
        assert await st.lookup("", "s", "How do I install Docker on Fedora?", threshold=0.6) == []
        assert await st.lookup("", "s", "How do I uninstall Docker on Ubuntu?", threshold=0.5, verify=False)
        stats = await st.stats()
        assert sum(v for k, v in stats.items() if k.startswith("rejected_")) >= 1
    run(go())


def test_redis_backed_index_is_rebuilt_and_synced(redis_prefix):
    async def go():
        store = RedisStore(REDIS_URL, redis_prefix, 100)
        cfg = CacheConfig(backend="redis", prefix=redis_prefix, url=REDIS_URL, similarity_threshold=0.9,
                          sync_interval_s=0.05)
        a = SemanticStage(cfg, fake_embed_factory(), store, dim=16)
        now = time.time()
        await store.put(Entry("k1", b"{}", "p", "m", "s", "Hello there", "Hello there", now, now + 60))
        await a.insert("", "s", "k1", "Hello there", now + 60)
        # a second replica (or a restart) rebuilds the index from redis
        b = SemanticStage(cfg, fake_embed_factory(), RedisStore(REDIS_URL, redis_prefix, 100), dim=16)
        assert [m.key for m in await b.lookup("", "s", "hello there")] == ["k1"]
        # an insert through a reaches b through the log
        await store.put(Entry("k2", b"{}", "p", "m", "s", "General Kenobi", "General Kenobi", now, now + 60))
        await a.insert("", "s", "k2", "General Kenobi", now + 60)
        deadline = time.time() + 1.0
        while time.time() < deadline and not await b.lookup("", "s", "general kenobi"):
            await __import__("asyncio").sleep(0.02)
        assert [m.key for m in await b.lookup("", "s", "general kenobi")] == ["k2"]
        # a removal (invalidate) reaches b too
        await store.invalidate(lambda p, m, t: "Kenobi" in t)
        deadline = time.time() + 1.0
        while time.time() < deadline and await b.lookup("", "s", "general kenobi"):
            await __import__("asyncio").sleep(0.02)
        assert await b.lookup("", "s", "general kenobi") == []
        await a.close()
        await b.close()
        await store.close()
    run(go())

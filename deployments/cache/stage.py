"""The semantic-cache stage: embed the last user turn, search its scope, verify, insert.

Plain Python with async entry points (testable without Ray). It runs either inside the ingress
(`placement: in_process`, or tests) with a `MicroBatcher` over the process's shared embedder, or
as the `SemanticCache` Serve deployment (deployment.py), which batches embeddings with
`serve.batch`. The ingress reaches it only for semantic lookups and inserts.

With the `redis` backend the stage rebuilds its index from the vectors stored in Redis at start,
then follows `{prefix}log` so inserts and removals made through any replica reach every index
replica within `sync_interval_s`. With the `memory` backend each ingress replica's entries are
kept under its own namespace `ns`, so a replica never gets a key that only another replica holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import CacheConfig
from .index import VectorIndex
from .verify import check, features

log = logging.getLogger("raygate.cache")

Embed = Callable[[str], Awaitable[np.ndarray]]
RECENT_VECTORS = 4096
SWEEP_PER_INSERT = 64  # heap items; an insert adds one, so the sweep keeps up


@dataclass(slots=True)
class Match:
    key: str
    score: float


class SemanticStage:
    def __init__(self, config: CacheConfig, embed: Embed | None = None, store: Any = None,
                 dim: int | None = None) -> None:
        self.config = config
        self._embed = embed
        self.store = store  # RedisStore (shared backend) or None
        self.index: VectorIndex | None = VectorIndex(dim, config.embed_threads) if dim else None
        self.recent: OrderedDict[str, np.ndarray] = OrderedDict()  # text -> vector (miss -> insert)
        self.counters: Counter = Counter()
        self._started: asyncio.Task | None = None
        self._sync_task: asyncio.Task | None = None
        self._closing = False

    # -- start-up: model, index, redis sync --------------------------------------------------------
    async def _start(self) -> None:
        if self._embed is None:
            from .embedder import MicroBatcher, shared_embedder

            embedder = await asyncio.to_thread(shared_embedder, self.config.embedding_model,
                                               self.config.embed_threads, self.config.embedding_runtime)
            batcher = MicroBatcher(embedder.encode, self.config.max_batch_size, self.config.batch_wait_timeout_s)
            self._embed = batcher.embed
            self.batcher = batcher
        if self.index is None:
            probe = await self._embed("dimension probe")
            self.index = VectorIndex(int(probe.shape[-1]), self.config.embed_threads)
        if self.store is not None:
            position = await self.store.log_position()
            loaded = await self.rebuild()
            log.info("semantic cache index rebuilt from redis: %d vectors", loaded)
            self._sync_task = asyncio.ensure_future(self._follow(position))

    async def ready(self) -> None:
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        if not self._started.done():
            await asyncio.shield(self._started)
        elif self._started.exception() is not None:
            err = self._started.exception()
            self._started = None  # retry on the next call
            raise err  # type: ignore[misc]

    async def rebuild(self) -> int:
        assert self.index is not None and self.store is not None
        self.index.clear()
        n = 0
        now = time.time()
        async for keys in self.store.members():
            for row in await self.store.vectors(keys):
                if row is None:
                    continue
                key, scope, text, expires, vec = row
                if expires <= now:
                    continue
                self.index.add("|" + scope, "|" + key, np.frombuffer(vec, dtype=np.float32), text, expires)
                n += 1
        return n

    async def _follow(self, position: str) -> None:
        """Apply other replicas' inserts and removals (redis backend)."""
        block_ms = int(self.config.sync_interval_s * 1000)
        while not self._closing:
            try:
                position, events = await self.store.log_since(position, block_ms)
                await self._apply(events)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep following; redis may come back
                log.warning("semantic cache sync failed: %s", exc)
                await asyncio.sleep(1.0)

    async def _apply(self, events: list[tuple[str, str]]) -> None:
        assert self.index is not None
        wanted: list[str] = []
        for op, key in events:
            if op == "add":
                if "|" + key not in self.index:
                    wanted.append(key)
            elif op == "del":
                self.index.remove("|" + key)
                if key in wanted:
                    wanted.remove(key)
            elif op == "clear":
                self.index.clear()
                wanted.clear()
        if wanted:
            for row in await self.store.vectors(wanted):
                if row is not None:
                    key, scope, text, expires, vec = row
                    self.index.add("|" + scope, "|" + key, np.frombuffer(vec, dtype=np.float32), text, expires)
        self.counters["synced_events"] += len(events)

    async def close(self) -> None:
        self._closing = True
        if self._sync_task is not None:
            self._sync_task.cancel()

    # -- request path ----------------------------------------------------------------------------
    async def vector(self, text: str) -> np.ndarray:
        vec = self.recent.get(text)
        if vec is not None:
            self.recent.move_to_end(text)
            return vec
        assert self._embed is not None
        vec = await self._embed(text)
        self.recent[text] = vec
        if len(self.recent) > RECENT_VECTORS:
            self.recent.popitem(last=False)
        return vec

    async def lookup(self, ns: str, scope: str, text: str, threshold: float | None = None,
                     now: float | None = None, verify: bool | None = None) -> list[Match]:
        """Verified candidates in `scope` at or above the threshold, best first."""
        await self.ready()
        assert self.index is not None
        threshold = self.config.similarity_threshold if threshold is None else threshold
        verify = self.config.verify if verify is None else verify
        now = time.time() if now is None else now
        vec = await self.vector(text)
        found = self.index.search(ns + "|" + scope, vec, self.config.candidates, now, threshold)
        self.counters["lookups"] += 1
        if not found:
            return []
        self.counters["candidates"] += len(found)
        out: list[Match] = []
        qf = features(text) if verify else None
        for slot, score in found:
            if qf is not None:
                reason = check(qf, features(slot.text))
                if reason is not None:
                    self.counters["rejected:" + reason.split(":")[0]] += 1
                    continue
            out.append(Match(slot.key.split("|", 1)[1], score))
        if out:
            self.counters["matches"] += 1
        return out

    async def insert(self, ns: str, scope: str, key: str, text: str, expires: float) -> bool:
        await self.ready()
        assert self.index is not None
        vec = await self.vector(text)
        self.index.add(ns + "|" + scope, ns + "|" + key, vec, text, expires)
        self.counters["inserts"] += 1
        # drop a bounded slice of expired vectors on every insert (search already skips them): no
        # periodic burst that holds the event loop
        self.counters["expired_vectors"] += len(self.index.sweep(time.time(), SWEEP_PER_INSERT))
        if self.store is not None:  # shared backend: persist the vector, tell the other replicas
            return await self.store.set_vector(key, np.asarray(vec, dtype=np.float32).tobytes())
        return True

    async def remove(self, ns: str, keys: list[str]) -> int:
        await self.ready()
        assert self.index is not None
        return sum(self.index.remove(ns + "|" + k) for k in keys)

    async def clear(self, ns: str) -> int:
        await self.ready()
        assert self.index is not None
        return self.index.clear(ns + "|")

    async def sweep(self) -> int:
        await self.ready()
        assert self.index is not None
        return len(self.index.sweep(time.time()))

    async def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.config.embedding_model,
                               "threshold": self.config.similarity_threshold, "verify": self.config.verify}
        if self.index is not None:
            self.index.sweep(time.time())
            out.update(self.index.stats())
        out.update({k.replace(":", "_"): v for k, v in sorted(self.counters.items())})
        batcher = getattr(self, "batcher", None)
        if batcher is not None:
            out["embed_batches"] = batcher.batches
        return out

    async def ping(self) -> bool:
        return True


class RemoteSemantic:
    """Ingress-side stand-in for the SemanticCache deployment: same methods, one handle hop each."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    async def lookup(self, ns: str, scope: str, text: str, threshold: float | None = None,
                     now: float | None = None, verify: bool | None = None) -> list[Match]:
        return await self._handle.lookup.remote(ns, scope, text, threshold, now, verify)

    async def insert(self, ns: str, scope: str, key: str, text: str, expires: float) -> bool:
        return await self._handle.insert.remote(ns, scope, key, text, expires)

    async def remove(self, ns: str, keys: list[str]) -> int:
        return await self._handle.remove.remote(ns, keys)

    async def clear(self, ns: str) -> int:
        return await self._handle.clear.remote(ns)

    async def stats(self) -> dict[str, Any]:
        return await self._handle.stats.remote()

    async def close(self) -> None:
        return None

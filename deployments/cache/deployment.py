"""`SemanticCache`: the semantic stage as its own Serve deployment (holds the embedding model).

Bound by serve_app/builder.py only when semantic caching can be used (cache.mode semantic, or a
strategy/target asks for it) and `cache.semantic_placement` is `deployment`. Concurrent embedding
calls from all ingress replicas are batched with `serve.batch` (up to `max_batch_size`); the model
runs in a worker thread so the replica keeps accepting calls while a batch is encoded. serve.batch
closes a batch `batch_wait_timeout_s` after its first call; while a batch is encoding, the wait is
stretched to its expected end, so calls arriving meanwhile form one full next batch (measured: 2x the
lookups/s of a fixed 0 s wait at concurrency 16) and an idle replica adds no wait at all.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import numpy as np
from ray import serve

from .config import CacheConfig
from .stage import Match, SemanticStage


class SemanticCache:
    def __init__(self, cache_config: dict[str, Any] | CacheConfig) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from .embedder import shared_embedder
        from .store import RedisStore

        cfg = cache_config if isinstance(cache_config, CacheConfig) else CacheConfig.model_validate(cache_config)
        self.config = cfg
        self.embedder = shared_embedder(cfg.embedding_model, cfg.embed_threads, cfg.embedding_runtime)
        self._embed_batch.set_max_batch_size(cfg.max_batch_size)
        self._embed_batch.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)
        redis = cfg.backend == "redis"
        store = RedisStore(cfg.url.get_secret_value(), cfg.prefix, cfg.max_size) if redis else None
        self.stage = SemanticStage(cfg, self._embed_one, store, dim=self.embedder.dim)
        self.batches = 0
        self._busy_until = 0.0  # when the batch being encoded is expected to finish
        self._per_text_s = 0.02  # running estimate of encode time per text

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)
    async def _embed_batch(self, texts: list[str]) -> list[np.ndarray]:
        self.batches += 1
        start = time.perf_counter()
        self._busy_until = start + self._per_text_s * len(texts)
        try:
            vecs = await asyncio.to_thread(self.embedder.encode, texts)
        finally:
            self._busy_until = 0.0
        self._per_text_s = 0.7 * self._per_text_s + 0.3 * (time.perf_counter() - start) / len(texts)
        return list(vecs)

    async def _embed_one(self, text: str) -> np.ndarray:
        # serve.batch forms a batch as soon as its first call arrives and waits at most
        # batch_wait_timeout_s for more. While a batch is being encoded, the next one cannot start
        # anyway (max_concurrent_batches=1), so let it collect calls until the current one should
        # be done: no added latency when idle, full batches under load (adaptive batching).
        busy = self._busy_until - time.perf_counter()
        wait = min(max(busy, self.config.batch_wait_timeout_s), 0.5) if busy > 0 else self.config.batch_wait_timeout_s
        self._embed_batch.set_batch_wait_timeout_s(wait)
        return await self._embed_batch(text)

    async def lookup(self, ns: str, scope: str, text: str, threshold: float | None = None,
                     now: float | None = None, verify: bool | None = None) -> list[Match]:
        return await self.stage.lookup(ns, scope, text, threshold, now, verify)

    async def insert(self, ns: str, scope: str, key: str, text: str, expires: float) -> bool:
        return await self.stage.insert(ns, scope, key, text, expires)

    async def remove(self, ns: str, keys: list[str]) -> int:
        return await self.stage.remove(ns, keys)

    async def clear(self, ns: str) -> int:
        return await self.stage.clear(ns)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """Embeddings through the same batching path (benchmarks)."""
        vecs = await asyncio.gather(*(self._embed_one(t) for t in texts))
        return [v.tolist() for v in vecs]

    async def stats(self) -> dict[str, Any]:
        out = await self.stage.stats()
        out["embed_batches"] = self.batches
        out["embedded_texts"] = self.embedder.texts
        return out

    async def ping(self) -> bool:
        await self.stage.ready()
        return True


def semantic_cache_app(cfg: Any, base_options: dict[str, Any]) -> Any:
    """Bind the SemanticCache deployment when semantic caching can be used; None otherwise.

    Called by serve_app/builder.py with the stage options (autoscaling from `serve.stages` /
    `serve.stage_overrides.SemanticCache`). With the redis backend the replicas keep their indexes in
    sync through Redis, so the deployment autoscales; with the memory backend the vectors of every
    ingress replica must live in one index, so it has exactly one replica. CPU reserved:
    `cache.semantic_num_cpus` (default 0).
    """
    from .config import semantic_wanted

    cache = cfg.cache
    if not semantic_wanted(cfg) or cache.semantic_placement != "deployment":
        return None
    options = dict(base_options)
    if cache.backend != "redis":
        options.pop("autoscaling_config", None)
        options["num_replicas"] = 1
    options["ray_actor_options"] = {**options.get("ray_actor_options", {}), "num_cpus": cache.semantic_num_cpus,
                                    "runtime_env": {"env_vars": {"HF_HUB_OFFLINE": "1",
                                                                 "TRANSFORMERS_OFFLINE": "1",
                                                                 "TOKENIZERS_PARALLELISM": "false"}}}
    options["max_ongoing_requests"] = max(options.get("max_ongoing_requests", 64), cache.max_batch_size * 4)
    return serve.deployment(SemanticCache).options(**options).bind(cache.model_dump())

"""The response cache as the ingress runs it: lookup before the upstream call, store after it.

`ResponseCache` lives in every ingress replica. Exact lookups, stores and the replay of cached
streams run here (no hop); semantic lookups and inserts go to the semantic stage — the
`SemanticCache` deployment through a handle, or an in-process `SemanticStage`. A request for which
caching is not in play (no `cache:` default enabled, no opt-in, no strategy setting) costs one
`applies()` call: a few attribute and dict lookups.

Response header `x-raygate-cache`: HIT | SEMANTIC_HIT | MISS | REFRESH | BYPASS.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from serve_app.errors import GatewayError, bad_request
from serve_app.lifecycle import Reply

from .collect import StreamCollector, storable
from .config import CacheConfig, semantic_wanted
from .policy import Decision, decide
from .replay import hit_body, new_id, replay_stream
from .scope import CacheScope, build_scope, key_scope
from .store import Entry, make_store

log = logging.getLogger("raygate.cache")

HEADER = "x-raygate-cache"
METRIC = "raygate_cache_lookups_total"


@dataclass(slots=True)
class Lookup:
    status: str  # HIT | SEMANTIC_HIT | MISS | REFRESH | BYPASS
    decision: Decision | None = None
    scope: CacheScope | None = None
    mode: str = "exact"
    entry: Entry | None = None
    similarity: float | None = None
    started: float = field(default_factory=time.time)

    @property
    def hit(self) -> bool:
        return self.entry is not None

    @property
    def stores(self) -> bool:
        return self.status in ("MISS", "REFRESH") and self.scope is not None


class ResponseCache:
    def __init__(self, config: Any, providers: dict[str, Any], metrics: Any = None,
                 semantic: Any = None, store: Any = None) -> None:
        self.cfg: CacheConfig = config.cache
        self.enabled = self.cfg.enabled
        self.providers = providers
        self.metrics = metrics
        self.store = store if store is not None else make_store(self.cfg)
        self.semantic = semantic  # SemanticStage / RemoteSemantic, or None (semantic -> exact)
        self.semantic_wanted = semantic_wanted(config)
        # memory backend: this replica's vectors live under their own namespace in a shared index
        self.ns = "" if self.store.shared else uuid.uuid4().hex[:12]
        self.pending: set[asyncio.Task] = set()
        self._errors = 0

    # -- the request path ------------------------------------------------------------------------
    def applies(self, body_value: Any, headers: dict[str, str], plan_value: Any) -> bool:
        """Cheap gate: is caching in play for this request at all?"""
        return self.enabled or body_value is not None or plan_value is not None or HEADER in headers

    def _count(self, status: str) -> None:
        if self.metrics is not None:
            self.metrics.local.inc(METRIC, (status.lower(),))

    async def lookup(self, body: dict[str, Any], plan: Any, cache_control: Any, headers: dict[str, str],
                     key_id: str | None) -> Lookup | None:
        """None when caching is not in play; otherwise the outcome (a hit carries the entry)."""
        decision = decide(self.cfg, cache_control, headers.get(HEADER), getattr(plan, "cache", None))
        if decision is None:
            return None
        n = body.get("n")
        if decision.bypass or (n is not None and n != 1):
            self._count("BYPASS")
            return Lookup("BYPASS", decision)
        attempt = plan.attempts[0]
        provider = self.providers.get(attempt.provider)
        model = provider.default_model(attempt.model) if provider is not None else (attempt.model or "")
        scope = build_scope(body, attempt.provider, model, key_scope(key_id, self.cfg.share_across_keys),
                            attempt.override_params)
        mode = "semantic" if (decision.mode == "semantic" and self.semantic is not None
                              and scope.semantic_scope is not None) else "exact"
        lk = Lookup("MISS", decision, scope, mode)
        if decision.refresh:
            lk.status = "REFRESH"
            self._count("REFRESH")
            return lk
        try:
            await self._find(lk)
        except GatewayError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken cache must never fail the request
            self._failed("lookup", exc)
            lk.status = "BYPASS"
            lk.entry = None
        self._count(lk.status)
        return lk

    async def _find(self, lk: Lookup) -> None:
        scope = lk.scope
        assert scope is not None and lk.decision is not None
        now = lk.started
        min_created = now - lk.decision.ttl
        miss = (scope.provider, scope.model)
        entry = await self.store.get(scope.exact_key, now, min_created, "hits",
                                     miss=miss if lk.mode == "exact" else None)
        if entry is not None:
            lk.status, lk.entry = "HIT", entry
            return
        if lk.mode != "semantic":
            return
        try:
            matches = await self.semantic.lookup(self.ns, scope.semantic_scope, scope.text,
                                                 self.cfg.similarity_threshold, now)
        except Exception as exc:  # noqa: BLE001 - semantic stage down: answer as a miss
            self._failed("semantic lookup", exc)
            matches = []
        for match in matches:
            entry = await self.store.get(match.key, now, min_created, "semantic_hits")
            if entry is not None and entry.scope == scope.semantic_scope:
                lk.status, lk.entry, lk.similarity = "SEMANTIC_HIT", entry, match.score
                return
        await self.store.count_miss(*miss)

    def _failed(self, what: str, exc: Exception) -> None:
        self._errors += 1
        if self._errors <= 5 or self._errors % 1000 == 0:
            log.warning("cache %s failed (%d so far): %s: %s", what, self._errors, type(exc).__name__, exc)

    # -- hits ------------------------------------------------------------------------------------
    def headers(self, lk: Lookup) -> dict[str, str]:
        out = {HEADER: lk.status}
        entry = lk.entry
        if entry is not None:
            out["x-raygate-provider"] = entry.provider
            out["x-raygate-model"] = entry.model
            out["x-raygate-route"] = "cache"
            out["x-raygate-attempts"] = "0"
            out["x-raygate-cache-age"] = str(max(0, int(lk.started - entry.created)))
            if lk.similarity is not None:
                out["x-raygate-cache-similarity"] = f"{lk.similarity:.4f}"
        return out

    def hit_body(self, lk: Lookup) -> bytes:
        assert lk.entry is not None
        return hit_body(orjson.loads(lk.entry.body), new_id(), int(time.time()))

    async def replay(self, lk: Lookup, include_usage: bool) -> AsyncIterator[bytes]:
        assert lk.entry is not None
        yield replay_stream(orjson.loads(lk.entry.body), new_id(), int(time.time()), include_usage)

    # -- stores ----------------------------------------------------------------------------------
    async def store_result(self, lk: Lookup | None, result: bytes, provider: str, model: str) -> None:
        """Keep a non-streamed upstream answer (if it may be cached)."""
        if lk is None or not lk.stores or len(result) > self.cfg.max_entry_bytes:
            return
        try:
            completion = orjson.loads(result)
        except orjson.JSONDecodeError:
            return
        if storable(completion):
            await self._put(lk, result, provider, model)

    def recorder(self, lk: Lookup | None) -> StreamRecorder | None:
        if lk is None or not lk.stores:
            return None
        return StreamRecorder(self, lk)

    async def _put(self, lk: Lookup, body: bytes, provider: str, model: str) -> None:
        scope = lk.scope
        assert scope is not None and lk.decision is not None
        now = time.time()
        semantic = lk.mode == "semantic"
        entry = Entry(scope.exact_key, body, provider, model, scope.semantic_scope if semantic else "",
                      scope.text or "", scope.prompt, now, now + lk.decision.ttl)
        try:
            removed = await self.store.put(entry)
        except Exception as exc:  # noqa: BLE001
            self._failed("store", exc)
            return
        if self.semantic is None:
            return
        if removed and not self.store.shared:
            self._background(self.semantic.remove(self.ns, removed))
        if semantic:
            self._background(self.semantic.insert(self.ns, entry.scope, entry.key, entry.text, entry.expires))

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self.pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._failed("semantic update", task.exception())  # type: ignore[arg-type]

    async def drain(self) -> None:
        """Wait for background index updates (tests, shutdown)."""
        while self.pending:
            await asyncio.gather(*list(self.pending), return_exceptions=True)

    # -- admin -----------------------------------------------------------------------------------
    def admin_routes(self) -> dict[tuple[str, str], Any]:
        return {("GET", "/v1/admin/cache/stats"): self.admin_stats,
                ("POST", "/v1/admin/cache/invalidate"): self.admin_invalidate,
                ("GET", "/v1/admin/cache/invalidations"): self.admin_invalidations}

    async def stats(self) -> dict[str, Any]:
        out = await self.store.stats()
        out["config"] = {"enabled": self.cfg.enabled, "mode": self.cfg.mode, "ttl": self.cfg.ttl,
                         "max_size": self.cfg.max_size, "similarity_threshold": self.cfg.similarity_threshold,
                         "verify": self.cfg.verify, "share_across_keys": self.cfg.share_across_keys}
        if not self.store.shared:
            out["scope"] = "this replica (memory backend)"
        if self.semantic is not None:
            try:
                out["semantic"] = await self.semantic.stats()
            except Exception as exc:  # noqa: BLE001
                out["semantic"] = {"error": f"{type(exc).__name__}: {exc}"}
        return out

    async def admin_stats(self, body: Any, admin_id: str) -> Any:
        return Reply(orjson.dumps(await self.stats()), {})

    async def invalidate(self, spec: dict[str, Any], admin_id: str) -> dict[str, Any]:
        match, what = _matcher(spec)
        removed = await self.store.invalidate(match)
        if self.semantic is not None:
            if match is None:
                await self.semantic.clear(self.ns)
            elif removed:
                await self.semantic.remove(self.ns, removed)
        record = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "admin": admin_id, "filter": what,
                  "removed": len(removed)}
        await self.store.record_invalidation(record)
        log.info("cache invalidation by %s: %s -> %d entries removed", admin_id, what, len(removed))
        return {"removed": len(removed), "invalidation": record}

    async def admin_invalidate(self, body: Any, admin_id: str) -> Any:
        if not isinstance(body, dict):
            raise bad_request("expected a JSON object: {\"pattern\", \"regex\", \"provider\", \"model\"} or "
                              "{\"all\": true}", code="invalid_request")
        return Reply(orjson.dumps(await self.invalidate(body, admin_id)), {})

    async def admin_invalidations(self, body: Any, admin_id: str) -> Any:
        return Reply(orjson.dumps({"object": "list", "data": await self.store.invalidations()}), {})

    async def close(self) -> None:
        await self.drain()
        await self.store.close()


class StreamRecorder:
    """Collects a relayed stream; once it completes, stores it like a non-streamed answer."""

    __slots__ = ("cache", "lookup", "collector")

    def __init__(self, cache: ResponseCache, lookup: Lookup) -> None:
        self.cache = cache
        self.lookup = lookup
        self.collector = StreamCollector(cache.cfg.max_entry_bytes)

    def feed(self, chunk: bytes) -> bool:
        """True when this chunk completes the stream (then call `store`)."""
        return self.collector.feed(chunk)

    async def store(self, provider: str, model: str, usage: dict[str, Any] | None = None) -> None:
        completion = self.collector.completion(usage)
        if completion is not None and storable(completion):
            await self.cache._put(self.lookup, orjson.dumps(completion), provider, model)


def _matcher(spec: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    unknown = set(spec) - {"pattern", "regex", "provider", "model", "all"}
    if unknown:
        raise bad_request(f"unknown field {sorted(unknown)[0]!r}", param=sorted(unknown)[0])
    if spec.get("all") is True:
        if any(spec.get(k) for k in ("pattern", "provider", "model")):
            raise bad_request("'all' cannot be combined with filters", param="all")
        return None, {"all": True}
    pattern, provider, model = spec.get("pattern"), spec.get("provider"), spec.get("model")
    for name, value in (("pattern", pattern), ("provider", provider), ("model", model)):
        if value is not None and (not isinstance(value, str) or not value):
            raise bad_request(f"{name} must be a non-empty string", param=name)
    if pattern is None and provider is None and model is None:
        raise bad_request("give a pattern, provider or model to match, or {\"all\": true}", code="invalid_request")
    use_regex = spec.get("regex", False)
    if not isinstance(use_regex, bool):
        raise bad_request("regex must be a boolean", param="regex")
    test = None
    if pattern is not None:
        if use_regex:
            try:
                rx = re.compile(pattern, re.IGNORECASE)
            except re.error as exc:
                raise bad_request(f"invalid regular expression: {exc}", param="pattern") from None
            test = rx.search
        else:
            needle = pattern.casefold()

            def test(text: str) -> bool:
                return needle in text.casefold()

    def match(p: str, m: str, prompt: str) -> bool:
        if provider is not None and p != provider:
            return False
        if model is not None and m != model:
            return False
        return test is None or bool(test(prompt))

    what = {k: v for k, v in (("pattern", pattern), ("regex", use_regex if pattern else None),
                              ("provider", provider), ("model", model)) if v is not None}
    return match, what


def build_cache(config: Any, providers: dict[str, Any], metrics: Any = None,
                semantic_handle: Any = None) -> ResponseCache:
    """The replica's cache: the SemanticCache deployment through its handle, or an in-process
    semantic stage when semantic caching is wanted and there is no deployment (tests, no Ray,
    `semantic_placement: in_process`)."""
    from .stage import RemoteSemantic, SemanticStage

    store = make_store(config.cache)
    semantic = None
    if semantic_handle is not None:
        semantic = RemoteSemantic(semantic_handle)
    elif semantic_wanted(config):
        semantic = SemanticStage(config.cache, store=store if store.shared else None)
    return ResponseCache(config, providers, metrics, semantic, store)

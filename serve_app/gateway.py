"""The request pipeline, as plain Python: extract gateway fields, route, (cache), call, account.

`Gateway` is what the ingress replica runs for every request, over HTTP (http.py) and over
handle calls (ingress.py). It holds its stages as attributes; a stage that has nothing
configured is None and costs nothing. Stages that run elsewhere are reached through objects
with the same interface (RemoteRouter, RemoteProvider), so this file does not know where they
run.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from deployments.providers.base import CallContext
from deployments.router.executor import Executor, Outcome
from deployments.router.router import Plan, RouteRequest

from . import __version__
from .errors import GatewayError, bad_request, not_found
from .metrics import Metrics
from .protocol import check_chat_request, check_embeddings_request, pop_metadata

log = logging.getLogger("raygate.gateway")


@dataclass(slots=True)
class RequestContext:
    """Facts about one client request (serializable)."""

    request_id: str
    key_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    started: float = field(default_factory=time.perf_counter)
    cache: Any = None  # the body's `cache` field (deployments/cache/policy.py)


@dataclass(slots=True)
class Reply:
    body: bytes
    headers: dict[str, str]
    status: int = 200


@dataclass(slots=True)
class StreamReply:
    headers: dict[str, str]
    chunks: AsyncIterator[bytes]


def new_request_id(client_value: str | None) -> str:
    if client_value and len(client_value) <= 128 and client_value.isprintable():
        return client_value
    return uuid.uuid4().hex


def _route_headers(outcome: Outcome) -> dict[str, str]:
    return {
        "x-raygate-provider": outcome.attempt.provider,
        "x-raygate-model": outcome.model,
        "x-raygate-route": outcome.attempt.route,
        "x-raygate-attempts": str(outcome.attempts),
    }


class Gateway:
    def __init__(self, config: Any, providers: dict[str, Any], router: Any, metrics: Metrics,
                 executor: Executor | None = None) -> None:
        self.config = config
        self.providers = providers
        self.router = router
        self.metrics = metrics
        self.executor = executor or Executor(providers, metrics, getattr(router, "circuits", None),
                                             getattr(router, "stats", None))
        self.started_at = time.time()
        self.remote_stages: dict[str, Any] = {}  # name -> handle with ping(), for /ready
        self.admin_routes: dict[tuple[str, str], Any] = {}  # (method, path) -> async handler
        self._listings: dict[str, tuple[float, list[str]]] = {}  # provider -> (fetched at, models)
        self.cache: Any = None  # deployments.cache.cache.ResponseCache (set by assemble_gateway)

    # -- shared request preparation -------------------------------------------------------------
    def _route_request(self, body: dict[str, Any], ctx: RequestContext) -> tuple[RouteRequest, CallContext]:
        headers = ctx.headers
        metadata = pop_metadata(body, headers.get("x-raygate-metadata"))
        body.pop("metadata", None)
        provider = body.pop("provider", None) or headers.get("x-raygate-provider")
        config = body.pop("config", None)
        if config is None:
            config = headers.get("x-raygate-config")
        ctx.cache = body.pop("cache", None)
        stream_options = body.get("stream_options")
        include_usage = bool(isinstance(stream_options, dict) and stream_options.get("include_usage"))
        client_headers = {k: v for k, v in headers.items() if k.startswith("x-raygate-")}
        route = RouteRequest(body.get("model"), provider, config, metadata, headers, body)
        call = CallContext("", "", ctx.request_id, include_usage, int(time.time()), client_headers,
                           metadata or None)
        return route, call

    async def _plan(self, route: RouteRequest) -> Plan:
        return await self.router.plan(route)

    def _record(self, provider: str, model: str, status: int, ctx: RequestContext) -> None:
        self.metrics.local.request(provider, model, status, time.perf_counter() - ctx.started)

    def record_error(self, err: GatewayError, ctx: RequestContext, provider: str = "", model: str = "") -> None:
        if getattr(err, "recorded", False):
            return
        err.recorded = True  # type: ignore[attr-defined]
        self._record(provider or getattr(err, "provider", None) or "", model, err.status, ctx)

    # -- chat --------------------------------------------------------------------------------
    async def _chat_start(self, body: dict[str, Any], ctx: RequestContext) -> tuple[Plan, CallContext, Any]:
        """Checks, routing and the cache lookup that streamed and non-streamed chat share."""
        check_chat_request(body)
        route, call = self._route_request(body, ctx)
        plan = await self._plan(route)
        lookup, cache = None, self.cache
        if cache is not None and cache.applies(ctx.cache, ctx.headers, plan.cache):
            lookup = await cache.lookup(body, plan, ctx)
            if lookup is not None and lookup.hit:
                self._record(lookup.entry.provider, lookup.entry.model, 200, ctx)
        return plan, call, lookup

    async def chat(self, body: dict[str, Any], ctx: RequestContext) -> Reply:
        plan, call, lookup = await self._chat_start(body, ctx)
        cache = self.cache
        if lookup is not None and lookup.hit:
            return Reply(cache.hit_body(lookup), cache.headers(lookup))
        try:
            result, outcome = await self.executor.chat(plan, body, call)
        except GatewayError as err:
            self.record_error(err, ctx, model=plan.attempts[-1].model or "")
            raise
        self._record(outcome.attempt.provider, outcome.model, 200, ctx)
        headers = _route_headers(outcome)
        if lookup is not None:
            await cache.store_result(lookup, result, outcome.attempt.provider, outcome.model)
            headers.update(cache.headers(lookup))
        return Reply(result, headers)

    async def chat_stream(self, body: dict[str, Any], ctx: RequestContext) -> StreamReply:
        """Open the stream (errors before the first byte raise here) and return its relay."""
        plan, call, lookup = await self._chat_start(body, ctx)
        cache = self.cache
        if lookup is not None and lookup.hit:  # replayed from here: streams never cross a handle
            return StreamReply(cache.headers(lookup), cache.replay(lookup, call.include_usage))
        try:
            stream, outcome = await self.executor.chat_stream(plan, body, call)
        except GatewayError as err:
            self.record_error(err, ctx, model=plan.attempts[-1].model or "")
            raise
        headers = _route_headers(outcome)
        recorder = None
        if lookup is not None:
            headers.update(cache.headers(lookup))
            recorder = cache.recorder(lookup)
        return StreamReply(headers, self._relay(stream, outcome, ctx, recorder))

    async def _relay(self, stream: Any, outcome: Outcome, ctx: RequestContext,
                     recorder: Any = None) -> AsyncIterator[bytes]:
        status = 200
        try:
            async for chunk in stream:
                if recorder is not None and recorder.feed(chunk):  # the stream completed: cache it
                    await recorder.store(outcome.attempt.provider, outcome.model, getattr(stream, "usage", None))
                yield chunk
        except GatewayError as err:
            status = err.status
            self.metrics.local.inc("raygate_stream_errors_total", (outcome.attempt.provider,))
            raise
        except (asyncio.CancelledError, GeneratorExit):
            status = 499  # the client went away mid-stream (nginx's convention)
            raise
        finally:
            self._record(outcome.attempt.provider, outcome.model, status, ctx)

    # -- embeddings and models -----------------------------------------------------------------
    async def embeddings(self, body: dict[str, Any], ctx: RequestContext) -> Reply:
        check_embeddings_request(body)
        route, call = self._route_request(body, ctx)
        plan = await self._plan(route)
        try:
            result, outcome = await self.executor.embeddings(plan, body, call)
        except GatewayError as err:
            self.record_error(err, ctx, model=plan.attempts[0].model or "")
            raise
        self._record(outcome.attempt.provider, outcome.model, 200, ctx)
        return Reply(result, _route_headers(outcome))

    async def model_cards(self) -> list[dict[str, Any]]:
        """Aliases, each provider's configured models, and (with `discover_models`) its own listing."""
        cards: dict[str, dict[str, Any]] = {}
        created = int(self.started_at)
        for alias, target in self.config.models.items():
            owner = target if isinstance(target, str) else target.provider
            cards[alias] = {"id": alias, "object": "model", "created": created, "owned_by": owner}
        for name, pcfg in self.config.providers.items():
            served = list(pcfg.models)
            if pcfg.model and pcfg.model not in served:
                served.append(pcfg.model)
            if pcfg.discover_models:
                served += [m for m in await self._discovered(name, pcfg.discovery_ttl) if m not in served]
            for model in served:
                mid = f"{name}/{model}"
                cards.setdefault(mid, {"id": mid, "object": "model", "created": created, "owned_by": name})
        return list(cards.values())

    async def _discovered(self, provider: str, ttl: float) -> list[str]:
        """A provider's listing, reused for `ttl` seconds; a failing listing leaves it out (logged)."""
        cached = self._listings.get(provider)
        now = time.monotonic()
        if cached is not None and now - cached[0] < ttl:
            return cached[1]
        try:
            models = await self.providers[provider].list_models()
        except GatewayError as err:
            log.warning("model discovery for %s failed: %s", provider, err.message)
            models = cached[1] if cached is not None else []
        self._listings[provider] = (now, models)
        return models

    async def models(self) -> bytes:
        return orjson.dumps({"object": "list", "data": await self.model_cards()})

    async def model(self, model_id: str) -> bytes:
        for card in await self.model_cards():
            if card["id"] == model_id:
                return orjson.dumps(card)
        raise not_found(f"model {model_id!r} does not exist")

    # -- health ----------------------------------------------------------------------------------
    def health(self) -> bytes:
        return orjson.dumps({"status": "healthy", "version": __version__,
                             "uptime": round(time.time() - self.started_at, 3)})

    async def ready(self) -> tuple[bool, str]:
        """Ready once every stage placed in its own deployment answers a ping."""
        for name, handle in self.remote_stages.items():
            try:
                await asyncio.wait_for(handle.ping.remote(), timeout=2.0)
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with the reason
                return False, f"deployment {name} is not ready ({type(exc).__name__})"
        return True, "ready"

    async def admin(self, method: str, path: str, body: dict[str, Any] | None, admin_id: str) -> Reply:
        handler = self.admin_routes.get((method, path))
        if handler is None:
            if any(p == path for _, p in self.admin_routes):
                raise GatewayError(405, f"method {method} is not allowed on {path}", code="method_not_allowed")
            raise not_found(f"unknown admin route {path}", code="unknown_url", param=None)
        return await handler(body, admin_id)


def require_body_object(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise bad_request("request body must be a JSON object", code="invalid_json")
    return raw

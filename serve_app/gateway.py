"""The request pipeline, as plain Python: one record per request, the stage chain, the upstream call.

`Gateway` is what the ingress replica runs for every request, over HTTP (http.py) and over
handle calls (ingress.py). Chat, streamed chat and embeddings share one driver: the request's
gateway fields are taken off the body into an `Exchange` (serve_app/lifecycle.py), the chain's
stages run around the upstream call (serve_app/chain.py decides which and in what order), and
the request's `RequestRecord` is finished exactly once and handed to the sinks (metrics,
storage). Stages that run elsewhere are reached through objects with the same interface
(RemoteRouter, RemoteProvider), so this file does not know where they run.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson

from deployments.providers.base import CallContext
from deployments.providers.stage import parse_usage
from deployments.router.executor import Executor, Outcome
from deployments.router.plan import RouteRequest
from deployments.router.route_stage import RouteStage

from . import __version__, catalog
from .errors import GatewayError, bad_request, not_found
from .lifecycle import Answer, Chain, Exchange, Reply, RequestRecord, StreamReply, aclose, submit_all, usage_counts
from .metrics import Metrics, RecordMetrics
from .protocol import SSE_DONE, check_chat_request, check_embeddings_request, pop_metadata

log = logging.getLogger("raygate.gateway")
audit_log = logging.getLogger("raygate.audit")

CHECKS = {"chat": check_chat_request, "embeddings": check_embeddings_request}
INTERNAL = GatewayError(500, "internal gateway error", code="internal_error")


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
        self.admin_prefixes: list[tuple[str, str, Any]] = []  # (method, path prefix, handler(rest, ...))
        self._listings: dict[str, tuple[float, list[str]]] = {}  # provider -> (fetched at, models)
        self.cache: Any = None  # deployments.cache.cache.ResponseCache (set by assemble_gateway)
        self.chain = Chain([RouteStage(router)])  # assemble_gateway builds the configured chain
        self.sinks: list[Any] = [RecordMetrics(metrics.local)]  # consumers of finished records
        self.records: Any = None  # the storage sink, for GET /v1/admin/logs/{id} (None: not stored)
        self.prompts: Any = None  # deployments.prompts.api.PromptsApi for /v1/prompts (None: disabled)
        self.auditors: list[Any] = [AuditLog()]  # consumers of audit events (`submit(event)`)
        self.admin_prefixes.append(("GET", "/v1/admin/logs/", self.admin_log))

    def attach_records(self, sink: Any) -> None:
        """The storage sink: finished records go to it, and GET /v1/admin/logs/{id} reads through it."""
        self.records = sink
        self.sinks.append(sink)

    # -- the record ------------------------------------------------------------------------------
    def begin(self, kind: str | None, headers: dict[str, str], via: str = "http",
              client_ip: str | None = None) -> RequestRecord:
        """A new record; `kind` None for requests that are not recorded (health, models, admin)."""
        return RequestRecord(new_request_id(headers.get("x-request-id")), kind, via, headers,  # type: ignore[arg-type]
                             client_ip)

    def finish(self, rec: RequestRecord, status: int, error: Any = None) -> None:
        """Finish the record (once) and hand it to the sinks; before the response's last byte."""
        if rec.kind is None or not rec.close(status, error):
            return
        if rec.provider is None and rec.attempts:
            last = rec.attempts[-1]
            rec.provider, rec.model = last["provider"], last["model"]
        submit_all(self.sinks, rec)

    def fail(self, rec: RequestRecord, exc: BaseException) -> None:
        """Finish a record whose request raised: its error, 499 for a client gone, else 500."""
        if isinstance(exc, GatewayError):
            self.finish(rec, exc.status, exc)
        elif isinstance(exc, asyncio.CancelledError | GeneratorExit):
            self.finish(rec, 499)  # the client went away (nginx's convention)
        else:
            self.finish(rec, 500, INTERNAL)

    # -- one driver for chat, streamed chat and embeddings -----------------------------------------
    def _exchange(self, rec: RequestRecord, body: dict[str, Any], kind: str, stream: bool) -> Exchange:
        """Take the gateway's fields off the body; what is left goes upstream."""
        headers = rec.headers
        metadata = pop_metadata(body, headers.get("x-raygate-metadata"))
        body.pop("metadata", None)
        provider = body.pop("provider", None) or headers.get("x-raygate-provider")
        config = body.pop("config", None)
        if config is None:
            config = headers.get("x-raygate-config")
        ex = Exchange(rec, body, kind, stream)
        ex.cache_control = body.pop("cache", None)
        guardrails = body.pop("guardrails", None)
        if guardrails is not None:  # read by the guardrails stage; refused when no set is configured
            if "guardrails" not in self.chain.names:
                raise bad_request("unknown guardrail set: no guardrail set is configured", param="guardrails",
                                  code="unknown_guardrail_set")
            ex.state["guardrails"] = guardrails
        stream_options = body.get("stream_options")
        include_usage = bool(isinstance(stream_options, dict) and stream_options.get("include_usage"))
        client_headers = {k: v for k, v in headers.items() if k.startswith("x-raygate-")}
        model = body.get("model")
        rec.metadata, rec.stream, rec.requested_model = metadata, stream, model
        ex.route = RouteRequest(model, provider, config, metadata, headers, body)
        ex.call = CallContext("", "", rec.request_id, include_usage, int(time.time()), client_headers,
                              metadata or None)
        return ex

    async def _upstream(self, ex: Exchange) -> Answer:
        """The call the chain wraps: the executor runs the plan's attempts."""
        rec, executor = ex.record, self.executor
        if ex.stream:
            stream, outcome = await executor.chat_stream(ex.plan, ex.body, ex.call, rec.attempts)
            ex.upstream = stream
            _routed(rec, outcome)
            return StreamReply(_route_headers(outcome), stream.__aiter__())
        run = executor.chat if ex.kind == "chat" else executor.embeddings
        result, outcome = await run(ex.plan, ex.body, ex.call, rec.attempts)
        _routed(rec, outcome)
        rec.usage = usage_counts(parse_usage(result))
        return Reply(result, _route_headers(outcome))

    async def _answer(self, body: dict[str, Any], rec: RequestRecord, kind: str) -> Reply:
        try:
            CHECKS[kind](body)
            ex = self._exchange(rec, body, kind, False)
            reply = await self.chain.run(ex, self._upstream)
        except BaseException as exc:
            self.fail(rec, exc)
            raise
        rec.first_byte()
        self.finish(rec, reply.status)  # type: ignore[union-attr]
        return reply  # type: ignore[return-value]

    async def chat(self, body: dict[str, Any], rec: RequestRecord) -> Reply:
        return await self._answer(body, rec, "chat")

    async def embeddings(self, body: dict[str, Any], rec: RequestRecord) -> Reply:
        return await self._answer(body, rec, "embeddings")

    async def chat_stream(self, body: dict[str, Any], rec: RequestRecord) -> StreamReply:
        """Open the stream (errors before the first byte raise here) and return its relay."""
        try:
            check_chat_request(body)
            ex = self._exchange(rec, body, "chat", True)
            answer = await self.chain.run(ex, self._upstream)
        except BaseException as exc:
            self.fail(rec, exc)
            raise
        return StreamReply(answer.headers, self._relay(ex, answer.chunks))  # type: ignore[union-attr]

    async def _relay(self, ex: Exchange, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The stream as the client gets it; the record finishes before `[DONE]` leaves."""
        rec = ex.record
        try:
            async for chunk in chunks:
                if rec.first_byte_at is None:
                    rec.first_byte()
                if chunk.endswith(SSE_DONE):
                    self._stream_done(ex, 200)
                yield chunk
        except BaseException as exc:
            if not rec.finished:
                rec.usage = usage_counts(getattr(ex.upstream, "usage", None))
            self.fail(rec, exc)
            raise
        finally:
            await aclose(chunks)
        self._stream_done(ex, 200)

    def _stream_done(self, ex: Exchange, status: int) -> None:
        if not ex.record.finished:
            ex.record.usage = usage_counts(getattr(ex.upstream, "usage", None))
            self.finish(ex.record, status)

    async def model_cards(self) -> list[dict[str, Any]]:
        """Every model a request may name (serve_app/catalog.py)."""
        return await catalog.model_cards(self.config, int(self.started_at), self._discovered)

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

    async def admin_log(self, request_id: str, body: Any, admin_id: str) -> Reply:
        """GET /v1/admin/logs/{request_id}: one finished record as stored (404 until it is)."""
        if self.records is None:
            raise not_found("request logs are not stored (no storage sink)", code="storage_disabled", param=None)
        row = await self.records.get(request_id)
        if row is None:
            raise not_found(f"no stored record for request {request_id!r} (yet)", code="log_not_found",
                            param="request_id")
        return Reply(orjson.dumps(row), {})

    async def start(self) -> None:
        """Replica start-up (ASGI lifespan): the record sink's flush loop runs from now, so records a
        dead predecessor left on this node's spool are written even before this replica's first request."""
        if self.records is not None:
            self.records.start()
        self.metrics.start()

    async def close(self) -> None:
        """Replica shutdown: last metrics, then the records still spooled (bounded; the rest stay on disk)."""
        if self.records is not None:
            await self.records.close()
        if self.prompts is not None:
            await self.prompts.close()
        await self.metrics.stop()

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

    def audit(self, actor: str | None, action: str, outcome: str, **details: Any) -> None:
        """One audit event (an admin action, a denied admin call) to the audit sinks; never raises."""
        event = {"at": time.time(), "actor": actor, "action": action, "outcome": outcome, **details}
        for sink in self.auditors:
            try:
                sink.submit(event)
            except Exception:  # noqa: BLE001 - auditing must not fail the call it describes
                log.exception("audit sink %s failed", type(sink).__name__)

    async def admin(self, method: str, path: str, body: dict[str, Any] | None, admin_id: str,
                    client_ip: str | None = None) -> Reply:
        """An admin call, audited with its outcome (mutating calls and failures alike)."""
        try:
            reply = await self._admin(method, path, body, admin_id)
        except GatewayError as err:
            self.audit(admin_id, f"{method} {path}", f"error {err.status}", client_ip=client_ip)
            raise
        if method != "GET":
            self.audit(admin_id, f"{method} {path}", "ok", client_ip=client_ip, body=body)
        return reply

    async def _admin(self, method: str, path: str, body: dict[str, Any] | None, admin_id: str) -> Reply:
        handler = self.admin_routes.get((method, path))
        if handler is None:
            for m, prefix, prefixed in self.admin_prefixes:
                if m == method and path.startswith(prefix) and len(path) > len(prefix):
                    return await prefixed(path[len(prefix):], body, admin_id)
            if any(p == path for _, p in self.admin_routes):
                raise GatewayError(405, f"method {method} is not allowed on {path}", code="method_not_allowed")
            raise not_found(f"unknown admin route {path}", code="unknown_url", param=None)
        return await handler(body, admin_id)


class AuditLog:
    """The default audit sink: one log line per event (the observability work adds a stored one)."""

    def submit(self, event: dict[str, Any]) -> None:
        audit_log.warning("audit: %s %s by %s from %s", event["action"], event["outcome"], event["actor"],
                          event.get("client_ip"))


def _routed(rec: RequestRecord, outcome: Outcome) -> None:
    rec.provider, rec.model, rec.route = outcome.attempt.provider, outcome.model, outcome.attempt.route


def require_body_object(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise bad_request("request body must be a JSON object", code="invalid_json")
    return raw

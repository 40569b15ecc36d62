"""The ingress deployment: the OpenAI protocol over HTTP (http.py) and over handle calls.

Undecorated here; builder.py applies `serve.deployment` and `serve.ingress()`. The ASGI app is
late-bound (`__serve_build_asgi_app__`), so it shares this replica's Gateway with the handle
methods below, which other Ray jobs call without HTTP (see client.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from deployments.providers.stage import Provider, RemoteProvider
from deployments.router.router import RemoteRouter, Router

from .config import GatewayConfig, resolve_config
from .errors import GatewayError
from .chain import build_chain
from .gateway import Gateway
from .http import HttpApp
from .lifecycle import RequestRecord, StreamReply, aclose
from .metrics import InProcessSink, Metrics


def assemble_gateway(config: GatewayConfig, provider_handles: dict[str, Any] | None = None,
                     router_handle: Any = None, metrics_sink: Any = None, semantic_cache: Any = None,
                     guardrails: Any = None) -> Gateway:
    """Build a replica's Gateway: in-process stages, or stand-ins for the deployed ones."""
    provider_handles = provider_handles or {}
    providers: dict[str, Any] = {}
    for name, pcfg in config.providers.items():
        handle = provider_handles.get(name)
        providers[name] = RemoteProvider(pcfg, handle) if handle is not None else Provider(pcfg)
    router = RemoteRouter(router_handle) if router_handle is not None else Router(config)
    gateway = Gateway(config, providers, router, Metrics(metrics_sink or InProcessSink()))
    if router_handle is not None:
        gateway.remote_stages["Router"] = router_handle
    for name, handle in provider_handles.items():
        gateway.remote_stages[f"Provider:{name}"] = handle
    from deployments.cache.cache import build_cache

    gateway.cache = build_cache(config, providers, gateway.metrics, semantic_cache)
    gateway.admin_routes.update(gateway.cache.admin_routes())
    if semantic_cache is not None:
        gateway.remote_stages["SemanticCache"] = semantic_cache
    if guardrails is not None:
        gateway.remote_stages["Guardrails"] = guardrails
    gateway.chain = build_chain(config, {"router": router, "cache": gateway.cache, "guardrails": guardrails,
                                         "upstream": gateway._upstream, "metrics": gateway.metrics.local})
    return gateway


def _sse_events(chunk: bytes) -> list[dict[str, Any]]:
    out = []
    for line in chunk.split(b"\n"):
        if line.startswith(b"data: ") and line != b"data: [DONE]":
            event = orjson.loads(line[6:])
            if "error" in event and "choices" not in event:
                err = event["error"]
                raise GatewayError(502, err.get("message", "stream failed"), type=err.get("type"),
                                   code=err.get("code"))
            out.append(event)
    return out


class Ingress:
    def __init__(self, config: Any, provider_handles: dict[str, Any] | None = None,
                 router_handle: Any = None, semantic_cache: Any = None, guardrails: Any = None) -> None:
        from .metrics import actor_sink

        self.config = resolve_config(config)
        self.gateway = assemble_gateway(self.config, provider_handles, router_handle, actor_sink(),
                                        semantic_cache=semantic_cache, guardrails=guardrails)
        from deployments.router.circuit import circuit_actor

        self.gateway.executor.circuits.attach(factory=circuit_actor)  # breakers shared by all replicas
        if self.config.storage.enabled:
            from deployments.records import build_storage_sink

            self.gateway.attach_records(build_storage_sink(self.config.storage, self.gateway.metrics, use_ray=True))
        from deployments.prompts import attach_prompts

        attach_prompts(self.gateway, self.config, use_ray=True)
        self.http_app = HttpApp(self.gateway, self.config, on_startup=self.gateway.start,
                                on_shutdown=self.gateway.close)
        self.http_app.echo_request_id = False  # Serve's RequestIdMiddleware sets it

    def __serve_build_asgi_app__(self) -> HttpApp:
        return self.http_app

    # -- handle API (see client.py) ------------------------------------------------------------
    def _record(self, kind: str, api_key: str | None, headers: dict[str, str] | None) -> RequestRecord:
        self.gateway.metrics.start()
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        return self.gateway.begin(kind, lowered, "handle")

    def _authorize(self, rec: RequestRecord, api_key: str | None) -> None:
        try:
            rec.key_id = self.http_app.auth.client(f"Bearer {api_key}" if api_key else None)
        except GatewayError as err:
            self.gateway.finish(rec, err.status, err)
            raise

    async def chat(self, body: dict[str, Any], api_key: str | None = None,
                   headers: dict[str, str] | None = None) -> dict[str, Any]:
        rec = self._record("chat", api_key, headers)
        self._authorize(rec, api_key)
        reply = await self.gateway.chat(dict(body, stream=False), rec)
        return orjson.loads(reply.body)

    async def chat_stream(self, body: dict[str, Any], api_key: str | None = None,
                          headers: dict[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        rec = self._record("chat", api_key, headers)
        self._authorize(rec, api_key)
        reply = await self.gateway.chat_stream(dict(body, stream=True), rec)
        async for event in self._events(reply, rec):
            yield event

    async def _events(self, reply: StreamReply, rec: RequestRecord) -> AsyncIterator[dict[str, Any]]:
        """A stream's SSE bytes as the events they carry (an error event raises GatewayError)."""
        pending = b""
        try:
            async for chunk in reply.chunks:
                pending += chunk
                cut = pending.rfind(b"\n\n")
                if cut < 0:
                    continue
                complete, pending = pending[:cut + 2], pending[cut + 2:]
                for event in _sse_events(complete):
                    yield event
        finally:
            await aclose(reply.chunks)
            if not rec.finished:  # the caller stopped before the first chunk
                self.gateway.finish(rec, 499)

    async def embeddings(self, body: dict[str, Any], api_key: str | None = None,
                         headers: dict[str, str] | None = None) -> dict[str, Any]:
        rec = self._record("embeddings", api_key, headers)
        self._authorize(rec, api_key)
        reply = await self.gateway.embeddings(dict(body), rec)
        return orjson.loads(reply.body)

    async def prompts(self, method: str, path: str, body: dict[str, Any] | None = None, key: str | None = None,
                      headers: dict[str, str] | None = None, query: str = "") -> Any:
        """/v1/prompts{path} over a handle (client.py `prompts`): `key` is the admin key for writes, the
        gateway key otherwise. A render here is not streamed (see prompts_stream)."""
        reply, _ = await self._prompt_reply(method, path, body, key, headers, query, stream=False)
        return orjson.loads(reply.body)

    async def prompts_stream(self, path: str, body: dict[str, Any], key: str | None = None,
                             headers: dict[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        """A streamed render over a handle: its chunks, the first with the `prompt` object."""
        reply, rec = await self._prompt_reply("POST", path, body, key, headers, "", stream=True)
        async for event in self._events(reply, rec):
            yield event

    async def _prompt_reply(self, method: str, path: str, body: Any, key: str | None,
                            headers: dict[str, str] | None, query: str, stream: bool) -> tuple[Any, RequestRecord]:
        api = self.gateway.prompts
        if api is None:
            raise GatewayError(404, "prompt management is disabled (prompts.enabled: false)", code="prompts_disabled")
        route = api.route(method, path, query)
        if route.action == "render":
            body = dict(body or {}, stream=stream)
        rec = self._record("chat" if route.records else None, key, headers)
        try:
            actor = api.identify(route, self.http_app.auth, f"Bearer {key}" if key else None, rec, None)
            return await api.call(route, body, rec, actor, None, via="handle"), rec
        except BaseException as exc:
            self.gateway.fail(rec, exc)
            raise

    async def models(self) -> dict[str, Any]:
        return orjson.loads(await self.gateway.models())

    async def ping(self) -> bool:
        return True

"""The OpenAI protocol over HTTP: a raw ASGI app in front of `Gateway`.

A raw ASGI callable rather than FastAPI: the framework alone costs ~0.1 ms of CPU per request
(../shared/design/lean-hot-path.md), more than the rest of the hot path. Routing is a dict
lookup on (method, path); bodies are read once and parsed with orjson; every failure leaves as
an OpenAI error body. Streams go out as the upstream's bytes, and a client that disconnects
cancels the upstream call.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from .auth import Auth
from .errors import GatewayError, not_found, sse_error_event
from .gateway import Gateway
from .lifecycle import RequestRecord, StreamReply
from .protocol import parse_json_body

log = logging.getLogger("raygate.http")

JSON = b"application/json"
_JSON_HEADERS = [(b"content-type", JSON)]
PROMPTS = "/v1/prompts"  # deployments/prompts/api.py
_SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no")]


class _Disconnected(Exception):
    pass


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def _encode_headers(base: list[tuple[bytes, bytes]], extra: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return base + [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]


def _method_not_allowed(method: str, path: str, allowed: str) -> GatewayError:
    return GatewayError(405, f"method {method} is not allowed on {path} (allowed: {allowed})",
                        code="method_not_allowed", headers={"allow": allowed})


class HttpApp:
    def __init__(self, gateway: Gateway, config: Any,
                 on_startup: Callable[[], Awaitable[None]] | None = None,
                 on_shutdown: Callable[[], Awaitable[None]] | None = None) -> None:
        self.gateway = gateway
        self.auth = Auth(config.gateway)
        self.max_body = config.gateway.max_body_bytes
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown
        # Under Serve, its request-id middleware already puts our (or its) x-request-id on every
        # response; echoing it here too would send the header twice.
        self.echo_request_id = True
        self.trusted_proxies = [ipaddress.ip_network(n, strict=False) for n in config.gateway.trusted_proxies]
        # routes whose requests are recorded (serve_app/lifecycle.py), by the record's kind
        self.kinds = {("POST", "/v1/chat/completions"): "chat", ("POST", "/v1/embeddings"): "embeddings"}
        self.routes: dict[tuple[str, str], Callable[..., Awaitable[None]]] = {
            ("POST", "/v1/chat/completions"): self.chat,
            ("POST", "/v1/embeddings"): self.embeddings,
            ("GET", "/v1/models"): self.models,
            ("GET", "/health"): self.health,
            ("GET", "/ready"): self.ready,
            ("GET", "/metrics"): self.metrics,
        }
        self.paths = {p for _, p in self.routes}

    # -- ASGI entry ------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.on_startup is not None:
                    await self.on_startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.on_shutdown is not None:
                    await self.on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        gateway = self.gateway
        gateway.metrics.start()
        headers = _headers(scope)
        method, path = scope["method"], scope["path"]
        root = scope.get("root_path")
        if root and path.startswith(root):  # mounted under a route prefix (Serve apps side by side)
            path = path[len(root):]
            scope["path"] = path
        key = (method, path)
        kind = self.kinds.get(key)
        rec = gateway.begin(kind, headers, "http", self.client_ip(scope, headers) if kind else None)
        handler = self.routes.get(key)
        try:
            if handler is None:
                handler = self._fallback_route(method, path)
            await handler(scope, receive, send, rec)
        except GatewayError as err:
            gateway.finish(rec, err.status, err)
            await self.send_error(send, err, rec)
        except _Disconnected:
            gateway.finish(rec, 499)
        except Exception as exc:  # a bug must still answer as an OpenAI error and keep the replica up
            log.exception("unhandled error on %s %s (request %s)", method, path, rec.request_id)
            gateway.fail(rec, exc)
            await self.send_error(send, GatewayError(500, "internal gateway error", code="internal_error"), rec)
        finally:
            if not rec.finished:  # e.g. a stream whose client left before its first chunk
                gateway.finish(rec, 499)

    def client_ip(self, scope: dict[str, Any], headers: dict[str, str]) -> str | None:
        """The peer, or with `gateway.trusted_proxies` the right-most X-Forwarded-For hop not trusted."""
        client = scope.get("client")
        peer = client[0] if client else None
        forwarded = headers.get("x-forwarded-for")
        if not forwarded or not self.trusted_proxies or peer is None or not self._trusted(peer):
            return peer
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop
        return hops[0] if hops else peer

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False  # not an address (a spoofed token): never trusted
        return any(ip in net for net in self.trusted_proxies)

    def _fallback_route(self, method: str, path: str) -> Callable[..., Awaitable[None]]:
        if path.startswith("/v1/models/"):
            if method == "GET":
                return self.model
            raise _method_not_allowed(method, path, "GET")
        if path.startswith("/v1/admin/"):
            return self.admin
        if path == PROMPTS or path.startswith(PROMPTS + "/"):
            return self.prompts
        if path in self.paths:
            allowed = ", ".join(m for m, p in self.routes if p == path)
            raise _method_not_allowed(method, path, allowed)
        raise GatewayError(404, f"unknown path {path}", code="unknown_url", type="invalid_request_error")

    # -- I/O helpers -------------------------------------------------------------------------------
    async def read_body(self, scope: dict[str, Any], receive: Any) -> bytes:
        limit = self.max_body
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    raise GatewayError(413, f"request body is {declared} bytes; the limit is {limit}",
                                       code="request_too_large")
                break
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            data = message.get("body", b"")
            if data:
                size += len(data)
                if size > limit:
                    raise GatewayError(413, f"request body exceeds the limit of {limit} bytes",
                                       code="request_too_large")
                chunks.append(data)
            if not message.get("more_body"):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def send_bytes(self, send: Any, status: int, body: bytes, rec: RequestRecord,
                         extra: dict[str, str] | None = None, content_type: bytes = JSON) -> None:
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        if self.echo_request_id:
            headers.append((b"x-request-id", rec.request_id.encode()))
        if extra:
            headers = _encode_headers(headers, extra)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def send_error(self, send: Any, err: GatewayError, rec: RequestRecord) -> None:
        try:
            await self.send_bytes(send, err.status, err.to_json(), rec, err.response_headers())
        except Exception:  # the client is gone or the response had started; nothing left to tell
            log.debug("could not send error for request %s", rec.request_id)

    def client_key(self, rec: RequestRecord) -> None:
        rec.key_id = self.auth.client(rec.headers.get("authorization"))

    # -- routes ----------------------------------------------------------------------------------------
    async def chat(self, scope: dict[str, Any], receive: Any, send: Any, rec: RequestRecord) -> None:
        self.client_key(rec)
        body = parse_json_body(await self.read_body(scope, receive))
        if body.get("stream") is True:
            await self._until_disconnect(receive, self._stream(send, body, rec))
            return
        reply = await self._until_disconnect(receive, self.gateway.chat(body, rec))
        await self.send_bytes(send, reply.status, reply.body, rec, reply.headers)

    async def _until_disconnect(self, receive: Any, work: Awaitable[Any]) -> Any:
        """Await `work`; if the client disconnects meanwhile, cancel it (and so its upstream call).

        One watcher task per request (uvicorn reports a disconnect through `receive`, it does
        not cancel the handler), cancelled as soon as the work is done.
        """
        current = asyncio.current_task()
        assert current is not None
        gone = False

        async def watch() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            gone = True
            current.cancel()

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            return await work
        except asyncio.CancelledError:
            if gone:
                raise _Disconnected from None
            raise
        finally:
            watcher.cancel()

    async def _stream(self, send: Any, body: dict[str, Any], rec: RequestRecord) -> None:
        """Open the stream (errors before the first byte are plain error responses), then relay it.

        After the headers are out, a failure becomes exactly one SSE error event and the stream
        ends without `data: [DONE]`, so clients never mistake it for a complete answer.
        """
        await self._send_stream(send, await self.gateway.chat_stream(body, rec), rec)

    async def _send_stream(self, send: Any, reply: StreamReply, rec: RequestRecord) -> None:
        chunks = reply.chunks
        try:
            base = _SSE_HEADERS + [(b"x-request-id", rec.request_id.encode())] if self.echo_request_id else _SSE_HEADERS
            headers = _encode_headers(base, reply.headers)
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            try:
                async for chunk in chunks:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except GatewayError as err:
                log.warning("stream %s failed after it started: %s", rec.request_id, err.message)
                await send({"type": "http.response.body", "body": sse_error_event(err), "more_body": True})
            except Exception:  # a bug mid-stream still ends the stream with an error event
                log.exception("stream %s failed after it started", rec.request_id)
                err = GatewayError(500, "internal gateway error during the stream", code="internal_error")
                await send({"type": "http.response.body", "body": sse_error_event(err), "more_body": True})
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
        await send({"type": "http.response.body", "body": b""})

    async def embeddings(self, scope: dict[str, Any], receive: Any, send: Any, rec: RequestRecord) -> None:
        self.client_key(rec)
        body = parse_json_body(await self.read_body(scope, receive))
        reply = await self._until_disconnect(receive, self.gateway.embeddings(body, rec))
        await self.send_bytes(send, reply.status, reply.body, rec, reply.headers)

    async def models(self, scope: dict[str, Any], receive: Any, send: Any, rec: RequestRecord) -> None:
        self.client_key(rec)
        await self.send_bytes(send, 200, await self.gateway.models(), rec)

    async def model(self, scope: dict[str, Any], receive: Any, send: Any, rec: RequestRecord) -> None:
        self.client_key(rec)
        model_id = scope["path"][len("/v1/models/"):]
        await self.send_bytes(send, 200, await self.gateway.model(model_id), rec)

    async def admin(self, scope: dict[str, Any], receive: Any, send: Any, rec: RequestRecord) -> None:
        client_ip = self.client_ip(scope, rec.headers)
        try:
            admin_id = self.auth.admin(rec.headers.get("authorization"))
        except GatewayError as err:  # a failed admin authentication is an audit event
            self.gateway.audit(None, f"{scope['method']} {scope['path']}", f"denied {err.status}", client_ip=client_ip)
            raise
        raw = await self.read_body(scope, receive) if scope["method"] in ("POST", "PUT", "PATCH") else b""
        body = parse_json_body(raw) if raw else None
        reply = await self.gateway.admin(scope["method"], scope["path"], body, admin_id, client_ip)
        await self.send_bytes(send, reply.status, reply.body, rec, reply.headers)

    async def prompts(self, scope: dict[str, Any], receive: Any, send: Any, rec: RequestRecord) -> None:
        """/v1/prompts...: deployments/prompts/api.py decides the access (admin key for writes) and answers; a
        render is recorded as a chat request."""
        api = self.gateway.prompts
        if api is None:
            raise not_found("prompt management is disabled (prompts.enabled: false)", code="prompts_disabled",
                            param=None)
        method = scope["method"]
        route = api.route(method, scope["path"][len(PROMPTS):], scope.get("query_string", b"").decode("latin-1"))
        client_ip = self.client_ip(scope, rec.headers)
        if route.records:
            rec.kind, rec.client_ip = "chat", client_ip
        actor = api.identify(route, self.auth, rec.headers.get("authorization"), rec, client_ip)
        raw = await self.read_body(scope, receive) if method in ("POST", "PUT", "PATCH") else b""
        body = parse_json_body(raw) if raw else None

        async def answer() -> None:
            reply = await api.call(route, body, rec, actor, client_ip)
            if isinstance(reply, StreamReply):
                await self._send_stream(send, reply, rec)
            else:
                await self.send_bytes(send, reply.status, reply.body, rec, reply.headers)

        await self._until_disconnect(receive, answer())

    async def health(self, scope: dict[str, Any], receive: Any, send: Any, rec: RequestRecord) -> None:
        await self.send_bytes(send, 200, self.gateway.health(), rec)

    async def ready(self, scope: dict[str, Any], receive: Any, send: Any, rec: RequestRecord) -> None:
        ok, reason = await self.gateway.ready()
        body = orjson.dumps({"status": "ready" if ok else "not_ready", "reason": reason})
        await self.send_bytes(send, 200 if ok else 503, body, rec)

    async def metrics(self, scope: dict[str, Any], receive: Any, send: Any, rec: RequestRecord) -> None:
        text = await self.gateway.metrics.render()
        await self.send_bytes(send, 200, text.encode(), rec, content_type=b"text/plain; version=0.0.4")

"""An OpenAI-compatible upstream that fails on command (routing and reliability tests).

One server hosts any number of independent targets: a provider's `base_url` is
`upstream.url("<target>")` = `http://127.0.0.1:<port>/<target>/v1`. Each target plays a script
of steps, one per request, then its default step (normally "ok"):

    ok                      a normal completion / SSE stream (content "<target> says hi ...")
    ok:<s>                  the same after waiting <s> seconds
    status:<code>[:<ra>]    an OpenAI error body with that status (Retry-After: <ra> if given)
    ctx                     400 context_length_exceeded
    reset                   the connection is dropped before any response
    cut:<n>                 200, then <n> stream chunks, then the connection is dropped
                            (n=0: headers only; a non-streamed call gets a truncated body)
    stall:<n>:<s>           streams: <n> chunks, then a pause of <s> seconds, then the rest

Commands: `upstream.script(target, *steps, default="ok")` from the test process, or over HTTP
`POST /_control/<target>` with `{"steps": [...], "default": "ok"}`; a request header
`x-faulty-step: <step>` overrides the script for that request. Every request is logged with its
arrival time (`upstream.calls(target)`, or `GET /_control/<target>`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from aiohttp import web

from .common import MockServer, ServedMock, json_response

WORDS = ["says", "hi", "from", "the", "faulty", "upstream"]


@dataclass
class Call:
    t: float  # time.time() at arrival
    target: str
    step: str
    stream: bool
    model: str | None
    body: dict[str, Any] = field(default_factory=dict)


class FaultyUpstream(ServedMock):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, list[str]] = {}
        self._defaults: dict[str, str] = {}
        self._calls: list[Call] = []
        app = web.Application()
        app.router.add_post("/_control/{target}", self._control_set)
        app.router.add_get("/_control/{target}", self._control_get)
        app.router.add_post("/{target}/v1/chat/completions", self._chat)
        app.router.add_post("/{target}/v1/embeddings", self._embeddings)
        self.server = MockServer(app)

    # -- commands --------------------------------------------------------------------------------------
    @property
    def root(self) -> str:
        return self.server.base_url

    def url(self, target: str) -> str:
        return f"{self.server.base_url}/{target}/v1"

    def script(self, target: str, *steps: str, default: str = "ok") -> None:
        with self._lock:
            self._scripts[target] = list(steps)
            self._defaults[target] = default

    def calls(self, target: str) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if c.target == target]

    def _next_step(self, target: str, override: str | None) -> str:
        with self._lock:
            script = self._scripts.get(target)
            if script:
                step = script.pop(0)
            else:
                step = self._defaults.get(target, "ok")
        return override or step

    # -- control endpoint ----------------------------------------------------------------------------
    async def _control_set(self, request: web.Request) -> web.Response:
        data = await request.json()
        self.script(request.match_info["target"], *data.get("steps", []), default=data.get("default", "ok"))
        return json_response(200, {"ok": True})

    async def _control_get(self, request: web.Request) -> web.Response:
        calls = [asdict(c) for c in self.calls(request.match_info["target"])]
        return json_response(200, {"calls": calls})

    # -- the OpenAI API -----------------------------------------------------------------------------------
    async def _chat(self, request: web.Request) -> web.StreamResponse:
        target = request.match_info["target"]
        body = orjson.loads(await request.read() or b"{}")
        stream = body.get("stream") is True
        step = self._next_step(target, request.headers.get("x-faulty-step"))
        with self._lock:
            self._calls.append(Call(time.time(), target, step, stream, body.get("model"), body))
        kind, _, arg = step.partition(":")
        model = body.get("model") or "unknown"
        if kind == "ok" and arg:
            await asyncio.sleep(float(arg))
        elif kind == "status":
            code, _, retry_after = arg.partition(":")
            headers = {"retry-after": retry_after} if retry_after else None
            return json_response(int(code), {"error": {"message": f"injected failure {code}", "type": "api_error",
                                                       "param": None, "code": None}}, headers)
        elif kind == "ctx":
            return json_response(400, {"error": {"message": "This model's maximum context length is 8192 tokens",
                                                  "type": "invalid_request_error", "param": "messages",
                                                  "code": "context_length_exceeded"}})
        elif kind == "reset":
            _drop(request)
            return web.Response(status=500)
        if stream:
            return await self._stream(request, target, model, kind, arg, body)
        if kind == "cut":
            resp = web.StreamResponse(status=200, headers={"content-type": "application/json",
                                                           "content-length": "500"})
            await resp.prepare(request)
            await resp.write(b'{"id": "chatcmpl-x", "object": "chat.comp')
            _drop(request)
            return resp
        text = f"{target} " + " ".join(WORDS)
        return json_response(200, {
            "id": "chatcmpl-faulty", "object": "chat.completion", "created": 1700000000, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10}})

    async def _stream(self, request: web.Request, target: str, model: str, kind: str, arg: str,
                      body: dict[str, Any]) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={"content-type": "text/event-stream",
                                                       "cache-control": "no-cache"})
        await resp.prepare(request)
        pieces = [target] + [" " + w for w in WORDS]
        events = [_chunk(model, {"role": "assistant", "content": ""})]
        events += [_chunk(model, {"content": p}) for p in pieces]
        events.append(_chunk(model, {}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(b"data: " + orjson.dumps({
                "id": "chatcmpl-faulty", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
                "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10}}) + b"\n\n")
        events.append(b"data: [DONE]\n\n")
        cut_at = stall_at = None
        stall = 0.0
        if kind == "cut":
            cut_at = int(arg or 0)
        elif kind == "stall":
            n, _, seconds = arg.partition(":")
            stall_at, stall = int(n or 0), float(seconds or 1)
        for i, event in enumerate(events):
            if i == cut_at:
                _drop(request)
                return resp
            if i == stall_at:
                await asyncio.sleep(stall)
            await resp.write(event)
            await asyncio.sleep(0.001)
        await resp.write_eof()
        return resp

    async def _embeddings(self, request: web.Request) -> web.Response:
        target = request.match_info["target"]
        body = orjson.loads(await request.read() or b"{}")
        step = self._next_step(target, request.headers.get("x-faulty-step"))
        with self._lock:
            self._calls.append(Call(time.time(), target, step, False, body.get("model"), body))
        if step.startswith("status:"):
            code = int(step.split(":")[1])
            return json_response(code, {"error": {"message": "injected", "type": "api_error", "param": None,
                                                  "code": None}})
        return json_response(200, {"object": "list", "model": body.get("model"),
                                   "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                                   "usage": {"prompt_tokens": 1, "total_tokens": 1}})


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    return b"data: " + orjson.dumps({
        "id": "chatcmpl-faulty", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}) + b"\n\n"


def _drop(request: web.Request) -> None:
    """Drop the TCP connection at once (the client sees a reset / a cut body)."""
    transport = request.transport
    if transport is not None:
        transport.abort()


__all__ = ["Call", "FaultyUpstream"]

"""An OpenAI-compatible upstream that records what it receives and misbehaves on command.

Runs aiohttp in a background thread on 127.0.0.1 (reachable from Ray replicas). The model name
selects the behaviour:
  "ok" (any other name)  a normal completion / SSE stream (usage chunk only if asked)
  "slow-<seconds>"       waits before answering (timeouts)
  "status-<code>"        answers with that status and an OpenAI error body (Retry-After on 429/503)
  "cut"                  a stream that stops after two chunks without [DONE]; non-stream: connection reset
Every request's JSON body and headers are appended to `.requests`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

from aiohttp import web

LEAKY_MESSAGE = "Incorrect API key provided: sk-test-****************************cret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-rec", "object": "chat.completion", "created": 1700000000, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {"id": "chatcmpl-rec", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _usage_chunk(model: str) -> bytes:
    usage = {"id": "chatcmpl-rec", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
             "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}}
    return b"data: " + json.dumps(usage).encode() + b"\n\n"


class RecordingUpstream:
    def __init__(self) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.requests: list[dict[str, Any]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> RecordingUpstream:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("recording upstream did not start")
        return self

    def __enter__(self) -> RecordingUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_get("/v1/models", self.models)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    async def _misbehave(self, model: str, stream: bool) -> web.StreamResponse | None:
        if model.startswith("slow-"):
            await asyncio.sleep(float(model[5:]))
        if model.startswith("status-"):
            status = int(model[7:])
            message = LEAKY_MESSAGE if status in (401, 403) else f"upstream says {status}"
            headers = {"retry-after": "7"} if status in (429, 503) else {}
            return web.json_response({"error": {"message": message, "type": "upstream_type",
                                                "param": None, "code": f"code_{status}"}},
                                     status=status, headers=headers)
        return None

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"path": request.path, "body": body, "headers": dict(request.headers)})
        model = body.get("model", "")
        stream = bool(body.get("stream"))
        early = await self._misbehave(model, stream)
        if early is not None:
            return early
        if not stream:
            if model == "cut":
                assert request.transport is not None
                request.transport.abort()
                return web.Response()
            return web.json_response(_completion(model, "recorded reply"))
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(_chunk(model, {"role": "assistant", "content": ""}))
        for word in ("recorded", " stream", " reply"):
            await resp.write(_chunk(model, {"content": word}))
            if model == "cut" and word == " stream":
                assert request.transport is not None
                request.transport.abort()
                return resp
        await resp.write(_chunk(model, {}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            await resp.write(_usage_chunk(model))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def models(self, request: web.Request) -> web.Response:
        self.requests.append({"path": request.path, "body": None, "headers": dict(request.headers)})
        return web.json_response({"object": "list", "data": [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "upstream"} for m in ("up-a", "up-b")]})

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append({"path": request.path, "body": body, "headers": dict(request.headers)})
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return web.json_response({"object": "list", "model": body.get("model"),
                                  "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2]}
                                           for i, _ in enumerate(inputs)],
                                  "usage": {"prompt_tokens": 1, "total_tokens": 1}})

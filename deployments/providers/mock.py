"""`mock`: a built-in provider with no network, for demos, tests and benchmarks.

It is the OpenAI adapter over an in-memory upstream that speaks the OpenAI wire format, so the
gateway's real translation and relay code runs. Replies are deterministic (a function of the
request): text, tool calls when `tools` are given, JSON for `response_format` (mock_reply.py);
usage counts words, streams send one chunk per word (JSON and tool arguments in pieces), in
OpenAI's chunk shapes; embeddings are seeded by the text and honour `encoding_format`. Failure
injection: `fail_status` with `fail_rate` in the config, or per request the header
`x-raygate-mock-fail: <status>|cut|timeout` (honoured by this provider only).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import struct
from collections.abc import AsyncIterator
from typing import Any

import orjson
from pydantic import Field

from serve_app.errors import UpstreamError

from .base import CallContext, ProviderConfig, UpstreamRequest
from .embeddings import floats_to_base64
from .mock_reply import MockAnswer, answer
from .openai import OpenAIAdapter
from .spec import ProviderSpec
from .transport import MemoryStream, Timeouts, UpstreamResponse, timeout_error, unreachable_error

FAIL_HEADER = "x-raygate-mock-fail"


class MockConfig(ProviderConfig):
    type: str = "mock"
    latency_ms: float = Field(0, ge=0, description="Delay before the answer or the first chunk.")
    chunk_delay_ms: float = Field(0, ge=0, description="Delay between stream chunks.")
    reply: str | None = Field(None, description="Fixed reply text; default: echoes the question.")
    fail_status: int | None = Field(None, ge=400, le=599)
    fail_rate: float = Field(0.0, ge=0, le=1)
    embedding_dim: int = Field(16, ge=1, le=4096)
    # No `models` list by default: a mock stands in for any provider in tests and receives any name
    # (configs/dev.yaml declares `models: [mock]`, so a typo there is a 404).
    model: str | None = "mock"


class MockAdapter(OpenAIAdapter):
    default_base_url = "mock://local/v1"
    forwards_metadata = False

    def chat_request(self, body: dict[str, Any], ctx: CallContext, stream: bool) -> UpstreamRequest:
        req = super().chat_request(body, ctx, stream)
        return _with_fail_header(req, ctx)

    def embeddings_request(self, body: dict[str, Any], ctx: CallContext) -> UpstreamRequest:
        return _with_fail_header(super().embeddings_request(body, ctx), ctx)


def _with_fail_header(req: UpstreamRequest, ctx: CallContext) -> UpstreamRequest:
    fail = ctx.client_headers.get(FAIL_HEADER)
    if fail:
        req.headers = {**req.headers, FAIL_HEADER: fail}
    return req


def _words(text: str) -> int:
    return max(1, len(text.split()))


def _last_user_text(body: dict[str, Any]) -> str:
    for msg in reversed(body.get("messages") or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _prompt_tokens(body: dict[str, Any]) -> int:
    total = 0
    for msg in body.get("messages") or []:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, str):
            total += _words(content)
        elif isinstance(content, list):
            total += sum(_words(p.get("text", "")) for p in content if isinstance(p, dict))
    return max(total, 1)


class MockUpstream:
    """The in-memory OpenAI-compatible server behind the mock provider (a Transport)."""

    def __init__(self, config: MockConfig) -> None:
        self.config = config
        self._rng = random.Random()

    # -- failure injection -------------------------------------------------------------------
    def _failure(self, req: UpstreamRequest) -> str | None:
        fail = req.headers.get(FAIL_HEADER)
        if fail:
            return fail
        cfg = self.config
        if cfg.fail_status and cfg.fail_rate and self._rng.random() < cfg.fail_rate:
            return str(cfg.fail_status)
        return None

    @staticmethod
    def _error_response(status: int) -> UpstreamResponse:
        body = orjson.dumps({"error": {"message": f"mock failure injected (status {status})",
                                       "type": "mock_error", "param": None, "code": "mock_failure"}})
        headers = {"content-type": "application/json"}
        if status in (429, 503, 529):
            headers["retry-after"] = "1"
        return UpstreamResponse(status, headers, body)

    async def _delay(self, seconds: float, timeouts: Timeouts, provider: str) -> None:
        if seconds <= 0:
            return
        if seconds > timeouts.total:
            await asyncio.sleep(timeouts.total)
            raise timeout_error(provider, timeouts.total)
        await asyncio.sleep(seconds)

    def _reply(self, body: dict[str, Any]) -> str:
        if self.config.reply is not None:
            return self.config.reply
        question = _last_user_text(body)
        return f"Mock reply to: {question}" if question else "Mock reply."

    # -- Transport -----------------------------------------------------------------------------
    async def request(self, req: UpstreamRequest, timeouts: Timeouts, provider: str) -> UpstreamResponse:
        failure = self._failure(req)
        await self._delay(self.config.latency_ms / 1000, timeouts, provider)
        if failure == "timeout":
            await self._delay(timeouts.total + 1, timeouts, provider)
        if failure == "cut":
            raise unreachable_error(provider, ConnectionResetError("connection reset by mock"))
        if failure and failure.isdigit():
            return self._error_response(int(failure))
        if req.method == "GET" and req.url.endswith("/models"):
            listing = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "mock"}
                       for m in self.config.models]
            return UpstreamResponse(200, {"content-type": "application/json"},
                                    orjson.dumps({"object": "list", "data": listing}))
        body = orjson.loads(req.body or b"{}")
        if req.url.endswith("/embeddings"):
            return UpstreamResponse(200, {"content-type": "application/json"}, self._embeddings(body))
        return UpstreamResponse(200, {"content-type": "application/json"}, self._completion(body))

    async def open_stream(self, req: UpstreamRequest, timeouts: Timeouts, provider: str) -> MemoryStream:
        failure = self._failure(req)
        await self._delay(self.config.latency_ms / 1000, timeouts, provider)
        if failure == "timeout":
            await self._delay(timeouts.total + 1, timeouts, provider)
        if failure and failure.isdigit():
            err = self._error_response(int(failure))
            return MemoryStream(err.status, err.headers, err.body)
        body = orjson.loads(req.body or b"{}")
        return MemoryStream(200, {"content-type": "text/event-stream"},
                            self._stream(body, cut=failure == "cut"))

    # -- bodies ----------------------------------------------------------------------------------
    def _answer(self, body: dict[str, Any]) -> MockAnswer:
        return answer(body, self._reply(body))

    def _usage(self, body: dict[str, Any], completion: int) -> dict[str, int]:
        prompt = _prompt_tokens(body)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    @staticmethod
    def _base(body: dict[str, Any], obj: str) -> dict[str, Any]:
        seed = orjson.dumps(body.get("messages") or [])
        return {"id": "chatcmpl-mock-" + hashlib.sha1(seed).hexdigest()[:16], "object": obj,
                "created": 1700000000, "model": body.get("model") or "mock", "system_fingerprint": "fp_mock"}

    def _completion(self, body: dict[str, Any]) -> bytes:
        ans = self._answer(body)
        n = body.get("n") or 1
        message: dict[str, Any] = {"role": "assistant", "content": ans.text, "refusal": None}
        if ans.tool_name is not None:
            message["tool_calls"] = [{"id": ans.tool_call_id(body), "type": "function",
                                      "function": {"name": ans.tool_name, "arguments": ans.arguments}}]
        return orjson.dumps({
            **self._base(body, "chat.completion"),
            "choices": [{"index": i, "message": message, "logprobs": None, "finish_reason": ans.finish_reason}
                        for i in range(n)],
            "usage": self._usage(body, ans.output_tokens() * n),
        })

    async def _stream(self, body: dict[str, Any], cut: bool) -> AsyncIterator[bytes]:
        """OpenAI's chunk shapes: a role chunk, content (or tool-call argument) pieces, the finish
        chunk, the usage chunk when `stream_options.include_usage`, then [DONE]."""
        ans = self._answer(body)
        base = self._base(body, "chat.completion.chunk")

        def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return b"data: " + orjson.dumps({**base, "choices": [choice]}) + b"\n\n"

        if ans.tool_name is not None:
            yield event({"role": "assistant", "content": None, "refusal": None, "tool_calls": [
                {"index": 0, "id": ans.tool_call_id(body), "type": "function",
                 "function": {"name": ans.tool_name, "arguments": ""}}]})
            pieces = [{"tool_calls": [{"index": 0, "function": {"arguments": p}}]}
                      for p in _split(ans.arguments or "")]
        else:
            yield event({"role": "assistant", "content": "", "refusal": None})
            text = ans.text or ""
            words = text.split(" ")
            parts = _split(text) if ans.is_json else [words[0], *(" " + w for w in words[1:])]
            pieces = [{"content": p} for p in parts]
        delay = self.config.chunk_delay_ms / 1000
        for i, delta in enumerate(pieces):
            if delay:
                await asyncio.sleep(delay)
            yield event(delta)
            if cut and i >= min(2, len(pieces) - 1):
                return  # upstream dropped: no finish chunk, no [DONE]
        yield event({}, ans.finish_reason)
        opts = body.get("stream_options") or {}
        if opts.get("include_usage"):
            usage = self._usage(body, ans.output_tokens())
            yield b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n"
        yield b"data: [DONE]\n\n"

    def _embeddings(self, body: dict[str, Any]) -> bytes:
        inputs = body.get("input")
        if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        dim = body.get("dimensions") or self.config.embedding_dim
        as_base64 = body.get("encoding_format") == "base64"  # as OpenAI answers: float32 LE, base64
        data = []
        tokens = 0
        for i, item in enumerate(inputs or []):
            text = item if isinstance(item, str) else " ".join(map(str, item))
            tokens += _words(text)
            vector = _vector(text, dim)
            data.append({"object": "embedding", "index": i,
                         "embedding": floats_to_base64(vector) if as_base64 else vector})
        return orjson.dumps({"object": "list", "data": data, "model": body.get("model") or "mock",
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def _split(text: str, size: int = 12) -> list[str]:
    """JSON text in pieces (a stream cuts it anywhere; joined, the pieces are the text again)."""
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def _vector(text: str, dim: int) -> list[float]:
    """A deterministic unit vector seeded by the text."""
    out: list[float] = []
    counter = 0
    while len(out) < dim:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        out.extend(v / 2**31 - 1.0 for v in struct.unpack(">8I", digest))
        counter += 1
    vec = out[:dim]
    norm = sum(v * v for v in vec) ** 0.5 or 1.0
    return [round(v / norm, 6) for v in vec]


def make_transport(config: ProviderConfig) -> MockUpstream:
    assert isinstance(config, MockConfig)
    return MockUpstream(config)


__all__ = ["MockAdapter", "MockConfig", "MockUpstream", "UpstreamError", "make_transport"]


SPEC = ProviderSpec(config_model=MockConfig, adapter=MockAdapter, make_transport=make_transport)

"""A tiny OpenAI-compatible echo model that speaks what the `ray-serve` provider accepts, for tests.

`EchoLLM` is a plain class (unit tests drive it through a fake handle); `build_app()` wraps it as a
Serve deployment named `EchoLLM` (integration tests deploy it). Two protocols:

- `chat(request)`: the simple one. A dict (the OpenAI request) in; a `chat.completion` dict out, or,
  when `stream` is true, an async generator of `data: {...}\\n\\n` strings ending with `data: [DONE]`.
  Errors come back as `{"error": {"message", "type", "code": <status>}}`.
- `llm_chat(request, raw_request_info=None)`: Ray Serve LLM's `LLMServer.chat` shape. Always an
  async generator; it yields one pydantic `ChatCompletionResponse`-like object, or batches (lists)
  of SSE strings, or an `ErrorResponse`-like object (`.error.code` = status). It accepts a dict or a
  pydantic request object (see `StubChatRequest`, usable as the provider's `request_class`).
`embeddings(request)` / `llm_embeddings(request)` do the same for /v1/embeddings.

The reply echoes the last user message ("Echo: ..."); with `tools` (and `tool_choice` not "none")
and "weather" in the message it calls the first tool instead; "error:<status>" answers an error;
"cut" streams three chunks and raises (a replica failing mid-stream); "error_midstream" streams three
chunks and then an error (vLLM's `{"error": ErrorResponse}` event; an `ErrorResponse` object in the
LLMServer protocol), as an engine that dies mid-generation does.
"""

from __future__ import annotations

import asyncio
import hashlib
import pickle
from collections.abc import AsyncIterator
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict


class StubChatRequest(BaseModel):
    """Stand-in for ray.serve.llm's ChatCompletionRequest (extra fields kept, like vLLM's)."""

    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[dict[str, Any]]
    stream: bool = False


class _Response(BaseModel):
    """Stand-in for vLLM's pydantic ChatCompletionResponse / EmbeddingResponse."""

    model_config = ConfigDict(extra="allow")


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: int


class ErrorResponse(BaseModel):
    error: ErrorInfo


def _as_dict(request: Any) -> dict[str, Any]:
    if hasattr(request, "model_dump"):
        return request.model_dump()
    return dict(request)


def _last_user(body: dict[str, Any]) -> str:
    for msg in reversed(body.get("messages") or []):
        if msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return content or ""
    return ""


async def _once(item: Any) -> AsyncIterator[Any]:
    yield item


ENGINE_DEAD = {"error": {"message": "The engine is dead; it cannot serve more requests.",
                         "type": "InternalServerError", "param": None, "code": 500}}


class EchoLLM:
    def __init__(self, model_id: str = "echo-1", chunk_delay_s: float = 0.0) -> None:
        self.model_id = model_id
        self.chunk_delay_s = chunk_delay_s

    # -- answers ----------------------------------------------------------------------------------
    def _error(self, body: dict[str, Any]) -> dict[str, Any] | None:
        text = _last_user(body).strip()
        if text.startswith("error:"):
            status = int(text[6:] or 500)
            kind = "BadRequestError" if status < 500 else "InternalServerError"
            return {"error": {"message": f"stub error {status}", "type": kind, "param": None, "code": status}}
        return None

    def _plan(self, body: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
        text = _last_user(body)
        tools = body.get("tools") or []
        if tools and body.get("tool_choice") != "none" and "weather" in text:
            name = tools[0]["function"]["name"]
            call_id = "call_" + hashlib.sha1(text.encode()).hexdigest()[:12]
            return None, [{"id": call_id, "type": "function",
                           "function": {"name": name, "arguments": orjson.dumps({"location": "Paris"}).decode()}}]
        if (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
            return orjson.dumps({"echo": text}).decode(), []
        return f"Echo: {text}", []

    def _usage(self, body: dict[str, Any], text: str | None, calls: list[dict[str, Any]]) -> dict[str, int]:
        prompt = sum(len(str(m.get("content") or "").split()) for m in body.get("messages") or []) or 1
        completion = len((text or "").split()) + 5 * len(calls)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        text, calls = self._plan(body)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            message["tool_calls"] = calls
        return {"id": "chatcmpl-stub-" + hashlib.sha1(orjson.dumps(body.get("messages"))).hexdigest()[:10],
                "object": "chat.completion", "created": 1700000000, "model": body.get("model") or self.model_id,
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": "tool_calls" if calls else "stop", "stop_reason": None}],
                "usage": self._usage(body, text, calls)}

    def _chunks(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        text, calls = self._plan(body)
        base = {"id": "chatcmpl-stub-stream", "object": "chat.completion.chunk", "created": 1700000000,
                "model": body.get("model") or self.model_id}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

        out = [chunk({"role": "assistant", "content": ""})]
        for i, call in enumerate(calls):  # vLLM style: id + name first, then arguments in pieces
            out.append(chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                              "function": {"name": call["function"]["name"]}}]}))
            args = call["function"]["arguments"]
            for piece in (args[: len(args) // 2], args[len(args) // 2:]):
                out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
        for i, word in enumerate((text or "").split(" ") if text else []):
            out.append(chunk({"content": word if i == 0 else " " + word}))
        out.append(chunk({}, "tool_calls" if calls else "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            out.append({**base, "choices": [], "usage": self._usage(body, text, calls)})
        return out

    async def _sse(self, body: dict[str, Any]) -> AsyncIterator[str]:
        text = _last_user(body).strip()
        for n, c in enumerate(self._chunks(body)):
            if self.chunk_delay_s:
                await asyncio.sleep(self.chunk_delay_s)
            if text == "cut" and n == 3:
                raise RuntimeError("replica lost its engine mid-stream")
            if text == "error_midstream" and n == 3:
                yield "data: " + orjson.dumps(ENGINE_DEAD).decode() + "\n\n"
                return
            yield "data: " + orjson.dumps(c).decode() + "\n\n"
        yield "data: [DONE]\n\n"

    # -- the simple protocol ------------------------------------------------------------------------
    def chat(self, request: Any) -> Any:
        body = _as_dict(request)
        err = self._error(body)
        if body.get("stream"):
            return self._sse(body) if err is None else _once(err)
        return err if err is not None else self._completion(body)

    def embeddings(self, request: Any) -> dict[str, Any]:
        return self._embeddings(_as_dict(request))

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        data = []
        for i, text in enumerate(inputs):
            digest = hashlib.sha256(str(text).encode()).digest()
            data.append({"object": "embedding", "index": i, "embedding": [round(b / 255 - 0.5, 6) for b in digest[:8]]})
        tokens = sum(len(str(t).split()) for t in inputs)
        return {"object": "list", "data": data, "model": body.get("model") or self.model_id,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    # -- Ray Serve LLM's LLMServer protocol -----------------------------------------------------------
    async def llm_chat(self, request: Any, raw_request_info: Any = None) -> AsyncIterator[Any]:
        body = _as_dict(request)
        err = self._error(body)
        if err is not None:
            yield ErrorResponse.model_validate(err)
            return
        if not body.get("stream"):
            yield _Response.model_validate(self._completion(body))
            return
        batch: list[str] = []
        async for event in self._sse(body):
            if event.startswith('data: {"error"'):  # LLMServer yields the ErrorResponse itself
                if batch:
                    yield batch
                yield ErrorResponse.model_validate(ENGINE_DEAD)
                return
            batch.append(event)
            if len(batch) == 3:  # LLMServer batches stream items into lists
                yield batch
                batch = []
        if batch:
            yield batch

    async def llm_embeddings(self, request: Any, raw_request_info: Any = None) -> AsyncIterator[Any]:
        yield _Response.model_validate(self._embeddings(_as_dict(request)))


# --- a fake DeploymentHandle over a plain instance (unit and in-process conformance tests) ---------------
# What the `ray-serve` transport relies on, as Serve does it: `.options(stream=True)`, `.<method>.remote(x)`
# returning an awaitable (unary) or an async iterator with `.cancel()` (streaming), arguments and results
# crossing by pickle, and Serve's TypeErrors when a generator method is called unary or a plain method
# with stream=True.


class FakeGen:
    def __init__(self, agen: Any) -> None:
        self._agen = agen
        self.cancelled = False

    def __aiter__(self) -> FakeGen:
        return self

    async def __anext__(self) -> Any:
        if not hasattr(self._agen, "__anext__"):
            raise TypeError("Called method 'chat' with `handle.options(stream=True)` but it did not return a generator.")
        item = await self._agen.__anext__()
        return pickle.loads(pickle.dumps(item))

    def cancel(self) -> None:
        self.cancelled = True


class FakeHandle:
    def __init__(self, target: Any, stream: bool = False, log: list[tuple[str, bool]] | None = None) -> None:
        self.target, self.stream = target, stream
        self.log = log if log is not None else []
        self.gens: list[FakeGen] = []

    def options(self, stream: bool = False) -> FakeHandle:
        h = FakeHandle(self.target, stream, self.log)
        h.gens = self.gens
        return h

    def __getattr__(self, name: str) -> Any:
        handle = self

        class Method:
            def remote(self, payload: Any) -> Any:
                payload = pickle.loads(pickle.dumps(payload))
                handle.log.append((name, handle.stream))
                result = getattr(handle.target, name)(payload)
                if handle.stream:
                    gen = FakeGen(result)
                    handle.gens.append(gen)
                    return gen
                return _unary(name, result)

        return Method()


async def _unary(name: str, result: Any) -> Any:
    if asyncio.iscoroutine(result):
        result = await result
    if hasattr(result, "__anext__"):
        raise TypeError(f"Method '{name}' returned a generator. You must use `handle.options(stream=True)` to call "
                        "generators on a deployment.")
    return pickle.loads(pickle.dumps(result))


def build_app(model_id: str = "echo-1", name: str = "EchoLLM", chunk_delay_s: float = 0.0) -> Any:
    """The stub as a Serve application: `serve.run(build_app(), name="stub-llm")`."""
    from ray import serve

    return serve.deployment(EchoLLM, name=name, num_replicas=1, ray_actor_options={"num_cpus": 0}).bind(
        model_id, chunk_delay_s)


__all__ = ["EchoLLM", "ErrorResponse", "FakeHandle", "StubChatRequest", "build_app"]

"""`ray-serve` provider: adapter, and the transport's normalisation through a fake handle (no Ray).

The fake handle (tests/support/ray_serve_llm_stub.py) behaves like Serve's for what the transport
relies on: `.options(stream=True)`, `.<method>.remote(x)` returning an awaitable (unary) or an async
iterator with `.cancel()` (streaming), arguments crossing by pickle, and Serve's TypeErrors when a
generator method is called unary or a plain method is called with stream=True.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from deployments.providers import registry
from deployments.providers.base import CallContext
from deployments.providers.ray_serve import RayServeTransport, error_of, ray_error, response_body, sse_bytes
from deployments.providers.stage import Provider
from serve_app import errors as E
from serve_app.errors import GatewayError, UpstreamError
from tests.support.mockservers.openai_like import assemble, parse_sse
from tests.support.ray_serve_llm_stub import EchoLLM, ErrorResponse, FakeHandle

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


def provider(handle_target: Any = None, *, handle: Any = None, **extra: Any) -> tuple[Provider, FakeHandle, list[int]]:
    spec = registry.get("ray-serve")
    assert spec is not None
    config = spec.config_model.model_validate({"name": "incluster", "type": "ray-serve", "app_name": "llm",
                                               "deployment_name": "EchoLLM", "model": "echo-1", **extra})
    fake = handle or FakeHandle(handle_target or EchoLLM())
    made: list[int] = []

    def factory() -> FakeHandle:
        made.append(1)
        return fake

    return Provider(config, RayServeTransport(config, handle_factory=factory)), fake, made


def ctx(include_usage: bool = False) -> CallContext:
    return CallContext("incluster", "echo-1", "req-1", include_usage=include_usage, created=1700000000)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def collect(p: Provider, body: dict[str, Any], c: CallContext) -> bytes:
    s = await p.open_chat_stream(body, c)
    return b"".join([chunk async for chunk in s])


def user(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "echo-1", "messages": [{"role": "user", "content": text}], **extra}


# --- adapter ---------------------------------------------------------------------------------------

def test_adapter_targets_the_handle_url_and_requests_stream_usage() -> None:
    p, _, made = provider()
    req = p.adapter.chat_request(user("hi"), ctx(), stream=True)
    assert req.url == "ray-serve://llm/EchoLLM/chat" and req.headers == {}
    assert orjson.loads(req.body)["stream_options"] == {"include_usage": True}
    assert p.adapter.embeddings_request({"model": "e", "input": "x"}, ctx()).url == "ray-serve://llm/EchoLLM/embeddings"
    assert made == []  # the handle is created lazily, on the first call


def test_no_embeddings_method_is_a_400() -> None:
    p, _, _ = provider(embeddings_method=None)
    with pytest.raises(GatewayError) as exc:
        p.adapter.embeddings_request({"model": "e", "input": "x"}, ctx())
    assert exc.value.status == 400


# --- the simple protocol (dict / SSE strings) -------------------------------------------------------

def test_chat_dict_answer() -> None:
    p, fake, made = provider()
    out = ChatCompletion.model_validate(orjson.loads(run(p.chat(user("hello there"), ctx()))))
    assert out.choices[0].message.content == "Echo: hello there"
    assert out.usage.total_tokens == 5
    run(p.chat(user("again"), ctx()))
    assert made == [1]  # one handle per transport
    assert fake.log == [("chat", False), ("chat", False)]  # auto: a plain method stays unary


def test_stream_sse_strings_with_tools_and_usage() -> None:
    p, _, _ = provider()
    out = run(collect(p, user("weather in Paris?", stream=True, tools=TOOLS), ctx(include_usage=True)))
    events, done = parse_sse(out)
    assert done
    for ev in events:
        ChatCompletionChunk.model_validate(ev)
    merged = assemble(events)
    assert merged["tool_calls"][0]["name"] == "get_weather"
    assert orjson.loads(merged["tool_calls"][0]["arguments"]) == {"location": "Paris"}
    assert merged["finish_reason"] == "tool_calls"
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == 5


def test_json_mode_and_tools_unary() -> None:
    p, _, _ = provider()
    out = orjson.loads(run(p.chat(user("x", response_format={"type": "json_object"}), ctx())))
    assert orjson.loads(out["choices"][0]["message"]["content"]) == {"echo": "x"}
    out = ChatCompletion.model_validate(orjson.loads(run(p.chat(user("weather?", tools=TOOLS), ctx()))))
    assert out.choices[0].finish_reason == "tool_calls"


def test_embeddings_dict() -> None:
    p, _, _ = provider()
    out = CreateEmbeddingResponse.model_validate(orjson.loads(run(p.embeddings({"model": "e", "input": ["a b", "c"]}, ctx()))))
    assert len(out.data) == 2 and len(out.data[0].embedding) == 8 and out.usage.prompt_tokens == 3


@pytest.mark.parametrize("status, error_class", [(400, E.BAD_REQUEST), (404, E.NOT_FOUND), (503, E.OVERLOADED)])
def test_error_dict(status: int, error_class: str) -> None:
    p, _, _ = provider()
    with pytest.raises(UpstreamError) as exc:
        run(p.chat(user(f"error:{status}"), ctx()))
    assert (exc.value.status, exc.value.error_class) == (status, error_class)
    assert "stub error" in exc.value.message and exc.value.type != "BadRequestError"
    with pytest.raises(UpstreamError) as exc:  # before the first byte of a stream: raised, fallback possible
        run(collect(p, user(f"error:{status}", stream=True), ctx()))
    assert exc.value.status == status


def test_replica_failure_mid_stream_is_a_cut() -> None:
    p, fake, _ = provider()

    async def go() -> tuple[bytes, BaseException | None]:
        s = await p.open_chat_stream(user("cut", stream=True), ctx())
        got = b""
        try:
            async for chunk in s:
                got += chunk
        except UpstreamError as exc:
            return got, exc
        return got, None

    got, exc = run(go())
    assert exc is not None and exc.error_class == E.STREAM_CUT
    assert b"[DONE]" not in got
    assert fake.gens[-1].cancelled


# --- Ray Serve LLM's LLMServer protocol ------------------------------------------------------------------

def test_llmserver_auto_switches_to_streaming_calls_once() -> None:
    p, fake, _ = provider(method="llm_chat", embeddings_method="llm_embeddings")
    out = ChatCompletion.model_validate(orjson.loads(run(p.chat(user("hi"), ctx()))))
    assert out.choices[0].message.content == "Echo: hi"
    run(p.chat(user("again"), ctx()))
    # first a unary call (Serve refuses: the method returned a generator), then streaming calls only
    assert fake.log == [("llm_chat", False), ("llm_chat", True), ("llm_chat", True)]
    emb = CreateEmbeddingResponse.model_validate(orjson.loads(run(p.embeddings({"model": "e", "input": "abc"}, ctx()))))
    assert emb.data[0].index == 0


def test_llmserver_always_never_calls_unary() -> None:
    p, fake, _ = provider(method="llm_chat", stream_calls="always")
    run(p.chat(user("hi"), ctx()))
    assert fake.log == [("llm_chat", True)]


def test_llmserver_batched_stream() -> None:
    p, _, _ = provider(method="llm_chat")
    out = run(collect(p, user("one two three four five", stream=True), ctx(include_usage=True)))
    events, done = parse_sse(out)
    assert done
    assert assemble(events)["content"] == "Echo: one two three four five"
    assert events[-1]["usage"]["total_tokens"] == 11


def test_llmserver_error_response_object() -> None:
    p, _, _ = provider(method="llm_chat")
    with pytest.raises(UpstreamError) as exc:
        run(p.chat(user("error:422"), ctx()))
    assert exc.value.status == 422 and exc.value.error_class == E.BAD_REQUEST
    with pytest.raises(UpstreamError) as exc:
        run(collect(p, user("error:500", stream=True), ctx()))
    assert exc.value.status == 500 and exc.value.error_class == E.SERVER


def test_request_class_validates_the_dict() -> None:
    seen: list[Any] = []

    class Recorder(EchoLLM):
        def chat(self, request: Any) -> Any:
            seen.append(request)
            return super().chat(request)

    p, _, _ = provider(Recorder(), request_class="tests.support.ray_serve_llm_stub.StubChatRequest")
    run(p.chat(user("typed", temperature=0.5), ctx()))
    assert type(seen[0]).__name__ == "StubChatRequest"
    assert seen[0].model_extra["temperature"] == 0.5
    with pytest.raises(GatewayError) as exc:  # the class rejects it: a clear 400
        run(p.chat({"messages": "not a list"}, ctx()))
    assert exc.value.status == 400


# --- normalisation functions -----------------------------------------------------------------------------

def test_sse_bytes_shapes() -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}]}
    assert sse_bytes(["data: {\"a\":1}\n\n", "data: [DONE]\n\n"]) == b"data: {\"a\":1}\n\ndata: [DONE]\n\n"
    assert sse_bytes(chunk) == b"data: " + orjson.dumps(chunk) + b"\n\n"
    assert sse_bytes('{"a": 1}') == b'data: {"a": 1}\n\n'
    assert sse_bytes(b"data: x") == b"data: x\n\n"
    err = ErrorResponse.model_validate({"error": {"message": "boom", "type": "InternalServerError", "code": 500}})
    assert orjson.loads(sse_bytes(err)[6:]) == {"error": {"message": "boom", "type": "InternalServerError", "param": None,
                                                          "code": None}}
    whole = EchoLLM()._completion(user("a b"))
    events, done = parse_sse(sse_bytes(whole))  # a deployment that ignored stream: true
    assert done and assemble(events)["content"] == "Echo: a b" and events[-1]["usage"]["total_tokens"] == 5


def test_error_and_body_shapes() -> None:
    legacy = {"object": "error", "message": "bad", "type": "BadRequestError", "param": None, "code": 400}
    assert error_of(legacy) == (400, orjson.dumps({"error": {"message": "bad", "type": "BadRequestError", "param": None,
                                                             "code": None}}))
    assert error_of([{"error": {"message": "x", "code": 429}}])[0] == 429
    assert error_of({"choices": []}) is None
    assert error_of('data: {"error": {"message": "m", "code": 503}}\n\n')[0] == 503
    assert response_body([{"id": "x", "choices": []}], "p") == (200, b'{"id":"x","choices":[]}')
    with pytest.raises(UpstreamError):
        response_body("data: {}\n\n", "p")
    with pytest.raises(UpstreamError):
        response_body(None, "p")


@pytest.mark.parametrize("name, status, error_class", [
    ("BackPressureError", 503, E.OVERLOADED),
    ("DeploymentUnavailableError", 503, E.OVERLOADED),
    ("RayActorError", 502, E.CONNECTION),
    ("ActorDiedError", 502, E.CONNECTION),
    ("RayServeException", 502, E.CONNECTION),
])
def test_ray_exceptions(name: str, status: int, error_class: str) -> None:
    exc = type(name, (Exception,), {})("detail")
    err = ray_error(exc, "p")
    assert (err.status, err.error_class) == (status, error_class)
    assert err.retryable


def test_task_error_with_http_cause_and_plain_cause() -> None:
    class HTTPish(Exception):
        status_code = 429
        message = "slow down"

    task = type("RayTaskError(HTTPish)", (Exception,), {})("wrapped")
    task.cause = HTTPish()
    err = ray_error(task, "p")
    assert (err.status, err.error_class) == (429, E.RATE_LIMITED) and "slow down" in err.message
    task.cause = KeyError("x")
    err = ray_error(task, "p")
    assert (err.status, err.error_class) == (502, E.SERVER) and "KeyError" in err.message


def test_handle_creation_failure_and_timeout() -> None:
    spec = registry.get("ray-serve")
    config = spec.config_model.model_validate({"name": "p", "type": "ray-serve", "app_name": "a", "deployment_name": "d",
                                               "timeout": 0.05})

    def missing() -> Any:
        raise type("RayServeException", (Exception,), {})("Application 'a' does not exist")

    with pytest.raises(UpstreamError) as exc:
        run(Provider(config, RayServeTransport(config, handle_factory=missing)).chat(user("x"), ctx()))
    assert exc.value.status == 502 and exc.value.error_class == E.CONNECTION

    class Slow(EchoLLM):
        async def chat(self, request: Any) -> Any:  # type: ignore[override]
            await asyncio.sleep(1)
            return {}

    with pytest.raises(UpstreamError) as exc:
        run(Provider(config, RayServeTransport(config, handle_factory=lambda: FakeHandle(Slow()))).chat(user("x"), ctx()))
    assert exc.value.status == 504 and exc.value.error_class == E.TIMEOUT


def test_generator_that_ends_without_done_gets_one() -> None:
    class NoDone(EchoLLM):
        async def _sse(self, body: dict[str, Any]):  # type: ignore[override]
            async for event in super()._sse(body):
                if "[DONE]" not in event:
                    yield event

    p, _, _ = provider(NoDone())
    events, done = parse_sse(run(collect(p, user("a", stream=True), ctx())))
    assert done and assemble(events)["content"] == "Echo: a"


def test_release_before_the_end_cancels_the_call() -> None:
    p, fake, _ = provider(EchoLLM(chunk_delay_s=0.01))

    async def go() -> None:
        s = await p.open_chat_stream(user("many words here to stream", stream=True), ctx())
        async for _ in s:
            break
        s.close()
        await asyncio.sleep(0.05)

    run(go())
    assert fake.gens[-1].cancelled

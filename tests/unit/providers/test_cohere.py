"""`cohere` adapter: request-translation goldens, response / stream / embed / error fixtures (no network, no Ray)."""

from __future__ import annotations

import base64
import copy
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.types import CreateEmbeddingResponse

from serve_app import errors as E
from serve_app.errors import GatewayError, UpstreamError
from tests.support.providers import ProviderKit, assemble, assert_error_fixtures_covered
from tests.support.providers import parse_chunk_sse as parse_sse

KIT = ProviderKit("cohere", name="co", model="command-a-03-2025",
                  config={"api_key": "co-test-key", "model": "command-a-03-2025"})
REQUESTS = KIT.paths("requests/*.json")
ERRORS = KIT.paths("errors/*.json")


# --- requests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", REQUESTS, ids=[p.stem for p in REQUESTS])
def test_request_golden(path: Path) -> None:
    case = orjson.loads(path.read_bytes())
    body = copy.deepcopy(case["openai"])
    adapter = KIT.adapter()
    if case.get("embeddings"):
        req = adapter.embeddings_request(body, KIT.ctx(case["openai"]["model"]))
        assert req.url == "https://api.cohere.com/v2/embed"
    else:
        req = adapter.chat_request(body, KIT.ctx(case["openai"]["model"]), stream=case["stream"])
        assert req.url == "https://api.cohere.com/v2/chat"
    assert req.method == "POST"
    assert orjson.loads(req.body) == case["cohere"]


def test_request_headers_base_url_and_config_fields() -> None:
    adapter = KIT.adapter(base_url="http://127.0.0.1:9/cohere/", client_name="my-app", safety_mode="STRICT",
                           embed_input_type="classification", embed_truncate="END")
    req = adapter.chat_request({"messages": [{"role": "user", "content": "hi"}]}, KIT.ctx(), stream=True)
    assert req.url == "http://127.0.0.1:9/cohere/v2/chat"
    assert req.headers["authorization"] == "Bearer co-test-key"
    assert req.headers["x-client-name"] == "my-app"
    assert req.headers["accept"] == "text/event-stream"
    assert orjson.loads(req.body)["safety_mode"] == "STRICT"
    emb = orjson.loads(adapter.embeddings_request({"input": "x"}, KIT.ctx("embed-v4.0")).body)
    assert emb["input_type"] == "classification" and emb["truncate"] == "END"
    assert adapter.embeddings_request({"input": "x"}, KIT.ctx()).url == "http://127.0.0.1:9/cohere/v2/embed"


@pytest.mark.parametrize("body, param", [
    ({"n": 3, "messages": [{"role": "user", "content": "hi"}]}, "n"),
    ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}, "messages[0].content[0].type"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "user", "content": "q"}], "tools": [{"type": "function", "function": {"name": "a"}}],
      "tool_choice": {"type": "function", "function": {"name": "missing"}}}, "tool_choice"),
    ({"messages": [{"role": "user", "content": "q"}], "response_format": {"type": "grammar"}}, "response_format.type"),
])
def test_request_rejections_are_400(body: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as info:
        KIT.adapter().chat_request(body, KIT.ctx(), stream=False)
    assert info.value.status == 400 and info.value.param == param


@pytest.mark.parametrize("body", [
    {"input": [[1, 2, 3]]},
    {"input": [1, 2, 3]},
    {"input": "x", "encoding_format": "int8"},
])
def test_embeddings_rejections_are_400(body: dict[str, Any]) -> None:
    with pytest.raises(GatewayError) as info:
        KIT.adapter().embeddings_request(body, KIT.ctx("embed-v4.0"))
    assert info.value.status == 400


# --- responses ---------------------------------------------------------------------------------


def completion(name: str) -> dict[str, Any]:
    return KIT.completion("chat", f"{name}.json")  # checked by the SDK's own model


def test_response_text() -> None:
    data = completion("text")
    assert data["id"] == "c14c80c3-18eb-4519-9460-6c92edd8cfb4"
    assert (data["object"], data["created"], data["model"]) == ("chat.completion", 1700000000, "command-a-03-2025")
    assert data["choices"][0]["message"] == {"role": "assistant", "refusal": None,
                                             "content": "LLMs are neural networks trained on large amounts of text."}
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"] == {"prompt_tokens": 71, "completion_tokens": 11, "total_tokens": 82}


def test_response_tool_call_drops_tool_plan() -> None:
    choice = completion("tool_calls")["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [{"id": "get_weather_1byjy32y4hvq", "type": "function",
                                                "function": {"name": "get_weather", "arguments": '{"location":"Toronto"}'}}]


def test_response_parallel_tool_calls() -> None:
    calls = completion("parallel_tools")["choices"][0]["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["get_weather_p0dage9q1nv4", "get_weather_kbrdnnkf8y7f"]
    assert [orjson.loads(c["function"]["arguments"])["location"] for c in calls] == ["Madrid", "Brasilia"]


def test_response_cached_tokens() -> None:
    usage = completion("cached_usage")["usage"]
    assert usage == {"prompt_tokens": 1549, "completion_tokens": 12, "total_tokens": 1561,
                     "prompt_tokens_details": {"cached_tokens": 992}}


def test_response_citations_and_thinking_dropped_cleanly() -> None:
    cited = completion("citations")
    assert cited["choices"][0]["message"]["content"] == "The tallest penguins are emperor penguins."
    assert "citations" not in cited["choices"][0]["message"]
    assert completion("thinking")["choices"][0]["message"]["content"] == "27 × 453 = 12,231."


def test_response_usage_falls_back_to_billed_units() -> None:
    body = orjson.loads(KIT.fixture("chat", "text.json"))
    del body["usage"]["tokens"]
    data = orjson.loads(KIT.adapter().chat_response(200, orjson.dumps(body), KIT.ctx()))
    assert data["usage"] == {"prompt_tokens": 5, "completion_tokens": 11, "total_tokens": 16}


@pytest.mark.parametrize("name, finish, content", [
    ("max_tokens", "length", "Once upon a time, in a kingdom by"),
    ("stop_sequence", "stop", "1, 2, 3, 4"),
    ("content_blocked", "content_filter", None),
    ("json", "stop", '{"city": "Paris", "country": "France", "population_millions": 2.1, "landmarks": ["Eiffel Tower", "Louvre"]}'),
    ("vision", "stop", "The image shows a red square on a white background."),
])
def test_response_finish_reasons(name: str, finish: str, content: str | None) -> None:
    choice = completion(name)["choices"][0]
    assert (choice["finish_reason"], choice["message"]["content"]) == (finish, content)


def test_response_generation_error_is_upstream_error() -> None:
    with pytest.raises(UpstreamError) as info:
        KIT.adapter().chat_response(200, KIT.fixture("chat", "generation_error.json"), KIT.ctx())
    assert info.value.status == 502 and info.value.error_class == E.SERVER
    assert info.value.code == "upstream_generation_error"


# --- embeddings --------------------------------------------------------------------------------


def test_embeddings_float() -> None:
    data = orjson.loads(KIT.adapter().embeddings_response(200, KIT.fixture("embed", "float.json"), KIT.ctx("embed-v4.0")))
    CreateEmbeddingResponse.model_validate(data)
    assert data["object"] == "list" and data["model"] == "embed-v4.0"
    assert [d["index"] for d in data["data"]] == [0, 1]
    assert data["data"][0]["embedding"][:2] == [0.016296387, -0.008354187]
    assert data["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


def test_embeddings_base64_is_little_endian_float32_of_the_floats() -> None:
    raw = KIT.fixture("embed", "float_base64.json")
    data = orjson.loads(KIT.adapter().embeddings_response(200, raw, KIT.ctx("embed-v4.0")))
    floats = orjson.loads(raw)["embeddings"]["float"]
    for item, vec in zip(data["data"], floats, strict=True):
        decoded = struct.unpack(f"<{len(vec)}f", base64.b64decode(item["embedding"]))
        assert decoded == pytest.approx(vec, rel=1e-6)


# --- streams -----------------------------------------------------------------------------------


PIECES = [0, 1, 17, 64]


@pytest.mark.parametrize("piece", PIECES)
def test_stream_text(piece: int) -> None:
    translator, out = KIT.run_stream("text", piece)
    chunks, done = parse_sse(out)
    assert done
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    msg = assemble(chunks)
    assert msg == {"content": "LLMs are neural networks trained on large amounts of text.", "tool_calls": [],
                   "finish": "stop", "roles": ["assistant"]}
    assert {c["id"] for c in chunks} == {"29f14a5a-11de-4cae-9800-25e4747408ea"}
    assert {(c["created"], c["model"]) for c in chunks} == {(1700000000, "command-a-03-2025")}
    assert all(c["choices"] for c in chunks)
    assert translator.usage == {"prompt_tokens": 71, "completion_tokens": 11, "total_tokens": 82}


def test_stream_crlf() -> None:
    _, out = KIT.run_stream("text", 3, crlf=True)
    assert assemble(parse_sse(out)[0])["content"] == "LLMs are neural networks trained on large amounts of text."


@pytest.mark.parametrize("piece", PIECES)
def test_stream_tool_call(piece: int) -> None:
    _, out = KIT.run_stream("tool_calls", piece)
    chunks, done = parse_sse(out)
    msg = assemble(chunks)
    assert done and msg["finish"] == "tool_calls" and msg["content"] == ""  # tool plan dropped
    [call] = msg["tool_calls"]
    assert (call["id"], call["name"]) == ("get_weather_1byjy32y4hvq", "get_weather")
    assert orjson.loads(call["arguments"]) == {"location": "Toronto"}


@pytest.mark.parametrize("piece", PIECES)
def test_stream_parallel_tool_calls(piece: int) -> None:
    _, out = KIT.run_stream("parallel_tools", piece)
    msg = assemble(parse_sse(out)[0])
    assert [(c["id"], orjson.loads(c["arguments"])["location"]) for c in msg["tool_calls"]] == [
        ("get_weather_p0dage9q1nv4", "Madrid"), ("get_weather_kbrdnnkf8y7f", "Brasilia")]


def test_stream_text_then_tool_gets_tool_index_zero() -> None:
    _, out = KIT.run_stream("text_then_tool", 0)
    chunks, _ = parse_sse(out)
    indexes = {tc["index"] for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls") or []}
    assert indexes == {0}  # Cohere's event index is 1 (content block 0 came first)
    msg = assemble(chunks)
    assert msg["content"] == "Checking the time." and msg["tool_calls"][0]["name"] == "get_time"


def test_stream_usage_chunk_only_when_asked_with_cached_tokens() -> None:
    translator, out = KIT.run_stream("cached_usage", 0, include_usage=True)
    chunks, done = parse_sse(out)
    assert done and chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 1549, "completion_tokens": 12, "total_tokens": 1561,
                                   "prompt_tokens_details": {"cached_tokens": 992}}
    assert translator.usage == chunks[-1]["usage"]


@pytest.mark.parametrize("name, content, finish", [
    ("citations", "The tallest penguins are emperor penguins.", "stop"),
    ("thinking", "27 × 453 = 12,231.", "stop"),
    ("json", '{"city": "Paris", "country": "France", "population_millions": 2.1, "landmarks": ["Eiffel Tower", "Louvre"]}', "stop"),
    ("max_tokens", "Once upon a time, in a kingdom by", "length"),
])
def test_stream_content_variants(name: str, content: str, finish: str) -> None:
    _, out = KIT.run_stream(name, 23)
    msg = assemble(parse_sse(out)[0])
    assert (msg["content"], msg["finish"]) == (content, finish)


def test_stream_cut_raises_stream_cut() -> None:
    translator = KIT.adapter().chat_stream(KIT.ctx())
    out = translator.feed(KIT.fixture("stream", "cut.sse"))
    assert b"The first half" in out and b"[DONE]" not in out
    with pytest.raises(UpstreamError) as info:
        translator.finish()
    assert info.value.error_class == E.STREAM_CUT and info.value.code == "upstream_stream_cut"


def test_stream_generation_error_raises_after_partial_output() -> None:
    translator = KIT.adapter().chat_stream(KIT.ctx())
    out = translator.feed(KIT.fixture("stream", "generation_error.sse"))
    assert b"The ans" in out and b"[DONE]" not in out and b"finish_reason\":\"stop" not in out
    with pytest.raises(UpstreamError) as info:
        translator.finish()
    assert info.value.error_class == E.SERVER and info.value.code == "upstream_generation_error"


# --- errors ------------------------------------------------------------------------------------

EXPECTED_ERRORS = {
    # name: (client status, error class, code, OpenAI error type)
    "bad_request_400": (400, E.BAD_REQUEST, None, "invalid_request_error"),
    "context_length_400": (400, E.CONTEXT_LENGTH, "context_length_exceeded", "invalid_request_error"),
    "content_blocked_400": (400, E.CONTENT_FILTER, "content_filter", "invalid_request_error"),
    "unauthorized_401": (502, E.AUTH, "upstream_auth_error", "upstream_error"),
    "forbidden_403": (502, E.AUTH, "upstream_auth_error", "upstream_error"),
    "not_found_404": (404, E.NOT_FOUND, None, "not_found_error"),
    "unprocessable_422": (422, E.BAD_REQUEST, None, "invalid_request_error"),
    "rate_limit_429": (429, E.RATE_LIMITED, None, "rate_limit_error"),
    "invalid_token_498": (502, E.AUTH, "upstream_auth_error", "upstream_error"),
    "client_closed_499": (502, E.SERVER, None, "upstream_error"),
    "internal_500": (500, E.SERVER, None, "api_error"),
    "not_implemented_501": (400, E.BAD_REQUEST, None, "invalid_request_error"),
    "unavailable_503": (503, E.OVERLOADED, None, "service_unavailable_error"),
    "gateway_timeout_504": (504, E.TIMEOUT, None, "timeout_error"),
}


def test_every_error_fixture_has_an_expectation() -> None:
    assert_error_fixtures_covered(ERRORS, EXPECTED_ERRORS)


@pytest.mark.parametrize("path", ERRORS, ids=[p.stem for p in ERRORS])
def test_error_mapping(path: Path) -> None:
    fx, err = KIT.error(path.stem)
    assert isinstance(err, UpstreamError)
    assert (err.status, err.error_class, err.code, err.type) == EXPECTED_ERRORS[path.stem]
    if err.error_class == E.AUTH:
        assert fx["body"]["message"] not in err.message
    else:
        assert fx["body"]["message"] in err.message


def test_error_retry_after() -> None:
    for name, seconds in (("rate_limit_429", 60), ("unavailable_503", 5)):
        fx, err = KIT.error(name)
        assert err.retry_after == seconds and err.retryable

"""`mistral` adapter: request goldens, tool-call ids, response / stream / error fixtures (no network, no Ray)."""

from __future__ import annotations

import base64
import re
import struct
from pathlib import Path

import orjson
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion

from deployments.providers.mistral import mistral_tool_call_id
from serve_app import errors as E
from serve_app.errors import UpstreamError
from tests.support.mockservers.openai_like import assemble, parse_sse
from tests.support.providers import ProviderKit, strict_chunks

KIT = ProviderKit("mistral", name="mistral", model="mistral-large-latest", config={"api_key": "m-key"})
REQUESTS = KIT.paths("requests/*.json")


def completion(name: str) -> ChatCompletion:
    return ChatCompletion.model_validate(KIT.completion(name))


# --- requests ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", REQUESTS, ids=[p.stem for p in REQUESTS])
def test_request_golden(path: Path) -> None:
    _, req = KIT.check_request_golden(path)
    assert req.headers["authorization"] == "Bearer m-key"


def test_foreign_tool_call_ids_are_mapped_consistently() -> None:
    body = {"messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_Vx1Kf3hD9Qh2abcdef", "type": "function", "function": {"name": "w", "arguments": "{}"}},
            {"id": "D681PevKs", "type": "function", "function": {"name": "t", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_Vx1Kf3hD9Qh2abcdef", "content": "21"},
        {"role": "tool", "tool_call_id": "D681PevKs", "content": "noon"}]}
    sent = orjson.loads(KIT.adapter().chat_request(body, KIT.ctx(), False).body)["messages"]
    first, second = (tc["id"] for tc in sent[1]["tool_calls"])
    assert re.fullmatch(r"[A-Za-z0-9]{9}", first) and first != "call_Vx1K"
    assert second == "D681PevKs"  # already a Mistral id: unchanged
    assert sent[2]["tool_call_id"] == first and sent[3]["tool_call_id"] == second
    assert mistral_tool_call_id("call_Vx1Kf3hD9Qh2abcdef") == first  # stable across requests
    assert mistral_tool_call_id("call_other") != first


def test_embeddings_request_and_base64_done_here() -> None:
    c = KIT.ctx("mistral-embed")
    req = KIT.adapter().embeddings_request({"model": "mistral-embed", "input": ["a", "b"], "dimensions": 256,
                                             "encoding_format": "base64"}, c)
    assert req.url == "https://api.mistral.ai/v1/embeddings"
    assert orjson.loads(req.body) == {"model": "mistral-embed", "input": ["a", "b"], "output_dimension": 256}
    out = orjson.loads(KIT.adapter().embeddings_response(200, (KIT.fix / "embeddings.json").read_bytes(), c))
    raw = base64.b64decode(out["data"][0]["embedding"])
    assert struct.unpack("<4f", raw)[0] == pytest.approx(-0.016632080078125)
    floats = CreateEmbeddingResponse.model_validate(orjson.loads(
        KIT.adapter().embeddings_response(200, (KIT.fix / "embeddings.json").read_bytes(), KIT.ctx("mistral-embed"))))
    assert floats.data[1].embedding[2] == pytest.approx(0.0521240234375)
    assert floats.usage.total_tokens == 15


# --- responses -----------------------------------------------------------------------------------

def test_chat_and_usage() -> None:
    out = completion("chat.json")
    assert out.choices[0].message.content == "The capital of France is Paris."
    assert out.choices[0].finish_reason == "stop"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (16, 10, 26)


def test_tool_calls_get_type_and_null_content() -> None:
    out = completion("parallel_tools.json")
    msg = out.choices[0].message
    assert msg.content is None
    assert [(tc.id, tc.type, tc.function.name) for tc in msg.tool_calls] == [
        ("D681PevKs", "function", "get_weather"), ("R2nVq8LtP", "function", "get_time")]
    assert out.choices[0].finish_reason == "tool_calls"


def test_model_length_is_length() -> None:
    assert completion("model_length.json").choices[0].finish_reason == "length"


def test_thinking_chunks_flattened() -> None:
    out = orjson.loads(KIT.adapter().chat_response(200, (KIT.fix / "reasoning.json").read_bytes(), KIT.ctx()))
    ChatCompletion.model_validate(out)
    assert out["choices"][0]["message"]["content"] == "The capital of France is Paris."
    assert out["choices"][0]["message"]["reasoning_content"] == "The user asks for the capital of France."


def test_json_mode() -> None:
    assert orjson.loads(completion("json_mode.json").choices[0].message.content)["city"] == "Paris"


def test_error_finish_reason_is_an_error() -> None:
    body = orjson.loads((KIT.fix / "chat.json").read_bytes())
    body["choices"][0]["finish_reason"] = "error"
    with pytest.raises(UpstreamError) as exc:
        KIT.adapter().chat_response(200, orjson.dumps(body), KIT.ctx())
    assert exc.value.error_class == E.SERVER and exc.value.retryable


# --- streams -------------------------------------------------------------------------------------

@pytest.mark.parametrize("piece", [1, 9, 0])
def test_stream_text_usage_moved_to_usage_chunk(piece: int) -> None:
    out, tr = KIT.stream((KIT.fix / "chat_stream.sse").read_bytes(), include_usage=True, piece=piece)
    chunks = strict_chunks(out)
    merged = assemble(chunks)
    assert merged["content"] == "The capital of France is Paris." and merged["finish_reason"] == "stop"
    assert all(c["choices"] for c in chunks[:-1]) and chunks[-1]["choices"] == []
    assert merged["usage"]["total_tokens"] == 26
    assert "usage" not in chunks[-2]  # the finish chunk no longer carries it
    assert tr.usage["prompt_tokens"] == 16


def test_stream_without_include_usage_has_no_usage_anywhere() -> None:
    out, tr = KIT.stream((KIT.fix / "chat_stream.sse").read_bytes())
    assert not any(c.get("usage") for c in strict_chunks(out))
    assert tr.usage["completion_tokens"] == 10


def test_stream_parallel_tool_calls_sent_whole_with_index_zero_get_distinct_indexes() -> None:
    raw, _ = parse_sse((KIT.fix / "parallel_tools_stream.sse").read_bytes())
    assert [tc["index"] for c in raw for ch in c["choices"] for tc in ch["delta"].get("tool_calls") or []] == [0, 0]
    out, _ = KIT.stream((KIT.fix / "parallel_tools_stream.sse").read_bytes(), piece=4)
    chunks = strict_chunks(out)
    calls = [tc for c in chunks for ch in c["choices"] for tc in ch["delta"].get("tool_calls") or []]
    assert [(tc["index"], tc["id"], tc["type"]) for tc in calls] == [(0, "D681PevKs", "function"), (1, "R2nVq8LtP", "function")]
    merged = assemble(chunks)
    assert [c["name"] for c in merged["tool_calls"]] == ["get_weather", "get_time"]
    assert orjson.loads(merged["tool_calls"][1]["arguments"]) == {"timezone": "Europe/Paris"}
    assert merged["finish_reason"] == "tool_calls"


def test_stream_single_tool_call() -> None:
    merged = assemble(strict_chunks(KIT.stream((KIT.fix / "tools_stream.sse").read_bytes())[0]))
    assert [(c["id"], c["name"]) for c in merged["tool_calls"]] == [("D681PevKs", "get_weather")]


def test_stream_thinking_chunks() -> None:
    chunks = strict_chunks(KIT.stream((KIT.fix / "reasoning_stream.sse").read_bytes())[0])
    assert assemble(chunks)["content"] == "Paris."
    assert chunks[0]["choices"][0]["delta"]["reasoning_content"] == "The user asks"


def test_stream_json_mode() -> None:
    assert orjson.loads(assemble(strict_chunks(KIT.stream((KIT.fix / "json_mode_stream.sse").read_bytes())[0]))["content"])["country"] == "France"


def test_stream_error_finish_reason_becomes_error_event() -> None:
    out, tr = KIT.stream((KIT.fix / "generation_error_stream.sse").read_bytes())
    events, done = parse_sse(out)
    assert not done  # never a clean-looking end
    assert events[-1]["error"]["code"] == "upstream_generation_error"
    assert [e["choices"][0]["delta"].get("content") for e in events[:-1]] == ["The", " capital"]
    assert all(e["choices"][0]["finish_reason"] is None for e in events[:-1])
    assert tr.errored and tr.failure.error_class == E.SERVER


def test_stream_cut() -> None:
    with pytest.raises(UpstreamError) as exc:
        KIT.stream((KIT.fix / "stream_cut.sse").read_bytes())
    assert exc.value.error_class == E.STREAM_CUT


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, status, error_class, code, text", [
    ("validation", 422, E.BAD_REQUEST, None, "temperature: Input should be less than or equal to 1.5"),
    ("context_length", 400, E.CONTEXT_LENGTH, "context_length_exceeded", "maximum context length"),
    ("rate_limit", 429, E.RATE_LIMITED, None, "Requests rate limit exceeded"),
    ("auth", 502, E.AUTH, "upstream_auth_error", "refused the gateway's credentials"),
    ("tier", 502, E.AUTH, "upstream_auth_error", "upstream status 403"),
    ("not_found", 400, E.NOT_FOUND, None, "Invalid model: mistral-imaginary"),
    ("unavailable", 503, E.OVERLOADED, None, "Service unavailable."),
])
def test_errors(name: str, status: int, error_class: str, code: str | None, text: str) -> None:
    case = orjson.loads((KIT.fix / "errors" / f"{name}.json").read_bytes())
    err = KIT.adapter().error(case["status"], case.get("headers", {}), orjson.dumps(case["body"]), KIT.ctx())
    assert (err.status, err.error_class, err.code) == (status, error_class, code)
    assert text in err.message
    assert err.type in ("invalid_request_error", "rate_limit_error", "upstream_error", "service_unavailable_error")
    if name == "rate_limit":
        assert err.retry_after == 2

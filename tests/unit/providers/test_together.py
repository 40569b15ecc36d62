"""`together` adapter: request goldens, response / stream / error fixtures (no network, no Ray)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion

from serve_app import errors as E
from serve_app.errors import UpstreamError
from tests.support.mockservers.openai_like import assemble, parse_sse
from tests.support.providers import ProviderKit, strict_chunks

KIT = ProviderKit("together", name="together", model="meta-llama/Llama-3.3-70B-Instruct-Turbo", config={"api_key": "tg-key"})
REQUESTS = KIT.paths("requests/*.json")


def completion(name: str) -> ChatCompletion:
    return ChatCompletion.model_validate(KIT.completion(name))


@pytest.mark.parametrize("path", REQUESTS, ids=[p.stem for p in REQUESTS])
def test_request_golden(path: Path) -> None:
    _, req = KIT.check_request_golden(path)
    assert req.headers["authorization"] == "Bearer tg-key"


def test_eos_is_stop_and_cached_tokens_reported() -> None:
    out = completion("chat.json")
    assert out.choices[0].finish_reason == "stop"
    assert out.choices[0].message.tool_calls is None  # Together's empty list
    assert out.usage.prompt_tokens_details.cached_tokens == 32


def test_tool_calls_with_eos_are_tool_calls() -> None:
    out = completion("tools.json")
    assert out.choices[0].finish_reason == "tool_calls"
    assert out.choices[0].message.tool_calls[0].function.name == "get_weather"
    assert [tc.id for tc in completion("parallel_tools.json").choices[0].message.tool_calls] == [
        "call_3xk9qgwxm7c8zrjp1uak2yv5", "call_7hb2mfq0c4x1s9d8e6a5t3r2"]


def test_json_mode() -> None:
    assert orjson.loads(completion("json_mode.json").choices[0].message.content)["country"] == "France"


def test_embeddings_without_usage_get_zero_usage() -> None:
    raw = orjson.loads((KIT.fix / "embeddings.json").read_bytes())
    assert "usage" not in raw
    out = CreateEmbeddingResponse.model_validate(orjson.loads(
        KIT.adapter().embeddings_response(200, (KIT.fix / "embeddings.json").read_bytes(), KIT.ctx("BAAI/bge-large-en-v1.5"))))
    assert out.usage.prompt_tokens == 0 and len(out.data) == 2


@pytest.mark.parametrize("piece", [1, 17, 0])
def test_stream_chunks_without_model_and_eos(piece: int) -> None:
    raw, _ = parse_sse((KIT.fix / "chat_stream.sse").read_bytes())
    assert "model" not in raw[0]  # as documented: strict parsing would reject these chunks
    out, tr = KIT.stream((KIT.fix / "chat_stream.sse").read_bytes(), include_usage=True, piece=piece)
    chunks = strict_chunks(out)
    assert all(c["model"] == "meta-llama/Llama-3.3-70B-Instruct-Turbo" for c in chunks)
    merged = assemble(chunks)
    assert merged["content"] == "The capital of France is Paris."
    assert merged["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 32
    assert tr.usage["total_tokens"] == 53


@pytest.mark.parametrize("name, names", [("tools_stream.sse", ["get_weather"]),
                                         ("parallel_tools_stream.sse", ["get_weather", "get_time"])])
def test_stream_tool_calls_stop_becomes_tool_calls(name: str, names: list[str]) -> None:
    merged = assemble(strict_chunks(KIT.stream((KIT.fix / name).read_bytes(), piece=8)[0]))
    assert [c["name"] for c in merged["tool_calls"]] == names
    assert orjson.loads(merged["tool_calls"][0]["arguments"]) == {"location": "Paris, France", "unit": "celsius"}
    assert merged["finish_reason"] == "tool_calls"  # Together said "stop"


def test_stream_json_mode() -> None:
    assert orjson.loads(assemble(strict_chunks(KIT.stream((KIT.fix / "json_mode_stream.sse").read_bytes())[0]))["content"])["city"] == "Paris"


def test_in_stream_error() -> None:
    out, tr = KIT.stream((KIT.fix / "stream_error.sse").read_bytes())
    events, done = parse_sse(out)
    assert not done and events[-1]["error"]["message"].endswith("Internal server error")
    assert tr.errored and tr.failure.error_class == E.SERVER


def test_stream_cut() -> None:
    with pytest.raises(UpstreamError) as exc:
        KIT.stream((KIT.fix / "stream_cut.sse").read_bytes())
    assert exc.value.error_class == E.STREAM_CUT


@pytest.mark.parametrize("name, status, error_class, code", [
    ("overloaded", 503, E.OVERLOADED, None),
    ("edge_timeout", 504, E.TIMEOUT, "upstream_timeout"),
    ("context_length", 400, E.CONTEXT_LENGTH, "context_length_exceeded"),
    ("rate_limit", 429, E.RATE_LIMITED, None),
    ("auth", 502, E.AUTH, "upstream_auth_error"),
    ("not_found", 404, E.NOT_FOUND, "model_not_available"),
])
def test_errors(name: str, status: int, error_class: str, code: str | None) -> None:
    case = orjson.loads((KIT.fix / "errors" / f"{name}.json").read_bytes())
    payload = case["body_text"].encode() if "body_text" in case else orjson.dumps(case["body"])
    err = KIT.adapter().error(case["status"], case.get("headers", {}), payload, KIT.ctx())
    assert (err.status, err.error_class, err.code) == (status, error_class, code)
    assert "<html" not in err.message.lower()
    if name in ("overloaded", "edge_timeout", "rate_limit"):
        assert err.retryable
    if name == "rate_limit":
        assert err.type == "rate_limit_error" and err.retry_after == 3

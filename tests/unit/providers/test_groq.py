"""`groq` adapter: request goldens, n check, response / stream / error fixtures (no network, no Ray)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from openai.types.chat import ChatCompletion

from serve_app import errors as E
from serve_app.errors import GatewayError, UpstreamError
from tests.support.mockservers.openai_like import assemble, parse_sse
from tests.support.providers import ProviderKit, strict_chunks

KIT = ProviderKit("groq", name="groq", model="llama-3.3-70b-versatile", config={"api_key": "gsk-test"})
REQUESTS = KIT.paths("requests/*.json")

completion = KIT.completion


@pytest.mark.parametrize("path", REQUESTS, ids=[p.stem for p in REQUESTS])
def test_request_golden(path: Path) -> None:
    _, req = KIT.check_request_golden(path)
    assert req.headers["authorization"] == "Bearer gsk-test"


def test_n_above_one_is_a_clear_400() -> None:
    with pytest.raises(GatewayError) as exc:
        KIT.adapter().chat_request({"messages": [{"role": "user", "content": "hi"}], "n": 3}, KIT.ctx(), False)
    assert exc.value.status == 400 and exc.value.param == "n"


def test_no_embeddings_is_a_clear_400() -> None:
    adapter = KIT.adapter()
    assert adapter.supports_embeddings is False
    with pytest.raises(GatewayError) as exc:
        adapter.embeddings_request({"model": "e", "input": "x"}, KIT.ctx("e"))
    assert exc.value.status == 400 and exc.value.code == "unsupported_endpoint"


def test_on_demand_service_tier_dropped_x_groq_kept() -> None:
    raw = orjson.loads((KIT.fix / "chat.json").read_bytes())
    assert raw["service_tier"] == "on_demand"
    with pytest.raises(Exception):  # what strict parsing does to Groq's raw body
        ChatCompletion.model_validate(raw)
    out = completion("chat.json")
    assert "service_tier" not in out
    assert out["x_groq"]["id"] == "req_01k09cscjye71b378wsrqtfc80"
    assert out["usage"]["prompt_tokens_details"]["cached_tokens"] == 1536
    assert out["usage"]["queue_time"] == pytest.approx(0.093751156)


@pytest.mark.parametrize("name, names", [("tools.json", ["get_weather"]), ("parallel_tools.json", ["get_weather", "get_time"])])
def test_tool_calls(name: str, names: list[str]) -> None:
    out = completion(name)
    assert [tc["function"]["name"] for tc in out["choices"][0]["message"]["tool_calls"]] == names
    assert out["choices"][0]["finish_reason"] == "tool_calls"


def test_json_mode() -> None:
    assert orjson.loads(completion("json_mode.json")["choices"][0]["message"]["content"]) == {"city": "Paris", "country": "France"}


@pytest.mark.parametrize("piece", [1, 11, 0])
def test_stream_usage_from_x_groq(piece: int) -> None:
    out, tr = KIT.stream((KIT.fix / "chat_stream.sse").read_bytes(), include_usage=True, piece=piece)
    chunks = strict_chunks(out)
    merged = assemble(chunks)
    assert merged["content"] == "The capital of France is Paris."
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 2078
    assert chunks[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 1536
    assert "usage" not in chunks[-2]["x_groq"]
    assert not any("service_tier" in c for c in chunks)
    assert tr.usage["completion_tokens"] == 8


def test_stream_usage_not_sent_unless_asked() -> None:
    out, tr = KIT.stream((KIT.fix / "chat_stream.sse").read_bytes())
    assert not any(c.get("usage") for c in strict_chunks(out))
    assert tr.usage["prompt_tokens"] == 2070


@pytest.mark.parametrize("name, names", [("tools_stream.sse", ["get_weather"]),
                                         ("parallel_tools_stream.sse", ["get_weather", "get_time"])])
def test_stream_tool_calls(name: str, names: list[str]) -> None:
    merged = assemble(strict_chunks(KIT.stream((KIT.fix / name).read_bytes(), include_usage=True, piece=6)[0]))
    assert [c["name"] for c in merged["tool_calls"]] == names
    assert merged["finish_reason"] == "tool_calls"
    assert merged["usage"]["total_tokens"] == 254


def test_stream_json_mode() -> None:
    assert orjson.loads(assemble(strict_chunks(KIT.stream((KIT.fix / "json_mode_stream.sse").read_bytes())[0]))["content"])["city"] == "Paris"


def test_in_stream_error_event() -> None:
    out, tr = KIT.stream((KIT.fix / "stream_error.sse").read_bytes())
    events, done = parse_sse(out)
    assert not done
    assert events[-1]["error"]["code"] == "tool_use_failed"
    assert "failed_generation" not in events[-1]["error"]
    assert tr.errored and tr.failure.status == 400 and tr.failure.error_class == E.BAD_REQUEST


def test_stream_cut() -> None:
    with pytest.raises(UpstreamError) as exc:
        KIT.stream((KIT.fix / "stream_cut.sse").read_bytes())
    assert exc.value.error_class == E.STREAM_CUT


@pytest.mark.parametrize("name, status, error_class, code", [
    ("capacity", 503, E.OVERLOADED, "capacity_exceeded"),
    ("rate_limit", 429, E.RATE_LIMITED, "rate_limit_exceeded"),
    ("tool_use_failed", 400, E.BAD_REQUEST, "tool_use_failed"),
    ("context_length", 400, E.CONTEXT_LENGTH, "context_length_exceeded"),
    ("auth", 502, E.AUTH, "upstream_auth_error"),
    ("not_found", 404, E.NOT_FOUND, "model_not_found"),
    ("unavailable", 503, E.OVERLOADED, None),
])
def test_errors(name: str, status: int, error_class: str, code: str | None) -> None:
    case = orjson.loads((KIT.fix / "errors" / f"{name}.json").read_bytes())
    err = KIT.adapter().error(case["status"], case.get("headers", {}), orjson.dumps(case["body"]), KIT.ctx())
    assert (err.status, err.error_class, err.code) == (status, error_class, code)
    if name == "capacity":
        assert err.retryable and err.type == "service_unavailable_error"
    if name == "rate_limit":
        assert err.retry_after == 7 and err.type == "rate_limit_error"  # Groq's type "tokens" is not OpenAI's

"""`vllm` adapter: extras pass through, response / stream / error fixtures (no network, no Ray)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from openai.types import CreateEmbeddingResponse

from serve_app import errors as E
from serve_app.errors import UpstreamError
from tests.support.mockservers.openai_like import assemble, parse_sse
from tests.support.providers import ProviderKit, strict_chunks

KIT = ProviderKit("vllm", name="local", model="Qwen/Qwen2.5-7B-Instruct")
REQUESTS = KIT.paths("requests/*.json")

completion = KIT.completion


@pytest.mark.parametrize("path", REQUESTS, ids=[p.stem for p in REQUESTS])
def test_request_golden_extras_unchanged(path: Path) -> None:
    _, req = KIT.check_request_golden(path)
    assert "authorization" not in req.headers  # no key configured: none sent


def test_key_sent_when_configured() -> None:
    req = KIT.adapter(api_key="tok", base_url="http://gpu-box:8001/v1").chat_request({"messages": []}, KIT.ctx(), False)
    assert req.headers["authorization"] == "Bearer tok"
    assert req.url == "http://gpu-box:8001/v1/chat/completions"


def test_chat_keeps_vllm_extras() -> None:
    out = completion("chat.json")
    assert out["choices"][0]["stop_reason"] is None and "kv_transfer_params" in out
    assert out["usage"]["prompt_tokens_details"]["cached_tokens"] == 16
    assert out["choices"][0]["message"]["tool_calls"] is None


def test_tools_and_parallel() -> None:
    assert completion("tools.json")["choices"][0]["message"]["tool_calls"][0]["id"] == "chatcmpl-tool-4a1f0c2e9b8d4e7f"
    calls = completion("parallel_tools.json")["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]


def test_json_mode() -> None:
    assert orjson.loads(completion("json_mode.json")["choices"][0]["message"]["content"])["city"] == "Paris"


def test_embeddings() -> None:
    req = KIT.adapter().embeddings_request({"model": "BAAI/bge-m3", "input": ["a", "b"], "encoding_format": "base64"}, KIT.ctx("BAAI/bge-m3"))
    assert orjson.loads(req.body)["encoding_format"] == "base64"  # vLLM encodes itself
    out = CreateEmbeddingResponse.model_validate(orjson.loads(
        KIT.adapter().embeddings_response(200, (KIT.fix / "embeddings.json").read_bytes(), KIT.ctx("BAAI/bge-m3"))))
    assert out.usage.prompt_tokens == 9 and out.data[1].embedding[0] == pytest.approx(-0.0321)


@pytest.mark.parametrize("piece", [1, 10, 0])
def test_stream(piece: int) -> None:
    out, tr = KIT.stream((KIT.fix / "chat_stream.sse").read_bytes(), include_usage=True, piece=piece)
    chunks = strict_chunks(out)
    assert assemble(chunks)["content"] == "The capital of France is Paris."
    assert chunks[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 16
    assert tr.usage["total_tokens"] == 32


@pytest.mark.parametrize("name, expected", [
    ("tools_stream.sse", [("chatcmpl-tool-4a1f0c2e9b8d4e7f", "get_weather")]),
    ("parallel_tools_stream.sse", [("chatcmpl-tool-4a1f0c2e9b8d4e7f", "get_weather"), ("chatcmpl-tool-9c3b5d7e1f2a4b6c", "get_time")]),
])
def test_stream_tool_calls_arguments_streamed(name: str, expected: list[tuple[str, str]]) -> None:
    chunks = strict_chunks(KIT.stream((KIT.fix / name).read_bytes(), piece=5)[0])
    merged = assemble(chunks)
    assert [(c["id"], c["name"]) for c in merged["tool_calls"]] == expected
    assert orjson.loads(merged["tool_calls"][-1]["arguments"])
    # id and name once per call, arguments in several deltas
    deltas = [tc for c in chunks for ch in c["choices"] for tc in ch["delta"].get("tool_calls") or []]
    assert sum(1 for d in deltas if d.get("id")) == len(expected)
    assert sum(1 for d in deltas if not d.get("id")) == 3 * len(expected)


def test_stream_json_mode() -> None:
    assert orjson.loads(assemble(strict_chunks(KIT.stream((KIT.fix / "json_mode_stream.sse").read_bytes())[0]))["content"])["country"] == "France"


def test_abort_finish_reason_is_an_error_event() -> None:
    out, tr = KIT.stream((KIT.fix / "abort_stream.sse").read_bytes())
    events, done = parse_sse(out)
    assert not done and events[-1]["error"]["code"] == "upstream_generation_error"
    assert tr.failure.retryable


def test_stream_cut() -> None:
    with pytest.raises(UpstreamError) as exc:
        KIT.stream((KIT.fix / "stream_cut.sse").read_bytes())
    assert exc.value.error_class == E.STREAM_CUT


@pytest.mark.parametrize("name, status, error_class, code", [
    ("context_length", 400, E.CONTEXT_LENGTH, "context_length_exceeded"),
    ("not_found", 404, E.NOT_FOUND, None),
    ("bad_request_legacy", 400, E.BAD_REQUEST, None),
    ("server", 500, E.SERVER, None),
    ("unavailable", 503, E.OVERLOADED, None),
])
def test_errors(name: str, status: int, error_class: str, code: str | None) -> None:
    case = orjson.loads((KIT.fix / "errors" / f"{name}.json").read_bytes())
    err = KIT.adapter().error(case["status"], case.get("headers", {}), orjson.dumps(case["body"]), KIT.ctx())
    assert (err.status, err.error_class, err.code) == (status, error_class, code)
    assert "Error" not in err.type  # vLLM's "BadRequestError" & co are not OpenAI types
    if name == "bad_request_legacy":
        assert "guided_json must be a valid JSON schema" in err.message

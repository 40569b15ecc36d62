"""`azure-openai` adapter: request goldens, URL/auth, response / stream / error fixtures (no network, no Ray)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion

from deployments.providers import registry
from serve_app import errors as E
from serve_app.errors import UpstreamError
from tests.support.mockservers.openai_like import assemble
from tests.support.providers import ProviderKit, feed, strict_chunks

KIT = ProviderKit("azure-openai", name="azure", model="gpt-4o", config={"api_key": "az-key"})
TYPE = KIT.type
REQUESTS = KIT.paths("requests/*.json")


def make_adapter(**extra: Any):
    if "resource_name" not in extra and "base_url" not in extra:
        extra["resource_name"] = "contoso"
    return KIT.adapter(**extra)


def stream(adapter: Any, data: bytes, include_usage: bool = False, piece: int = 0) -> tuple[bytes, Any]:
    tr = adapter.chat_stream(KIT.ctx(include_usage=include_usage))
    return feed(tr, data, piece), tr


# --- requests ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", REQUESTS, ids=[p.stem for p in REQUESTS])
def test_request_golden(path: Path) -> None:
    _, req = KIT.check_request_golden(path, make_adapter)
    assert req.method == "POST"


def test_auth_header_is_api_key_not_bearer() -> None:
    req = make_adapter().chat_request({"messages": []}, KIT.ctx(), False)
    assert req.headers["api-key"] == "az-key"
    assert "authorization" not in req.headers


def test_entra_token_replaces_api_key() -> None:
    req = make_adapter(azure_ad_token="eyJ0eXAi").chat_request({"messages": []}, KIT.ctx(), False)
    assert req.headers["authorization"] == "Bearer eyJ0eXAi"
    assert "api-key" not in req.headers


def test_base_url_replaces_resource_root_and_quotes_deployment() -> None:
    adapter = make_adapter(base_url="http://127.0.0.1:9/proxy/", resource_name=None)
    req = adapter.chat_request({"messages": []}, KIT.ctx("my dep/1"), False)
    assert req.url == "http://127.0.0.1:9/proxy/openai/deployments/my%20dep%2F1/chat/completions?api-version=2024-10-21"


def test_stream_options_only_for_api_versions_that_accept_them() -> None:
    old = make_adapter(api_version="2024-02-01").chat_request({"messages": []}, KIT.ctx(), True)
    assert "stream_options" not in orjson.loads(old.body)
    new = make_adapter(api_version="2025-04-01-preview").chat_request({"messages": []}, KIT.ctx(), True)
    assert orjson.loads(new.body)["stream_options"] == {"include_usage": True}


def test_config_needs_resource_or_base_url() -> None:
    spec = registry.get(TYPE)
    with pytest.raises(ValueError, match="resource_name or base_url"):
        spec.config_model.model_validate({"name": "a", "type": TYPE})


def test_embeddings_url_and_body() -> None:
    adapter = make_adapter(embeddings_deployment_id="emb-3-small")
    req = adapter.embeddings_request({"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 256,
                                      "encoding_format": "base64"}, KIT.ctx("text-embedding-3-small"))
    assert req.url == "https://contoso.openai.azure.com/openai/deployments/emb-3-small/embeddings?api-version=2024-10-21"
    assert orjson.loads(req.body) == {"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 256,
                                      "encoding_format": "base64"}  # Azure returns base64 itself
    req = make_adapter().embeddings_request({"model": "ada", "input": "x"}, KIT.ctx("ada"))
    assert "/deployments/ada/embeddings?" in req.url


# --- responses -----------------------------------------------------------------------------------

def test_chat_keeps_filter_results_and_usage_details() -> None:
    out = orjson.loads(make_adapter().chat_response(200, (KIT.fix / "chat.json").read_bytes(), KIT.ctx()))
    parsed = ChatCompletion.model_validate(out)
    assert parsed.choices[0].message.content == "The capital of France is Paris."
    assert parsed.usage.prompt_tokens_details.cached_tokens == 1024
    assert parsed.usage.completion_tokens_details.reasoning_tokens == 0
    assert out["prompt_filter_results"][0]["content_filter_results"]["hate"]["severity"] == "safe"
    assert out["choices"][0]["content_filter_results"]["violence"]["filtered"] is False


@pytest.mark.parametrize("name, calls", [("tools", ["get_weather"]), ("parallel_tools", ["get_weather", "get_time"])])
def test_tool_calls(name: str, calls: list[str]) -> None:
    out = ChatCompletion.model_validate(orjson.loads(make_adapter().chat_response(200, (KIT.fix / f"{name}.json").read_bytes(), KIT.ctx())))
    assert out.choices[0].finish_reason == "tool_calls"
    assert [tc.function.name for tc in out.choices[0].message.tool_calls] == calls
    assert orjson.loads(out.choices[0].message.tool_calls[0].function.arguments)["location"] == "Paris, France"


def test_json_mode() -> None:
    out = ChatCompletion.model_validate(orjson.loads(make_adapter().chat_response(200, (KIT.fix / "json_mode.json").read_bytes(), KIT.ctx())))
    assert orjson.loads(out.choices[0].message.content) == {"city": "Paris", "country": "France"}


def test_filtered_answer_is_kept_by_default_and_an_error_when_configured() -> None:
    payload = (KIT.fix / "content_filtered.json").read_bytes()
    out = ChatCompletion.model_validate(orjson.loads(make_adapter().chat_response(200, payload, KIT.ctx())))
    assert out.choices[0].finish_reason == "content_filter"
    with pytest.raises(UpstreamError) as exc:
        make_adapter(content_filter_as_error=True).chat_response(200, payload, KIT.ctx())
    assert exc.value.status == 400
    assert exc.value.error_class == E.CONTENT_FILTER
    assert exc.value.code == "content_filter"


def test_embeddings_response() -> None:
    out = CreateEmbeddingResponse.model_validate(orjson.loads(
        make_adapter().embeddings_response(200, (KIT.fix / "embeddings.json").read_bytes(), KIT.ctx("text-embedding-3-small"))))
    assert [d.index for d in out.data] == [0, 1]
    assert out.usage.prompt_tokens == 8


# --- streams -------------------------------------------------------------------------------------

@pytest.mark.parametrize("piece", [1, 7, 0])
def test_stream_drops_prompt_filter_chunk_and_annotations(piece: int) -> None:
    data = (KIT.fix / "chat_stream.sse").read_bytes()
    out, tr = stream(make_adapter(), data, include_usage=True, piece=piece)
    assert out == stream(make_adapter(), data, include_usage=True)[0]  # split points do not matter
    chunks = strict_chunks(out)
    # The upstream's first chunk (choices [], object "", prompt_filter_results) is gone: every
    # chunk but the usage one has a choice, so clients reading chunk.choices[0] do not break.
    assert all(c["choices"] for c in chunks[:-1])
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "chatcmpl-AzQ1pYBPN3mWJbz2x" for c in chunks)
    assert not any("prompt_filter_results" in c for c in chunks)
    assert not any("content_filter_offsets" in ch for c in chunks for ch in c["choices"])
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    merged = assemble(chunks)
    assert merged["content"] == "The capital of France is Paris."
    assert merged["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 1024
    assert chunks[-1]["id"] == "chatcmpl-AzQ1pYBPN3mWJbz2x" and chunks[-1]["created"] == 1727380000
    assert tr.usage["total_tokens"] == 1262


def test_stream_usage_chunk_dropped_unless_asked() -> None:
    out, tr = stream(make_adapter(), (KIT.fix / "chat_stream.sse").read_bytes(), include_usage=False)
    chunks = strict_chunks(out)
    assert all(c["choices"] for c in chunks)
    assert tr.usage["completion_tokens"] == 12  # still known to the gateway


@pytest.mark.parametrize("name, expected", [
    ("tools_stream.sse", [("call_Vx1Kf3hD9Qh2", "get_weather", '{"location": "Paris, France", "unit": "celsius"}')]),
    ("parallel_tools_stream.sse", [("call_Vx1Kf3hD9Qh2", "get_weather", '{"location": "Paris, France", "unit": "celsius"}'),
                                   ("call_Q8m2Lr5sT0aZ", "get_time", '{"timezone": "Europe/Paris"}')]),
])
def test_stream_tool_calls(name: str, expected: list[tuple[str, str, str]]) -> None:
    out, _ = stream(make_adapter(), (KIT.fix / name).read_bytes(), include_usage=True, piece=5)
    merged = assemble(strict_chunks(out))
    assert [(c["id"], c["name"], c["arguments"]) for c in merged["tool_calls"]] == expected
    assert all(c["type"] == "function" for c in merged["tool_calls"])
    assert merged["finish_reason"] == "tool_calls"


def test_stream_json_mode() -> None:
    out, _ = stream(make_adapter(), (KIT.fix / "json_mode_stream.sse").read_bytes())
    assert orjson.loads(assemble(strict_chunks(out))["content"]) == {"city": "Paris", "country": "France"}


def test_stream_cut_raises() -> None:
    with pytest.raises(UpstreamError) as exc:
        stream(make_adapter(), (KIT.fix / "stream_cut.sse").read_bytes())
    assert exc.value.error_class == E.STREAM_CUT
    assert exc.value.status == 502


def test_stream_crlf_events() -> None:
    data = (KIT.fix / "chat_stream.sse").read_bytes().replace(b"\n", b"\r\n")
    out, _ = stream(make_adapter(), data, piece=3)
    assert assemble(strict_chunks(out))["content"] == "The capital of France is Paris."


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, status, error_class, code", [
    ("content_filter", 400, E.CONTENT_FILTER, "content_filter"),
    ("rate_limit", 429, E.RATE_LIMITED, None),
    ("auth", 502, E.AUTH, "upstream_auth_error"),
    ("not_found", 404, E.NOT_FOUND, "DeploymentNotFound"),
    ("context_length", 400, E.CONTEXT_LENGTH, "context_length_exceeded"),
    ("server", 500, E.SERVER, "InternalServerError"),
    ("unavailable", 503, E.OVERLOADED, "ServiceUnavailable"),
])
def test_errors(name: str, status: int, error_class: str, code: str | None) -> None:
    case = orjson.loads((KIT.fix / "errors" / f"{name}.json").read_bytes())
    err = make_adapter().error(case["status"], case.get("headers", {}), orjson.dumps(case["body"]), KIT.ctx())
    assert (err.status, err.error_class, err.code) == (status, error_class, code)
    assert err.type in ("invalid_request_error", "rate_limit_error", "upstream_error", "not_found_error", "api_error",
                        "service_unavailable_error")
    if name == "rate_limit":
        assert err.retry_after == 6
        assert err.retryable
    if name == "auth":
        assert "subscription key" not in err.message  # never echo the provider's text for auth failures
    if name == "content_filter":
        assert not err.retryable
        assert "content management policy" in err.message
        assert "content_filter: violence (medium)" in err.message  # the filtered category
        assert err.param == "messages" and err.type == "invalid_request_error"

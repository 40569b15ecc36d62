"""Conformance: `openai` SDK (strict) -> gateway (in-process) -> `groq` adapter -> the Groq mock replaying
tests/fixtures/providers/groq (`service_tier: on_demand`, usage in `x_groq.usage`, status 498)."""

from __future__ import annotations

import json

import openai
import pytest

from tests.support.mockservers.openai_like import OpenAILikeMock, collect_sdk_stream
from tests.support.providers import ask, assert_vision_parts_unchanged, provider_fixtures, stream_error

KEY = "gsk-mock-key"
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
MODEL = "llama-3.3-70b-versatile"


mock, url, client = provider_fixtures(lambda: OpenAILikeMock("groq", api_key=KEY), "groq", "groq", api_key=KEY)


def test_chat_on_demand_tier_and_cached_tokens(client: openai.OpenAI, mock: OpenAILikeMock) -> None:
    resp = client.chat.completions.create(model=MODEL, messages=ask("chat"))
    assert resp.choices[0].message.content == "The capital of France is Paris."
    assert resp.service_tier is None  # "on_demand" would fail strict parsing
    assert resp.usage.prompt_tokens_details.cached_tokens == 1536
    assert resp.model_extra["x_groq"]["id"] == "req_01k09cscjye71b378wsrqtfc80"
    assert mock.last().path == "/openai/v1/chat/completions"


def test_stream_usage_from_x_groq(client: openai.OpenAI, mock: OpenAILikeMock) -> None:
    got = collect_sdk_stream(client.chat.completions.create(model=MODEL, messages=ask("chat"), stream=True,
                                                            stream_options={"include_usage": True}))
    assert got["content"] == "The capital of France is Paris." and got["finish"] == "stop"
    assert (got["usage"].prompt_tokens, got["usage"].completion_tokens, got["usage"].total_tokens) == (2070, 8, 2078)
    assert got["usage"].prompt_tokens_details.cached_tokens == 1536
    assert "stream_options" not in mock.last().json
    assert collect_sdk_stream(client.chat.completions.create(model=MODEL, messages=ask("chat"), stream=True))["usage"] is None


def test_tools(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model=MODEL, messages=ask("tools"), tools=[WEATHER])
    assert resp.choices[0].message.tool_calls[0].function.name == "get_weather"
    resp = client.chat.completions.create(model=MODEL, messages=ask("parallel_tools"), tools=[WEATHER, TIME])
    assert [c.id for c in resp.choices[0].message.tool_calls] == ["call_d5wg", "call_fq2a"]


@pytest.mark.parametrize("scenario, names", [("tools", ["get_weather"]), ("parallel_tools", ["get_weather", "get_time"])])
def test_stream_tools(client: openai.OpenAI, scenario: str, names: list[str]) -> None:
    got = collect_sdk_stream(client.chat.completions.create(model=MODEL, messages=ask(scenario), tools=[WEATHER, TIME],
                                                            stream=True, stream_options={"include_usage": True}))
    assert [c["name"] for c in got["tool_calls"]] == names and got["finish"] == "tool_calls"
    assert got["usage"].total_tokens == 254


def test_json_mode(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model=MODEL, messages=ask("json_mode"), response_format={"type": "json_object"})
    assert json.loads(resp.choices[0].message.content)["city"] == "Paris"
    got = collect_sdk_stream(client.chat.completions.create(model=MODEL, messages=ask("json_mode"), stream=True,
                                                            response_format={"type": "json_object"}))
    assert json.loads(got["content"])["country"] == "France"


def test_n_above_one_is_refused_by_the_gateway(client: openai.OpenAI, mock: OpenAILikeMock) -> None:
    before = len(mock.requests)
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model=MODEL, messages=ask("chat"), n=2)
    assert exc.value.body["param"] == "n" and len(mock.requests) == before


@pytest.mark.parametrize("scenario, exc_class, status, code", [
    ("error:capacity", openai.InternalServerError, 503, "capacity_exceeded"),
    ("error:rate_limit", openai.RateLimitError, 429, "rate_limit_exceeded"),
    ("error:tool_use_failed", openai.BadRequestError, 400, "tool_use_failed"),
    ("error:context_length", openai.BadRequestError, 400, "context_length_exceeded"),
    ("error:auth", openai.InternalServerError, 502, "upstream_auth_error"),
    ("error:not_found", openai.NotFoundError, 404, "model_not_found"),
    ("error:unavailable", openai.InternalServerError, 503, None),
])
@pytest.mark.parametrize("stream", [False, True])
def test_errors(client: openai.OpenAI, scenario: str, exc_class: type, status: int, code: str | None, stream: bool) -> None:
    with pytest.raises(exc_class) as exc:
        client.chat.completions.create(model=MODEL, messages=ask(scenario), stream=stream)
    assert exc.value.status_code == status and exc.value.body.get("code") == code


def test_error_event_mid_stream(client: openai.OpenAI) -> None:
    err, content = stream_error(client.chat.completions.create(model=MODEL, messages=ask("stream_error"), stream=True))
    assert content.startswith("The")  # the error came after the upstream's first chunks
    assert (err.code, err.type) == ("tool_use_failed", "invalid_request_error")
    assert "Failed to call a function" in err.message


def test_stream_cut(client: openai.OpenAI) -> None:
    err, content = stream_error(client.chat.completions.create(model=MODEL, messages=ask("stream_cut"), stream=True))
    assert content and (err.code, err.type) == ("upstream_stream_cut", "upstream_error")


def test_vision_parts_reach_the_provider_unchanged(client: openai.OpenAI, mock: OpenAILikeMock) -> None:
    assert_vision_parts_unchanged(client, mock, MODEL)


def test_embeddings_are_a_clear_400(client: openai.OpenAI, mock: OpenAILikeMock) -> None:
    before = len(mock.requests)
    with pytest.raises(openai.BadRequestError) as exc:
        client.embeddings.create(model="nomic-embed", input="x", encoding_format="float")
    assert exc.value.body["code"] == "unsupported_endpoint" and len(mock.requests) == before

"""Conformance: the official `openai` SDK (strict parsing) -> gateway (in-process) -> `azure-openai`
adapter -> the local Azure mock replaying tests/fixtures/providers/azure-openai.

The last user message names the fixture scenario (see tests/support/mockservers/openai_like.py);
the mock checks the `api-key` header and the `api-version` query like Azure does.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.support.mockservers.openai_like import OpenAILikeMock, collect_sdk_stream
from tests.support.providers import (
    assert_vision_parts_unchanged,
    gateway_config,
    lenient_client,
    provider_fixtures,
    strict_client,
)

KEY = "azure-mock-key"
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"location": {"type": "string"}, "unit": {"type": "string"}}, "required": ["location"]}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}}}}


PROVIDER = {"api_key": KEY, "deployment_id": "gpt4o-prod"}
mock, url, client = provider_fixtures(lambda: OpenAILikeMock("azure-openai", api_key=KEY), "az", "azure-openai",
                                       **PROVIDER)


def config(mock: OpenAILikeMock, **provider: Any) -> dict[str, Any]:
    return gateway_config("az", "azure-openai", base_url=mock.base_url, **{**PROVIDER, **provider})


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def test_chat_and_usage_details(client: openai.OpenAI, mock: OpenAILikeMock) -> None:
    resp = client.chat.completions.create(model="gpt-4o", messages=ask("chat"), temperature=0.1, max_tokens=50)
    assert resp.choices[0].message.content == "The capital of France is Paris."
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens_details.cached_tokens == 1024
    assert resp.usage.completion_tokens_details.reasoning_tokens == 0
    assert resp.model_extra["prompt_filter_results"][0]["prompt_index"] == 0  # Azure's extras survive
    req = mock.last("/chat/completions")
    assert req.path == "/openai/deployments/gpt4o-prod/chat/completions"
    assert req.query == {"api-version": "2024-10-21"}
    assert req.headers["api-key"] == KEY and "authorization" not in req.headers
    assert req.json["temperature"] == 0.1 and req.json["max_tokens"] == 50


def test_stream_without_and_with_usage(client: openai.OpenAI) -> None:
    got = collect_sdk_stream(client.chat.completions.create(model="gpt-4o", messages=ask("chat"), stream=True))
    assert got["content"] == "The capital of France is Paris." and got["finish"] == "stop"
    assert got["roles"] == ["assistant"] and got["usage"] is None
    assert got["ids"] == {"chatcmpl-AzQ1pYBPN3mWJbz2x"}  # the prompt_filter_results chunk (id "") is gone
    got = collect_sdk_stream(client.chat.completions.create(model="gpt-4o", messages=ask("chat"), stream=True,
                                                            stream_options={"include_usage": True}))
    assert (got["usage"].prompt_tokens, got["usage"].total_tokens) == (1250, 1262)
    assert got["usage"].prompt_tokens_details.cached_tokens == 1024


def test_stream_reading_choices_zero_never_breaks(client: openai.OpenAI) -> None:
    for chunk in client.chat.completions.create(model="gpt-4o", messages=ask("chat"), stream=True):
        assert chunk.choices[0].index == 0


def test_tools_and_parallel_tools(client: openai.OpenAI, mock: OpenAILikeMock) -> None:
    resp = client.chat.completions.create(model="gpt-4o", messages=ask("tools"), tools=[WEATHER], tool_choice="required")
    call = resp.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, resp.choices[0].finish_reason) == ("call_Vx1Kf3hD9Qh2", "get_weather", "tool_calls")
    assert json.loads(call.function.arguments) == {"location": "Paris, France", "unit": "celsius"}
    assert mock.last().json["tool_choice"] == "required"
    resp = client.chat.completions.create(model="gpt-4o", messages=ask("parallel_tools"), tools=[WEATHER, TIME])
    assert [c.function.name for c in resp.choices[0].message.tool_calls] == ["get_weather", "get_time"]


@pytest.mark.parametrize("scenario, names", [("tools", ["get_weather"]), ("parallel_tools", ["get_weather", "get_time"])])
def test_stream_tools(client: openai.OpenAI, scenario: str, names: list[str]) -> None:
    got = collect_sdk_stream(client.chat.completions.create(model="gpt-4o", messages=ask(scenario), tools=[WEATHER, TIME],
                                                            stream=True))
    assert [c["name"] for c in got["tool_calls"]] == names
    assert all(c["type"] == "function" and c["id"].startswith("call_") for c in got["tool_calls"])
    assert json.loads(got["tool_calls"][0]["arguments"])["location"] == "Paris, France"
    assert got["finish"] == "tool_calls"


def test_json_mode(client: openai.OpenAI, mock: OpenAILikeMock) -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "city", "schema": {"type": "object"}}}
    resp = client.chat.completions.create(model="gpt-4o", messages=ask("json_mode"), response_format=schema)
    assert json.loads(resp.choices[0].message.content) == {"city": "Paris", "country": "France"}
    assert mock.last().json["response_format"] == schema
    got = collect_sdk_stream(client.chat.completions.create(model="gpt-4o", messages=ask("json_mode"), stream=True,
                                                            response_format={"type": "json_object"}))
    assert json.loads(got["content"]) == {"city": "Paris", "country": "France"}


def test_content_filtered_answer_keeps_openai_semantics(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="gpt-4o", messages=ask("content_filtered"))
    assert resp.choices[0].finish_reason == "content_filter" and resp.choices[0].message.content is None


def test_embeddings(gateway: Any, mock: OpenAILikeMock) -> None:
    url = gateway(config(mock, embeddings_deployment_id="emb-small"))
    client = strict_client(url)
    resp = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"], encoding_format="float")
    assert [d.index for d in resp.data] == [0, 1] and resp.usage.prompt_tokens == 8
    assert resp.data[0].embedding[0] == pytest.approx(0.0023064255)
    assert mock.last("/embeddings").path == "/openai/deployments/emb-small/embeddings"
    # The SDK's default asks for base64 (which its strict models cannot hold): Azure encodes, the SDK decodes.
    lenient = lenient_client(url)
    resp = lenient.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert mock.last("/embeddings").json["encoding_format"] == "base64"
    assert resp.data[1].embedding[0] == pytest.approx(-0.012245877)


@pytest.mark.parametrize("scenario, exc_class, status, code", [
    ("error:content_filter", openai.BadRequestError, 400, "content_filter"),
    ("error:rate_limit", openai.RateLimitError, 429, None),
    ("error:auth", openai.InternalServerError, 502, "upstream_auth_error"),
    ("error:not_found", openai.NotFoundError, 404, "DeploymentNotFound"),
    ("error:context_length", openai.BadRequestError, 400, "context_length_exceeded"),
    ("error:server", openai.InternalServerError, 500, "InternalServerError"),
    ("error:unavailable", openai.InternalServerError, 503, "ServiceUnavailable"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_errors(client: openai.OpenAI, scenario: str, exc_class: type, status: int, code: str | None, stream: bool) -> None:
    with pytest.raises(exc_class) as exc:
        client.chat.completions.create(model="gpt-4o", messages=ask(scenario), stream=stream)
    assert exc.value.status_code == status
    assert (exc.value.body or {}).get("code") == code
    if scenario == "error:rate_limit":
        assert exc.value.response.headers["retry-after"] == "6"


def test_wrong_key_is_an_upstream_auth_error(gateway: Any, mock: OpenAILikeMock) -> None:
    client = strict_client(gateway(config(mock, api_key="wrong")))
    with pytest.raises(openai.InternalServerError) as exc:
        client.chat.completions.create(model="gpt-4o", messages=ask("chat"))
    assert exc.value.status_code == 502 and exc.value.body["code"] == "upstream_auth_error"
    assert "wrong" not in str(exc.value.body)


def test_stream_cut_ends_with_an_error_not_a_clean_end(client: openai.OpenAI) -> None:
    chunks = []
    with pytest.raises(openai.APIError) as exc:
        for chunk in client.chat.completions.create(model="gpt-4o", messages=ask("stream_cut"), stream=True):
            chunks.append(chunk)
    assert chunks and "before it was complete" in exc.value.message


def test_vision_parts_reach_the_provider_unchanged(client: openai.OpenAI, mock: OpenAILikeMock) -> None:
    assert_vision_parts_unchanged(client, mock, "gpt-4o")

"""Conformance: `openai` SDK (strict) -> gateway (in-process) -> `together` adapter -> the Together mock
replaying tests/fixtures/providers/together (chunks without `model`, `eos`, embeddings without usage)."""

from __future__ import annotations

import json

import openai
import pytest

from tests.support.mockservers.openai_like import OpenAILikeMock, collect_sdk_stream
from tests.support.providers import (
    ask,
    assert_vision_parts_unchanged,
    lenient_client,
    provider_fixtures,
    stream_error,
)

KEY = "tg-mock-key"
MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


mock, url, client = provider_fixtures(lambda: OpenAILikeMock("together", api_key=KEY), "together", "together",
                                       api_key=KEY)


def test_chat_eos_and_cached_tokens(client: openai.OpenAI, mock: OpenAILikeMock) -> None:
    resp = client.chat.completions.create(model=MODEL, messages=ask("chat"), extra_body={"top_k": 40})
    assert resp.choices[0].finish_reason == "stop" and resp.choices[0].message.content == "The capital of France is Paris."
    assert resp.usage.prompt_tokens_details.cached_tokens == 32
    assert mock.last().json["top_k"] == 40 and mock.last().headers["authorization"] == f"Bearer {KEY}"


def test_stream_chunks_without_model(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model=MODEL, messages=ask("chat"), stream=True,
                                            stream_options={"include_usage": True})
    got = collect_sdk_stream(stream)
    assert got["content"] == "The capital of France is Paris." and got["finish"] == "stop"
    assert got["roles"][0] == "assistant" and got["usage"].total_tokens == 53


def test_tools(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model=MODEL, messages=ask("tools"), tools=[WEATHER])
    assert resp.choices[0].finish_reason == "tool_calls"  # Together said "eos"
    resp = client.chat.completions.create(model=MODEL, messages=ask("parallel_tools"), tools=[WEATHER, TIME])
    assert [c.function.name for c in resp.choices[0].message.tool_calls] == ["get_weather", "get_time"]


@pytest.mark.parametrize("scenario, names", [("tools", ["get_weather"]), ("parallel_tools", ["get_weather", "get_time"])])
def test_stream_tools(client: openai.OpenAI, scenario: str, names: list[str]) -> None:
    got = collect_sdk_stream(client.chat.completions.create(model=MODEL, messages=ask(scenario), tools=[WEATHER, TIME],
                                                            stream=True))
    assert [c["name"] for c in got["tool_calls"]] == names
    assert json.loads(got["tool_calls"][0]["arguments"]) == {"location": "Paris, France", "unit": "celsius"}
    assert got["finish"] == "tool_calls"  # Together said "stop"


def test_json_mode(client: openai.OpenAI, mock: OpenAILikeMock) -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "c", "schema": {"type": "object"}}}
    resp = client.chat.completions.create(model=MODEL, messages=ask("json_mode"), response_format=schema)
    assert json.loads(resp.choices[0].message.content)["city"] == "Paris"
    assert mock.last().json["response_format"] == schema
    got = collect_sdk_stream(client.chat.completions.create(model=MODEL, messages=ask("json_mode"), stream=True,
                                                            response_format=schema))
    assert json.loads(got["content"])["country"] == "France"


def test_embeddings_without_upstream_usage(client: openai.OpenAI, url: str) -> None:
    resp = client.embeddings.create(model="BAAI/bge-large-en-v1.5", input=["a", "b"], encoding_format="float")
    assert len(resp.data) == 2 and resp.usage.prompt_tokens == 0
    lenient = lenient_client(url)
    assert lenient.embeddings.create(model="BAAI/bge-large-en-v1.5", input="a").data[0].embedding[0] == pytest.approx(0.2633975)


@pytest.mark.parametrize("scenario, exc_class, status", [
    ("error:overloaded", openai.InternalServerError, 503),
    ("error:edge_timeout", openai.InternalServerError, 504),
    ("error:context_length", openai.BadRequestError, 400),
    ("error:rate_limit", openai.RateLimitError, 429),
    ("error:auth", openai.InternalServerError, 502),
    ("error:not_found", openai.NotFoundError, 404),
])
@pytest.mark.parametrize("stream", [False, True])
def test_errors(client: openai.OpenAI, scenario: str, exc_class: type, status: int, stream: bool) -> None:
    with pytest.raises(exc_class) as exc:
        client.chat.completions.create(model=MODEL, messages=ask(scenario), stream=stream)
    assert exc.value.status_code == status
    if scenario == "error:context_length":
        assert exc.value.body["code"] == "context_length_exceeded"


@pytest.mark.parametrize("scenario, code, kind", [("stream_error", None, "server_error"),
                                                 ("stream_cut", "upstream_stream_cut", "upstream_error")])
def test_error_event_and_cut(client: openai.OpenAI, scenario: str, code: str | None, kind: str) -> None:
    err, content = stream_error(client.chat.completions.create(model=MODEL, messages=ask(scenario), stream=True))
    assert content.startswith("The") and (err.code, err.type) == (code, kind)
    if scenario == "stream_error":
        assert err.message == "provider 'together': Internal server error"


def test_vision_parts_reach_the_provider_unchanged(client: openai.OpenAI, mock: OpenAILikeMock) -> None:
    assert_vision_parts_unchanged(client, mock, MODEL)

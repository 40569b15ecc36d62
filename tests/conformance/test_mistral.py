"""Conformance: `openai` SDK (strict) -> gateway (in-process) -> `mistral` adapter -> the Mistral mock
replaying tests/fixtures/providers/mistral. The mock refuses what Mistral refuses (OpenAI-only fields
such as `seed`/`user`/`stream_options`, tool-call ids that are not nine alphanumerics)."""

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

KEY = "mistral-mock-key"
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


mock, url, client = provider_fixtures(lambda: OpenAILikeMock("mistral", api_key=KEY), "mistral", "mistral", api_key=KEY)


def test_chat_translates_openai_only_fields(client: openai.OpenAI, mock: OpenAILikeMock) -> None:
    resp = client.chat.completions.create(model="mistral-large-latest", messages=ask("chat"), seed=7, user="u-1",
                                          max_completion_tokens=64)
    assert resp.choices[0].message.content == "The capital of France is Paris."
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (16, 10, 26)
    sent = mock.last("/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.json["random_seed"] == 7 and sent.json["max_tokens"] == 64 and "user" not in sent.json


def test_stream_and_usage(client: openai.OpenAI, mock: OpenAILikeMock) -> None:
    got = collect_sdk_stream(client.chat.completions.create(model="mistral-large-latest", messages=ask("chat"), stream=True))
    assert got["content"] == "The capital of France is Paris." and got["finish"] == "stop" and got["usage"] is None
    got = collect_sdk_stream(client.chat.completions.create(model="mistral-large-latest", messages=ask("chat"), stream=True,
                                                            stream_options={"include_usage": True}))
    assert got["usage"].total_tokens == 26
    assert "stream_options" not in mock.last().json


def test_tools_with_history_from_another_provider(client: openai.OpenAI, mock: OpenAILikeMock) -> None:
    history = [{"role": "user", "content": "weather?"},
               {"role": "assistant", "content": None, "tool_calls": [{"id": "call_Vx1Kf3hD9Qh2xyz", "type": "function",
                                                                      "function": {"name": "get_weather", "arguments": "{}"}}]},
               {"role": "tool", "tool_call_id": "call_Vx1Kf3hD9Qh2xyz", "content": "21C"},
               {"role": "user", "content": "tools"}]
    resp = client.chat.completions.create(model="mistral-large-latest", messages=history, tools=[WEATHER])
    call = resp.choices[0].message.tool_calls[0]
    assert (call.id, call.type, call.function.name) == ("D681PevKs", "function", "get_weather")
    assert resp.choices[0].finish_reason == "tool_calls" and resp.choices[0].message.content is None
    sent = mock.last().json["messages"]
    assert sent[1]["tool_calls"][0]["id"] == sent[2]["tool_call_id"] and len(sent[2]["tool_call_id"]) == 9


def test_parallel_tools(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="mistral-large-latest", messages=ask("parallel_tools"), tools=[WEATHER, TIME])
    assert [c.function.name for c in resp.choices[0].message.tool_calls] == ["get_weather", "get_time"]


@pytest.mark.parametrize("scenario, names", [("tools", ["get_weather"]), ("parallel_tools", ["get_weather", "get_time"])])
def test_stream_tools(client: openai.OpenAI, scenario: str, names: list[str]) -> None:
    got = collect_sdk_stream(client.chat.completions.create(model="mistral-large-latest", messages=ask(scenario),
                                                            tools=[WEATHER, TIME], stream=True))
    assert [c["name"] for c in got["tool_calls"]] == names  # Mistral sent both calls with index 0
    assert json.loads(got["tool_calls"][0]["arguments"])["location"] == "Paris, France"
    assert got["finish"] == "tool_calls"


def test_json_mode(client: openai.OpenAI, mock: OpenAILikeMock) -> None:
    resp = client.chat.completions.create(model="mistral-large-latest", messages=ask("json_mode"),
                                          response_format={"type": "json_object"})
    assert json.loads(resp.choices[0].message.content)["city"] == "Paris"
    assert mock.last().json["response_format"] == {"type": "json_object"}
    got = collect_sdk_stream(client.chat.completions.create(model="mistral-large-latest", messages=ask("json_mode"),
                                                            response_format={"type": "json_object"}, stream=True))
    assert json.loads(got["content"])["country"] == "France"


def test_non_openai_finish_reason_and_thinking_content(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="mistral-large-latest", messages=ask("model_length"))
    assert resp.choices[0].finish_reason == "length"
    resp = client.chat.completions.create(model="magistral-medium-latest", messages=ask("reasoning"))
    assert resp.choices[0].message.content == "The capital of France is Paris."
    got = collect_sdk_stream(client.chat.completions.create(model="magistral-medium-latest", messages=ask("reasoning"),
                                                            stream=True))
    assert got["content"] == "Paris."


def test_generation_error_in_stream(client: openai.OpenAI) -> None:
    err, content = stream_error(client.chat.completions.create(model="mistral-large-latest",
                                                               messages=ask("generation_error"), stream=True))
    assert content == "The capital"  # what came before the error is delivered, then the error
    assert (err.code, err.type) == ("upstream_generation_error", "upstream_error")
    assert "finish_reason 'error'" in err.message


def test_embeddings(client: openai.OpenAI, url: str, mock: OpenAILikeMock) -> None:
    resp = client.embeddings.create(model="mistral-embed", input=["a", "b"], encoding_format="float", dimensions=4)
    assert len(resp.data) == 2 and resp.usage.total_tokens == 15
    assert mock.last("/embeddings").json == {"model": "mistral-embed", "input": ["a", "b"], "output_dimension": 4}
    lenient = lenient_client(url)  # SDK default: base64, encoded by the gateway
    resp = lenient.embeddings.create(model="mistral-embed", input=["a", "b"])
    assert "encoding_format" not in mock.last("/embeddings").json
    assert resp.data[0].embedding[0] == pytest.approx(-0.016632080078125)


@pytest.mark.parametrize("scenario, exc_class, status", [
    ("error:validation", openai.UnprocessableEntityError, 422),
    ("error:context_length", openai.BadRequestError, 400),
    ("error:rate_limit", openai.RateLimitError, 429),
    ("error:auth", openai.InternalServerError, 502),
    ("error:tier", openai.InternalServerError, 502),
    ("error:not_found", openai.BadRequestError, 400),
    ("error:unavailable", openai.InternalServerError, 503),
])
@pytest.mark.parametrize("stream", [False, True])
def test_errors(client: openai.OpenAI, scenario: str, exc_class: type, status: int, stream: bool) -> None:
    with pytest.raises(exc_class) as exc:
        client.chat.completions.create(model="mistral-large-latest", messages=ask(scenario), stream=stream)
    assert exc.value.status_code == status
    if scenario == "error:validation":
        assert "temperature: Input should be less than or equal to 1.5" in exc.value.message
    if scenario == "error:context_length":
        assert exc.value.body["code"] == "context_length_exceeded"


def test_stream_cut(client: openai.OpenAI) -> None:
    err, content = stream_error(client.chat.completions.create(model="mistral-large-latest", messages=ask("stream_cut"),
                                                               stream=True))
    assert content and (err.code, err.type) == ("upstream_stream_cut", "upstream_error")


def test_vision_parts_reach_the_provider_unchanged(client: openai.OpenAI, mock: OpenAILikeMock) -> None:
    assert_vision_parts_unchanged(client, mock, "pixtral-large-latest")

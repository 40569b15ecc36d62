"""Conformance: the official `openai` SDK (strict parsing) -> gateway (in-process) -> `anthropic` adapter
-> the local Anthropic mock replaying tests/fixtures/providers/anthropic.

The request's `model` names the fixture scenario (see tests/support/mockservers/anthropic.py); the
mock validates what the gateway sends like the real API does, so a bad translation fails here.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.support.mockservers.anthropic import create_app
from tests.support.mockservers.common import MockServer
from tests.support.providers import PNG, collect_stream, gateway_config, provider_fixtures, strict_client

KEY = "sk-ant-mock-key"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a given location",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
                   "required": ["location"]}}}
TIME_TOOL = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}}}}


# streams arrive cut into 29-byte writes
mock, url, client = provider_fixtures(lambda: MockServer(create_app(KEY, piece=29)), "claude", "anthropic", api_key=KEY)


def _config(mock: MockServer, **provider: Any) -> dict[str, Any]:
    return gateway_config("claude", "anthropic", **{"api_key": KEY, "base_url": mock.base_url, **provider})


def _sent(mock: MockServer) -> dict[str, Any]:
    return mock.last("/v1/messages").json




# --- chat ---------------------------------------------------------------------------------------


def test_chat(client: openai.OpenAI, mock: MockServer) -> None:
    resp = client.chat.completions.create(model="text", messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}], user="u-42")
    assert resp.id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert resp.object == "chat.completion"
    assert resp.model == "claude-sonnet-4-5-20250929"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == "Hello! How can I help you today?"
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (12, 10, 22)
    req = mock.last("/v1/messages")
    assert req.headers["x-api-key"] == KEY and req.headers["anthropic-version"] == "2023-06-01"
    assert req.json["system"] == "Be brief."
    assert req.json["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]
    assert req.json["max_tokens"] == 4096 and req.json["metadata"] == {"user_id": "u-42"}


def test_stream(client: openai.OpenAI) -> None:
    got = collect_stream(client.chat.completions.create(model="text", messages=[{"role": "user", "content": "Hello"}],
                                                  stream=True))
    assert got["roles"] == ["assistant"]
    assert got["content"] == "Hello! How can I help you today?"
    assert got["finish"] == "stop"
    assert got["usage"] is None  # not asked for
    assert got["ids"] == {"msg_01StreamText7Ab"}


def test_stream_usage_chunk_when_asked(client: openai.OpenAI) -> None:
    got = collect_stream(client.chat.completions.create(model="cached_usage", messages=[{"role": "user", "content": "4.2?"}],
                                                  stream=True, stream_options={"include_usage": True}))
    assert got["content"] == "Section 4.2 says the licence may be renewed once."
    usage = got["usage"]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (2009, 15, 2024)
    assert usage.prompt_tokens_details.cached_tokens == 1800


def test_usage_details(client: openai.OpenAI, mock: MockServer) -> None:
    cached = client.chat.completions.create(model="cached_usage", messages=[{"role": "user", "content": "4.2?"}])
    assert cached.usage.prompt_tokens == 2009
    assert cached.usage.prompt_tokens_details.cached_tokens == 1800
    thinking = client.chat.completions.create(model="thinking", messages=[{"role": "user", "content": "27*453?"}],
                                              extra_body={"thinking": {"type": "enabled", "budget_tokens": 1024}},
                                              max_tokens=2048)
    assert thinking.choices[0].message.content == "27 × 453 = 12,231."
    assert thinking.usage.completion_tokens_details.reasoning_tokens == 81
    assert _sent(mock)["thinking"] == {"type": "enabled", "budget_tokens": 1024}


@pytest.mark.parametrize("scenario, finish", [("max_tokens", "length"), ("stop_sequence", "stop"),
                                              ("refusal", "content_filter")])
def test_finish_reasons(client: openai.OpenAI, scenario: str, finish: str) -> None:
    resp = client.chat.completions.create(model=scenario, messages=[{"role": "user", "content": "go"}],
                                          stop=["5"], max_tokens=10)
    assert resp.choices[0].finish_reason == finish


def test_multi_turn_with_developer_message(client: openai.OpenAI, mock: MockServer) -> None:
    client.chat.completions.create(model="text", temperature=1.7, top_p=0.5, messages=[
        {"role": "developer", "content": "Rules."},
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}])
    sent = _sent(mock)
    assert sent["system"] == "Rules."
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["temperature"] == 1.0 and sent["top_p"] == 0.5


def test_n_greater_than_one_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="text", n=2, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 400
    assert info.value.body["param"] == "n"


# --- tools --------------------------------------------------------------------------------------


def test_tools(client: openai.OpenAI, mock: MockServer) -> None:
    resp = client.chat.completions.create(model="tool_use", tools=[WEATHER_TOOL], tool_choice="auto",
                                          messages=[{"role": "user", "content": "Weather in SF?"}])
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.id == "toolu_01A09q90qw90lq917835lq9" and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "San Francisco, CA", "unit": "celsius"}
    sent = _sent(mock)
    assert sent["tools"][0]["name"] == "get_weather" and "input_schema" in sent["tools"][0]
    assert sent["tool_choice"] == {"type": "auto"}


@pytest.mark.parametrize("choice, expected", [
    ("required", {"type": "any"}),
    ("none", {"type": "none"}),
    ({"type": "function", "function": {"name": "get_time"}}, {"type": "tool", "name": "get_time"}),
])
def test_tool_choice(client: openai.OpenAI, mock: MockServer, choice: Any, expected: dict[str, Any]) -> None:
    client.chat.completions.create(model="tool_use", tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=choice,
                                   messages=[{"role": "user", "content": "q"}])
    assert _sent(mock)["tool_choice"] == expected


def test_parallel_tool_calls(client: openai.OpenAI, mock: MockServer) -> None:
    resp = client.chat.completions.create(model="parallel_tools", tools=[WEATHER_TOOL, TIME_TOOL],
                                          parallel_tool_calls=True,
                                          messages=[{"role": "user", "content": "Paris and Tokyo?"}])
    calls = resp.choices[0].message.tool_calls
    assert [c.id for c in calls] == ["toolu_01Paris7Hq2kLm", "toolu_01Tokyo9Rt5nBv", "toolu_01Clock3Xz8wQe"]
    assert [c.function.name for c in calls] == ["get_weather", "get_weather", "get_time"]
    client.chat.completions.create(model="parallel_tools", tools=[WEATHER_TOOL], parallel_tool_calls=False,
                                   messages=[{"role": "user", "content": "Paris?"}])
    assert _sent(mock)["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_stream_tools(client: openai.OpenAI) -> None:
    got = collect_stream(client.chat.completions.create(model="tool_use", tools=[WEATHER_TOOL], stream=True,
                                                  messages=[{"role": "user", "content": "Weather in SF?"}]))
    assert got["finish"] == "tool_calls"
    assert got["content"] == "Okay, let's check the weather for San Francisco, CA:"
    [call] = got["tool_calls"]
    assert (call["id"], call["name"]) == ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather")
    assert json.loads(call["arguments"]) == {"location": "San Francisco, CA", "unit": "fahrenheit"}


def test_stream_parallel_tools(client: openai.OpenAI) -> None:
    got = collect_stream(client.chat.completions.create(model="parallel_tools", tools=[WEATHER_TOOL, TIME_TOOL],
                                                  stream=True, stream_options={"include_usage": True},
                                                  messages=[{"role": "user", "content": "Paris and Tokyo?"}]))
    assert [c["id"] for c in got["tool_calls"]] == ["toolu_01Paris7Hq2kLm", "toolu_01Tokyo9Rt5nBv", "toolu_01Clock3Xz8wQe"]
    assert [json.loads(c["arguments"]) for c in got["tool_calls"]] == [
        {"location": "Paris, France"}, {"location": "Tokyo, Japan"}, {"timezone": "Asia/Tokyo"}]
    assert got["usage"].completion_tokens == 148


def test_tool_results_round_trip(client: openai.OpenAI, mock: MockServer) -> None:
    first = client.chat.completions.create(model="parallel_tools", tools=[WEATHER_TOOL, TIME_TOOL],
                                           messages=[{"role": "user", "content": "Paris and Tokyo?"}])
    msg = first.choices[0].message
    history: list[Any] = [{"role": "user", "content": "Paris and Tokyo?"}, msg.model_dump(exclude_none=True)]
    for call, result in zip(msg.tool_calls, ["18°C", "24°C", "21:00"], strict=True):
        history.append({"role": "tool", "tool_call_id": call.id, "content": result})
    resp = client.chat.completions.create(model="text", tools=[WEATHER_TOOL, TIME_TOOL], messages=history)
    assert resp.choices[0].message.content  # the mock accepted the turns (it checks tool_use/tool_result pairing)
    sent = _sent(mock)["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert [b["type"] for b in sent[1]["content"]] == ["tool_use"] * 3
    assert [(b["type"], b["tool_use_id"]) for b in sent[2]["content"]] == [
        ("tool_result", "toolu_01Paris7Hq2kLm"), ("tool_result", "toolu_01Tokyo9Rt5nBv"),
        ("tool_result", "toolu_01Clock3Xz8wQe")]


# --- vision -------------------------------------------------------------------------------------


def test_images(client: openai.OpenAI, mock: MockServer) -> None:
    resp = client.chat.completions.create(model="vision", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is in these images?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/square.jpg"}},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}}]}])
    assert resp.choices[0].message.content == "The image shows a red square on a white background."
    blocks = _sent(mock)["messages"][0]["content"]
    assert blocks[1] == {"type": "image", "source": {"type": "url", "url": "https://example.com/square.jpg"}}
    assert blocks[2] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}


def test_stream_with_image(client: openai.OpenAI, mock: MockServer) -> None:
    got = collect_stream(client.chat.completions.create(model="text", stream=True, messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]))
    assert got["finish"] == "stop"
    assert _sent(mock)["messages"][0]["content"][0]["source"]["type"] == "base64"


# --- JSON mode ----------------------------------------------------------------------------------


class CityInfo(BaseModel):
    city: str
    country: str
    population_millions: float
    landmarks: list[str]


def test_json_schema_parse(client: openai.OpenAI, mock: MockServer) -> None:
    completion = client.chat.completions.parse(model="json_schema", response_format=CityInfo,
                                               messages=[{"role": "user", "content": "Describe Paris."}])
    parsed = completion.choices[0].message.parsed
    assert parsed == CityInfo(city="Paris", country="France", population_millions=2.1,
                              landmarks=["Eiffel Tower", "Louvre"])
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.tool_calls in (None, [])
    sent = _sent(mock)
    assert sent["tool_choice"] == {"type": "tool", "name": "raygate_json_output"}
    assert sent["tools"][0]["input_schema"]["properties"]["landmarks"]["type"] == "array"


def test_json_schema_stream(client: openai.OpenAI) -> None:
    got = collect_stream(client.chat.completions.create(
        model="json_schema", stream=True, messages=[{"role": "user", "content": "Describe Paris."}],
        response_format={"type": "json_schema", "json_schema": {"name": "CityInfo",
                                                                "schema": CityInfo.model_json_schema()}}))
    assert got["finish"] == "stop" and got["tool_calls"] == []
    assert CityInfo.model_validate_json(got["content"]).landmarks == ["Eiffel Tower", "Louvre"]


def test_json_object(client: openai.OpenAI, mock: MockServer) -> None:
    resp = client.chat.completions.create(model="json_object", response_format={"type": "json_object"},
                                          messages=[{"role": "user", "content": "6 x 7 as JSON"}])
    assert json.loads(resp.choices[0].message.content) == {"answer": 42, "unit": "none"}
    assert "valid JSON object" in _sent(mock)["system"]


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario, exc, status, code", [
    ("invalid_request_400", openai.BadRequestError, 400, None),
    ("context_length_400", openai.BadRequestError, 400, "context_length_exceeded"),
    ("authentication_401", openai.InternalServerError, 502, "upstream_auth_error"),
    ("billing_402", openai.InternalServerError, 502, "upstream_billing_error"),
    ("permission_403", openai.InternalServerError, 502, "upstream_auth_error"),
    ("not_found_404", openai.NotFoundError, 404, None),
    ("request_too_large_413", openai.APIStatusError, 413, None),
    ("rate_limit_429", openai.RateLimitError, 429, None),
    ("api_500", openai.InternalServerError, 500, None),
    ("timeout_504", openai.InternalServerError, 504, None),
    ("overloaded_529", openai.InternalServerError, 503, "upstream_overloaded"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_errors(client: openai.OpenAI, scenario: str, exc: type, status: int, code: str | None, stream: bool) -> None:
    with pytest.raises(exc) as info:
        client.chat.completions.create(model=f"error-{scenario}", stream=stream,
                                       messages=[{"role": "user", "content": "hi"}])
    err = info.value
    assert err.status_code == status
    assert err.body["code"] == code
    assert "provider 'claude'" in err.body["message"]
    if status == 429:
        assert err.response.headers["retry-after"] == "17"
    if status == 503:
        assert err.response.headers["retry-after"] == "3"


def test_wrong_provider_key_is_502_upstream_auth_error(gateway: Any, mock: MockServer) -> None:
    url = gateway(_config(mock, api_key="sk-ant-wrong"))
    client = strict_client(url)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="text", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502
    assert info.value.body["code"] == "upstream_auth_error"
    assert "sk-ant-wrong" not in info.value.body["message"]


def test_stream_error_event_mid_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="error_overloaded", stream=True,
                                            messages=[{"role": "user", "content": "hi"}])
    content = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            for choice in chunk.choices:
                content += choice.delta.content or ""
    assert content == "Partial"
    assert info.value.body["type"] == "service_unavailable_error"
    assert info.value.body["code"] == "upstream_overloaded"


def test_stream_cut_is_an_error_not_a_clean_end(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="cut", stream=True, messages=[{"role": "user", "content": "hi"}])
    content, finishes = "", []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            for choice in chunk.choices:
                content += choice.delta.content or ""
                if choice.finish_reason:
                    finishes.append(choice.finish_reason)
    assert content == "The first half of an answer" and finishes == []
    assert info.value.body["code"] == "upstream_stream_cut"


def test_embeddings_are_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="text", input="hi")
    assert info.value.body["code"] == "unsupported_endpoint"

"""Conformance: the official `openai` SDK (strict parsing) -> gateway (in-process) -> `cohere` adapter
-> the local Cohere v2 mock replaying tests/fixtures/providers/cohere.

The request's `model` names the fixture scenario (see tests/support/mockservers/cohere.py); the
mock validates what the gateway sends like the real API does, so a bad translation fails here.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.support.mockservers.cohere import create_app
from tests.support.mockservers.common import MockServer
from tests.support.providers import PNG, collect_stream, gateway_config, provider_fixtures, strict_client

KEY = "co-mock-key-123"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "gets the weather of a given location",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}
TIME_TOOL = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}}}}


# streams arrive cut into 31-byte writes
mock, url, client = provider_fixtures(lambda: MockServer(create_app(KEY, piece=31)), "co", "cohere", api_key=KEY)


def _config(mock: MockServer, **provider: Any) -> dict[str, Any]:
    return gateway_config("co", "cohere", **{"api_key": KEY, "base_url": mock.base_url, **provider})


def _sent(mock: MockServer, path: str = "/v2/chat") -> dict[str, Any]:
    return mock.last(path).json




# --- chat ---------------------------------------------------------------------------------------


def test_chat(client: openai.OpenAI, mock: MockServer) -> None:
    resp = client.chat.completions.create(model="text", seed=11, top_p=0.5, messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is an LLM?"}])
    assert resp.id == "c14c80c3-18eb-4519-9460-6c92edd8cfb4"
    assert resp.model == "text"
    assert resp.choices[0].message.content == "LLMs are neural networks trained on large amounts of text."
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (71, 11, 82)
    req = mock.last("/v2/chat")
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.json["messages"] == [{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "What is an LLM?"}]
    assert (req.json["seed"], req.json["p"], req.json["stream"]) == (11, 0.5, False)


def test_stream(client: openai.OpenAI) -> None:
    got = collect_stream(client.chat.completions.create(model="text", stream=True,
                                                  messages=[{"role": "user", "content": "What is an LLM?"}]))
    assert got["roles"] == ["assistant"]
    assert got["content"] == "LLMs are neural networks trained on large amounts of text."
    assert got["finish"] == "stop" and got["usage"] is None
    assert got["ids"] == {"29f14a5a-11de-4cae-9800-25e4747408ea"}


def test_stream_usage_chunk_and_cached_tokens(client: openai.OpenAI) -> None:
    got = collect_stream(client.chat.completions.create(model="cached_usage", stream=True,
                                                  stream_options={"include_usage": True},
                                                  messages=[{"role": "user", "content": "4.2?"}]))
    assert (got["usage"].prompt_tokens, got["usage"].completion_tokens) == (1549, 12)
    assert got["usage"].prompt_tokens_details.cached_tokens == 992


def test_usage_details(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="cached_usage", messages=[{"role": "user", "content": "4.2?"}])
    assert resp.usage.prompt_tokens_details.cached_tokens == 992
    assert resp.usage.total_tokens == 1561


@pytest.mark.parametrize("scenario, finish", [("max_tokens", "length"), ("stop_sequence", "stop"),
                                              ("content_blocked", "content_filter")])
def test_finish_reasons(client: openai.OpenAI, scenario: str, finish: str) -> None:
    resp = client.chat.completions.create(model=scenario, stop="5", max_tokens=10,
                                          messages=[{"role": "user", "content": "go"}])
    assert resp.choices[0].finish_reason == finish


@pytest.mark.parametrize("stream", [False, True])
def test_citations_and_thinking_dropped(client: openai.OpenAI, stream: bool) -> None:
    for scenario, text in (("citations", "The tallest penguins are emperor penguins."),
                           ("thinking", "27 × 453 = 12,231.")):
        resp = client.chat.completions.create(model=scenario, stream=stream,
                                              messages=[{"role": "user", "content": "q"}])
        content = collect_stream(resp)["content"] if stream else resp.choices[0].message.content
        assert content == text


def test_n_greater_than_one_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="text", n=2, messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["param"] == "n"


def test_generation_error_is_502(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="generation_error", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502 and info.value.body["code"] == "upstream_generation_error"


# --- tools --------------------------------------------------------------------------------------


def test_tools(client: openai.OpenAI, mock: MockServer) -> None:
    resp = client.chat.completions.create(model="tool_calls", tools=[WEATHER_TOOL],
                                          messages=[{"role": "user", "content": "Weather in Toronto?"}])
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert (call.id, call.type, call.function.name) == ("get_weather_1byjy32y4hvq", "function", "get_weather")
    assert json.loads(call.function.arguments) == {"location": "Toronto"}
    assert _sent(mock)["tools"] == [WEATHER_TOOL]
    assert "tool_choice" not in _sent(mock)


@pytest.mark.parametrize("choice, expected, names", [
    ("required", "REQUIRED", ["get_weather", "get_time"]),
    ("none", "NONE", ["get_weather", "get_time"]),
    ({"type": "function", "function": {"name": "get_time"}}, "REQUIRED", ["get_time"]),
])
def test_tool_choice(client: openai.OpenAI, mock: MockServer, choice: Any, expected: str, names: list[str]) -> None:
    client.chat.completions.create(model="tool_calls", tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=choice,
                                   messages=[{"role": "user", "content": "q"}])
    sent = _sent(mock)
    assert sent["tool_choice"] == expected
    assert [t["function"]["name"] for t in sent["tools"]] == names


def test_parallel_tool_calls(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="parallel_tools", tools=[WEATHER_TOOL],
                                          messages=[{"role": "user", "content": "Madrid and Brasilia?"}])
    calls = resp.choices[0].message.tool_calls
    assert [c.id for c in calls] == ["get_weather_p0dage9q1nv4", "get_weather_kbrdnnkf8y7f"]
    assert [json.loads(c.function.arguments)["location"] for c in calls] == ["Madrid", "Brasilia"]


def test_stream_tools(client: openai.OpenAI) -> None:
    got = collect_stream(client.chat.completions.create(model="tool_calls", tools=[WEATHER_TOOL], stream=True,
                                                  messages=[{"role": "user", "content": "Weather in Toronto?"}]))
    assert got["finish"] == "tool_calls" and got["content"] == ""
    [call] = got["tool_calls"]
    assert (call["id"], call["name"]) == ("get_weather_1byjy32y4hvq", "get_weather")
    assert json.loads(call["arguments"]) == {"location": "Toronto"}


def test_stream_parallel_tools(client: openai.OpenAI) -> None:
    got = collect_stream(client.chat.completions.create(model="parallel_tools", tools=[WEATHER_TOOL], stream=True,
                                                  stream_options={"include_usage": True},
                                                  messages=[{"role": "user", "content": "Madrid and Brasilia?"}]))
    assert [(c["id"], json.loads(c["arguments"])["location"]) for c in got["tool_calls"]] == [
        ("get_weather_p0dage9q1nv4", "Madrid"), ("get_weather_kbrdnnkf8y7f", "Brasilia")]
    assert got["usage"].completion_tokens == 87


def test_stream_text_then_tool(client: openai.OpenAI) -> None:
    got = collect_stream(client.chat.completions.create(model="text_then_tool", tools=[TIME_TOOL], stream=True,
                                                  messages=[{"role": "user", "content": "Time in Tokyo?"}]))
    assert got["content"] == "Checking the time."
    assert [(c["name"], json.loads(c["arguments"])) for c in got["tool_calls"]] == [("get_time", {"timezone": "Asia/Tokyo"})]


def test_tool_results_round_trip(client: openai.OpenAI, mock: MockServer) -> None:
    first = client.chat.completions.create(model="parallel_tools", tools=[WEATHER_TOOL],
                                           messages=[{"role": "user", "content": "Madrid and Brasilia?"}])
    msg = first.choices[0].message
    history: list[Any] = [{"role": "user", "content": "Madrid and Brasilia?"}, msg.model_dump(exclude_none=True)]
    for call, result in zip(msg.tool_calls, ['{"temperature": "24C"}', '{"temperature": "31C"}'], strict=True):
        history.append({"role": "tool", "tool_call_id": call.id, "content": result})
    resp = client.chat.completions.create(model="text", tools=[WEATHER_TOOL], messages=history)
    assert resp.choices[0].message.content
    sent = _sent(mock)["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]
    assert [c["id"] for c in sent[1]["tool_calls"]] == ["get_weather_p0dage9q1nv4", "get_weather_kbrdnnkf8y7f"]
    assert [m["tool_call_id"] for m in sent[2:]] == ["get_weather_p0dage9q1nv4", "get_weather_kbrdnnkf8y7f"]


# --- vision -------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_images(client: openai.OpenAI, mock: MockServer, stream: bool) -> None:
    resp = client.chat.completions.create(model="vision" if not stream else "text", stream=stream, messages=[
        {"role": "user", "content": [
            {"type": "text", "text": "What is in these images?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/square.jpg"}},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}}]}])
    content = collect_stream(resp)["content"] if stream else resp.choices[0].message.content
    assert content
    parts = _sent(mock)["messages"][0]["content"]
    assert parts[1] == {"type": "image_url", "image_url": {"url": "https://example.com/square.jpg"}}
    assert parts[2] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}}


# --- JSON mode ----------------------------------------------------------------------------------


class CityInfo(BaseModel):
    city: str
    country: str
    population_millions: float
    landmarks: list[str]


def test_json_schema_parse(client: openai.OpenAI, mock: MockServer) -> None:
    completion = client.chat.completions.parse(model="json", response_format=CityInfo,
                                               messages=[{"role": "user", "content": "Describe Paris."}])
    assert completion.choices[0].message.parsed == CityInfo(city="Paris", country="France", population_millions=2.1,
                                                             landmarks=["Eiffel Tower", "Louvre"])
    rf = _sent(mock)["response_format"]
    assert rf["type"] == "json_object" and rf["json_schema"]["properties"]["city"] == {"title": "City", "type": "string"}


def test_json_object_stream(client: openai.OpenAI, mock: MockServer) -> None:
    got = collect_stream(client.chat.completions.create(model="json", stream=True, response_format={"type": "json_object"},
                                                  messages=[{"role": "user", "content": "Paris as JSON"}]))
    assert json.loads(got["content"])["city"] == "Paris"
    assert _sent(mock)["response_format"] == {"type": "json_object"}


# --- embeddings ---------------------------------------------------------------------------------


def test_embeddings_default_sdk_path_base64(client: openai.OpenAI, mock: MockServer) -> None:
    # The SDK asks for base64 unless told otherwise and decodes the strings itself; its strict
    # validation types `embedding` as a float list, so strict mode rejects any base64 answer (real
    # OpenAI's too). This path therefore runs non-strict; test_embeddings_float_* runs strict.
    lenient = client.with_options()
    lenient._strict_response_validation = False
    resp = lenient.embeddings.create(model="embed-v4.0", input=["hello", "goodbye", "again"])
    assert [d.index for d in resp.data] == [0, 1, 2]
    assert resp.data[0].embedding[:2] == pytest.approx([0.016296387, -0.008354187], rel=1e-6)
    assert resp.data[2].embedding == pytest.approx(resp.data[0].embedding)
    assert resp.usage.prompt_tokens == 3
    sent = _sent(mock, "/v2/embed")
    assert sent["texts"] == ["hello", "goodbye", "again"]
    assert sent["input_type"] == "search_document" and sent["embedding_types"] == ["float", "base64"]
    explicit = lenient.embeddings.create(model="embed-v4.0", input="hello", encoding_format="base64")
    raw = explicit.data[0].embedding
    assert isinstance(raw, str)  # explicitly asked: the SDK leaves the string alone
    decoded = struct.unpack(f"<{len(base64.b64decode(raw)) // 4}f", base64.b64decode(raw))
    assert decoded == pytest.approx(resp.data[0].embedding, rel=1e-6)


def test_embeddings_float_with_dimensions(client: openai.OpenAI, mock: MockServer) -> None:
    resp = client.embeddings.create(model="embed-v4.0", input="hello", encoding_format="float", dimensions=16,
                                    extra_body={"input_type": "search_query"})
    assert len(resp.data) == 1 and len(resp.data[0].embedding) == 16
    assert isinstance(resp.data[0].embedding[0], float)
    sent = _sent(mock, "/v2/embed")
    assert (sent["output_dimension"], sent["input_type"], sent["embedding_types"]) == (16, "search_query", ["float"])


def test_embeddings_token_arrays_are_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="embed-v4.0", input=[[1, 2, 3]])


def test_embeddings_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client.embeddings.create(model="error-rate_limit_429", input="x")
    assert info.value.response.headers["retry-after"] == "60"


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario, exc, status, code", [
    ("bad_request_400", openai.BadRequestError, 400, None),
    ("context_length_400", openai.BadRequestError, 400, "context_length_exceeded"),
    ("content_blocked_400", openai.BadRequestError, 400, "content_filter"),
    ("unauthorized_401", openai.InternalServerError, 502, "upstream_auth_error"),
    ("forbidden_403", openai.InternalServerError, 502, "upstream_auth_error"),
    ("not_found_404", openai.NotFoundError, 404, None),
    ("unprocessable_422", openai.UnprocessableEntityError, 422, None),
    ("rate_limit_429", openai.RateLimitError, 429, None),
    ("invalid_token_498", openai.InternalServerError, 502, "upstream_auth_error"),
    ("client_closed_499", openai.InternalServerError, 502, None),
    ("internal_500", openai.InternalServerError, 500, None),
    ("not_implemented_501", openai.BadRequestError, 400, None),
    ("unavailable_503", openai.InternalServerError, 503, None),
    ("gateway_timeout_504", openai.InternalServerError, 504, None),
])
@pytest.mark.parametrize("stream", [False, True])
def test_errors(client: openai.OpenAI, scenario: str, exc: type, status: int, code: str | None, stream: bool) -> None:
    with pytest.raises(exc) as info:
        client.chat.completions.create(model=f"error-{scenario}", stream=stream,
                                       messages=[{"role": "user", "content": "hi"}])
    err = info.value
    assert err.status_code == status and err.body["code"] == code
    assert "provider 'co'" in err.body["message"]


def test_wrong_provider_key_is_502_upstream_auth_error(gateway: Any, mock: MockServer) -> None:
    url = gateway(_config(mock, api_key="co-wrong-key"))
    client = strict_client(url)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="text", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502 and info.value.body["code"] == "upstream_auth_error"
    assert "co-wrong-key" not in info.value.body["message"]


def test_stream_cut_is_an_error_not_a_clean_end(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="cut", stream=True, messages=[{"role": "user", "content": "hi"}])
    content = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            for choice in chunk.choices:
                content += choice.delta.content or ""
                assert choice.finish_reason is None
    assert content == "The first half of an answer"
    assert info.value.body["code"] == "upstream_stream_cut"


def test_stream_generation_error_mid_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="generation_error", stream=True,
                                            messages=[{"role": "user", "content": "hi"}])
    content = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            for choice in chunk.choices:
                content += choice.delta.content or ""
    assert content == "The ans"
    assert info.value.body["code"] == "upstream_generation_error"

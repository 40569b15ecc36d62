"""Conformance: the official `openai` SDK (strict parsing) -> gateway (in-process) -> `bedrock` adapter
-> the local Bedrock runtime mock replaying tests/fixtures/providers/bedrock.

The model id names the fixture scenario (tests/support/mockservers/bedrock.py): `tool_use:0`,
or an ARN ending in `/parallel_tools`, so the path encoding of `:` and `/` is exercised on every
call. The mock verifies every SigV4 signature with botocore against the raw request and rejects
Converse bodies Bedrock would reject, so a bad translation or a bad signature fails here.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.support.mockservers import bedrock as mockbedrock
from tests.support.mockservers.common import MockServer, load_json
from tests.support.providers import PNG, collect_stream, gateway_config, provider_fixtures, strict_client

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"


AWS = {"region": mockbedrock.REGION, "access_key_id": mockbedrock.ACCESS_KEY, "secret_access_key": mockbedrock.SECRET_KEY}
# event-stream frames arrive cut into 23-byte writes
mock, url, client = provider_fixtures(lambda: mockbedrock.serve(piece=23), "aws", "bedrock", **AWS)


def _config(mock: MockServer, **provider: Any) -> dict[str, Any]:
    return gateway_config("aws", "bedrock", **{**AWS, "base_url": mock.base_url, **provider})




# --- chat and stream ------------------------------------------------------------------------------


def test_chat_signed_request(client: openai.OpenAI, mock: MockServer) -> None:
    resp = client.chat.completions.create(model="text:0", messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
        temperature=0.2, top_p=0.5, max_tokens=40, stop="END", user="u-42")
    assert resp.object == "chat.completion" and resp.id.startswith("chatcmpl-")
    assert resp.model == "text:0"
    assert resp.choices[0].message.content == "The capital of France is Paris."
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (14, 8, 22)
    req = mock.last("/converse")
    assert req.path == "/model/text:0/converse"
    assert req.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={mockbedrock.ACCESS_KEY}/")
    assert "x-amz-date" in req.headers
    assert req.json == {"messages": [{"role": "user", "content": [{"text": "Capital of France?"}]}],
                        "system": [{"text": "Be brief."}],
                        "inferenceConfig": {"maxTokens": 40, "temperature": 0.2, "topP": 0.5, "stopSequences": ["END"]},
                        "requestMetadata": {"user": "u-42"}}


def test_arn_model_id_and_multi_turn(client: openai.OpenAI, mock: MockServer) -> None:
    resp = client.chat.completions.create(model=ARN + "text", messages=[
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Capital?"}])
    assert resp.choices[0].message.content == "The capital of France is Paris."
    req = mock.last("/converse")
    assert req.path == f"/model/{ARN}text/converse"  # decoded by the server; the signature held
    assert [m["role"] for m in req.json["messages"]] == ["user", "assistant", "user"]


def test_wire_path_is_the_signed_path(client: openai.OpenAI, mock: MockServer) -> None:
    client.chat.completions.create(model="text:0", messages=[{"role": "user", "content": "x"}])
    assert mock.app[mockbedrock.RAW_PATHS][-1] == "/model/text%3A0/converse"


def test_stream(client: openai.OpenAI, mock: MockServer) -> None:
    got = collect_stream(client.chat.completions.create(model="text:0", stream=True,
                                                  messages=[{"role": "user", "content": "Capital?"}]))
    assert got["roles"] == ["assistant"]
    assert got["content"] == "The capital of France is Paris."
    assert got["finish"] == "stop" and got["usage"] is None and len(got["ids"]) == 1
    assert mock.last("/converse-stream").headers["accept"] == "application/vnd.amazon.eventstream"


def test_usage_details(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="cached_usage:0", messages=[{"role": "user", "content": "Section 4?"}])
    assert resp.usage.prompt_tokens == 3096 and resp.usage.prompt_tokens_details.cached_tokens == 2048
    got = collect_stream(client.chat.completions.create(model="cached_usage:0", stream=True,
                                                  stream_options={"include_usage": True},
                                                  messages=[{"role": "user", "content": "Section 4?"}]))
    assert got["content"] == "Section 4 covers termination."
    assert (got["usage"].prompt_tokens, got["usage"].completion_tokens) == (3096, 9)
    assert got["usage"].prompt_tokens_details.cached_tokens == 2048


# --- tools ----------------------------------------------------------------------------------------


def test_tools_round_trip(client: openai.OpenAI, mock: MockServer) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    resp = client.chat.completions.create(model="tool_use:0", messages=messages, tools=[WEATHER],
                                          tool_choice={"type": "function", "function": {"name": "get_weather"}})
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == \
        ("tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "get_weather", {"city": "Paris", "unit": "celsius"})
    assert mock.last("/converse").json["toolConfig"]["toolChoice"] == {"tool": {"name": "get_weather"}}
    messages += [choice.message, {"role": "tool", "tool_call_id": call.id, "content": "18C, cloudy"}]
    resp = client.chat.completions.create(model="text:0", messages=messages, tools=[WEATHER])
    sent = mock.last("/converse").json["messages"]
    assert sent[1]["content"][1] == {"toolUse": {"toolUseId": call.id, "name": "get_weather",
                                                 "input": {"city": "Paris", "unit": "celsius"}}}
    assert sent[2] == {"role": "user", "content": [{"toolResult": {"toolUseId": call.id,
                                                                   "content": [{"text": "18C, cloudy"}]}}]}


def test_parallel_tool_calls(client: openai.OpenAI, mock: MockServer) -> None:
    resp = client.chat.completions.create(model=ARN + "parallel_tools", tools=[WEATHER], tool_choice="required",
                                          messages=[{"role": "user", "content": "Paris and Tokyo?"}])
    calls = resp.choices[0].message.tool_calls
    assert [c.id for c in calls] == ["tooluse_Paris01", "tooluse_Tokyo02"]
    assert mock.last("/converse").json["toolConfig"]["toolChoice"] == {"any": {}}
    # both results answer in one user turn (Converse requires alternation)
    history = [{"role": "user", "content": "Paris and Tokyo?"}, resp.choices[0].message,
               {"role": "tool", "tool_call_id": "tooluse_Paris01", "content": "18C"},
               {"role": "tool", "tool_call_id": "tooluse_Tokyo02", "content": "25C"}]
    client.chat.completions.create(model="text:0", messages=history, tools=[WEATHER])
    sent = mock.last("/converse").json["messages"]
    assert len(sent) == 3 and [list(b) for b in sent[2]["content"]] == [["toolResult"], ["toolResult"]]


def test_stream_tools(client: openai.OpenAI) -> None:
    got = collect_stream(client.chat.completions.create(model="tool_use:0", stream=True, tools=[WEATHER],
                                                  messages=[{"role": "user", "content": "Paris?"}]))
    assert got["content"] == "I'll look up the weather."
    assert got["tool_calls"] == [{"id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "get_weather",
                                  "arguments": '{"city": "Paris", "unit": "celsius"}'}]
    assert got["finish"] == "tool_calls"
    got = collect_stream(client.chat.completions.create(model=ARN + "parallel_tools", stream=True, tools=[WEATHER],
                                                  messages=[{"role": "user", "content": "Paris and Tokyo?"}]))
    assert [json.loads(c["arguments"])["city"] for c in got["tool_calls"]] == ["Paris", "Tokyo"]


# --- vision and JSON ------------------------------------------------------------------------------


def test_images(client: openai.OpenAI, mock: MockServer) -> None:
    resp = client.chat.completions.create(model="vision:0", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}])
    assert resp.choices[0].message.content == "A single red pixel."
    assert mock.last("/converse").json["messages"][0]["content"][1] == \
        {"image": {"format": "png", "source": {"bytes": PNG}}}


def test_image_url_is_a_clear_400(client: openai.OpenAI, mock: MockServer) -> None:
    before = len(mock.requests)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="vision:0", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
    assert info.value.code == "unsupported_image_url"
    assert "base64 data URL" in info.value.message
    assert len(mock.requests) == before  # never sent, never fetched


def test_n_is_a_clear_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="text:0", n=2, messages=[{"role": "user", "content": "x"}])
    assert info.value.param == "n"


def test_json_mode(client: openai.OpenAI, mock: MockServer) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "born": {"type": "integer"}},
              "required": ["name", "born"], "additionalProperties": False}
    resp = client.chat.completions.create(model="json_schema:0", messages=[{"role": "user", "content": "Ada"}],
                                          response_format={"type": "json_schema",
                                                           "json_schema": {"name": "person", "schema": schema}})
    assert json.loads(resp.choices[0].message.content)["born"] == 1815
    fmt = mock.last("/converse").json["outputConfig"]["textFormat"]
    assert fmt["type"] == "json_schema" and json.loads(fmt["structure"]["jsonSchema"]["schema"]) == schema
    got = collect_stream(client.chat.completions.create(model="json_schema:0", stream=True,
                                                  response_format={"type": "json_object"},
                                                  messages=[{"role": "user", "content": "Ada"}]))
    assert json.loads(got["content"])["name"] == "Ada Lovelace"
    assert "JSON object" in mock.last("/converse-stream").json["system"][-1]["text"]


def test_guardrail_and_content_filter(client: openai.OpenAI) -> None:
    # a guardrail that blocked the prompt (its trace says so) is the client's refusal ...
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="guardrail:0", messages=[{"role": "user", "content": "..."}])
    assert info.value.code == "content_filter" and "VIOLENCE" in info.value.message
    # ... one that stopped the answer is finish_reason content_filter
    resp = client.chat.completions.create(model="guardrail_output:0",
                                          messages=[{"role": "user", "content": "..."}])
    assert resp.choices[0].finish_reason == "content_filter"
    # streamed, the trace comes after the text (in `metadata`): the finish reason is all there is
    got = collect_stream(client.chat.completions.create(model="guardrail:0", stream=True,
                                                  messages=[{"role": "user", "content": "..."}]))
    assert got["finish"] == "content_filter"


# --- embeddings -----------------------------------------------------------------------------------


def test_embeddings(client: openai.OpenAI, mock: MockServer) -> None:
    titan = load_json("bedrock", "embeddings", "titan.json")
    resp = client.embeddings.create(model="amazon.titan-embed-text-v2:0", input="hello world", encoding_format="float",
                                    dimensions=256)
    assert resp.data[0].embedding == titan["embedding"]
    assert resp.usage.prompt_tokens == 5
    req = mock.last("/invoke")
    assert req.path == "/model/amazon.titan-embed-text-v2:0/invoke"
    assert req.json == {"inputText": "hello world", "dimensions": 256}
    lenient = client.with_options()
    lenient._strict_response_validation = False  # the SDK's default base64 path (see test_google)
    resp = lenient.embeddings.create(model="cohere.embed-multilingual-v3", input=["a", "b", "c"])
    assert [d.index for d in resp.data] == [0, 1, 2]
    assert resp.data[2].embedding == pytest.approx(titan["embedding"], rel=1e-6)
    assert mock.last("/invoke").json == {"texts": ["a", "b", "c"], "input_type": "search_document"}


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, exc, status, code", [
    ("throttling_429", openai.RateLimitError, 429, "rate_limit_exceeded"),
    ("quota_400", openai.RateLimitError, 429, "quota_exceeded"),
    ("unavailable_503", openai.InternalServerError, 503, "upstream_overloaded"),
    ("model_not_ready_429", openai.InternalServerError, 503, "model_not_ready"),
    ("model_timeout_408", openai.InternalServerError, 504, "upstream_timeout"),
    ("model_error_424", openai.InternalServerError, 502, "model_error"),
    ("internal_500", openai.InternalServerError, 500, "internal_error"),
    ("not_found_404", openai.NotFoundError, 404, "model_not_found"),
    ("context_length_400", openai.BadRequestError, 400, "context_length_exceeded"),
    ("validation_400", openai.BadRequestError, 400, "ValidationException"),
    ("access_denied_403", openai.InternalServerError, 502, "upstream_auth_error"),
])
def test_errors(client: openai.OpenAI, name: str, exc: type[Exception], status: int, code: str) -> None:
    for stream in (False, True):
        with pytest.raises(exc) as info:
            client.chat.completions.create(model=f"error-{name}", messages=[{"role": "user", "content": "x"}], stream=stream)
        assert info.value.status_code == status
        assert info.value.code == code


def test_wrong_secret_is_refused_credentials(gateway: Any, mock: MockServer) -> None:
    client = strict_client(gateway(_config(mock, secret_access_key="not-the-secret")))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="text:0", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502 and info.value.code == "upstream_auth_error"
    assert mock.requests[-1].headers["authorization"].startswith("AWS4-HMAC-SHA256")


def test_bedrock_api_key_bearer(gateway: Any, mock: MockServer) -> None:
    config = _config(mock)
    provider = config["providers"]["aws"]
    del provider["access_key_id"], provider["secret_access_key"]
    provider["api_key"] = mockbedrock.API_KEY
    resp = strict_client(gateway(config)).chat.completions.create(model="text:0", messages=[{"role": "user", "content": "x"}])
    assert resp.choices[0].message.content == "The capital of France is Paris."
    assert mock.last("/converse").headers["authorization"] == f"Bearer {mockbedrock.API_KEY}"


def test_stream_failures_after_the_first_byte(client: openai.OpenAI) -> None:
    for model, code in (("cut:0", "upstream_stream_cut"), ("cut_midframe:0", "upstream_stream_cut"),
                        ("exception_throttling:0", "rate_limit_exceeded"), ("exception_model:0", "model_error")):
        stream = client.chat.completions.create(model=model, stream=True, messages=[{"role": "user", "content": "x"}])
        seen = ""
        with pytest.raises(openai.APIError) as err:
            for chunk in stream:
                for choice in chunk.choices:
                    seen += choice.delta.content or ""
        assert seen.startswith("The"), model
        assert err.value.code == code, model

"""Conformance: the official `openai` SDK (strict parsing) -> gateway (in-process) -> `google` adapter
-> the local Gemini mock replaying tests/fixtures/providers/google.

The request's `model` names the fixture scenario (tests/support/mockservers/google.py); the mock
checks the API key and rejects bodies Gemini would reject, so a bad translation fails here.
"""

from __future__ import annotations

import base64
from typing import Any

import openai
import pytest

from tests.support.mockservers.common import MockServer, load_json
from tests.support.mockservers.google import API_KEY, serve
from tests.support.providers import PNG, collect_stream, gateway_config, provider_fixtures, strict_client

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city"], "additionalProperties": False}}}
SIGNATURE = load_json("google", "chat", "tool_call.json")["candidates"][0]["content"]["parts"][0]["thoughtSignature"]


# streams arrive cut into 17-byte writes
mock, url, client = provider_fixtures(lambda: serve(piece=17), "gemini", "google", api_key=API_KEY)


def _config(mock: MockServer, **provider: Any) -> dict[str, Any]:
    return gateway_config("gemini", "google", **{"api_key": API_KEY, "base_url": mock.base_url, **provider})




# --- chat and stream ------------------------------------------------------------------------------


def test_chat(client: openai.OpenAI, mock: MockServer) -> None:
    resp = client.chat.completions.create(model="text", messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
        temperature=0.3, max_tokens=50, stop=["\n\n"], seed=11, user="u-42")
    assert resp.id == "chatcmpl-Xw5Pa9_2Kc6mz7IP8qfK4Ak"
    assert resp.model == "gemini-2.0-flash"
    assert resp.choices[0].message.content == "The capital of France is Paris."
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (9, 8, 17)
    req = mock.last(":generateContent")
    assert req.path == "/v1beta/models/text:generateContent"
    assert req.headers["x-goog-api-key"] == API_KEY and "key" not in req.query
    assert req.json["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert req.json["contents"] == [{"role": "user", "parts": [{"text": "Capital of France?"}]}]
    assert req.json["generationConfig"] == {"temperature": 0.3, "seed": 11, "maxOutputTokens": 50, "stopSequences": ["\n\n"]}


def test_multi_turn_and_n(client: openai.OpenAI, mock: MockServer) -> None:
    resp = client.chat.completions.create(model="n2", n=2, messages=[
        {"role": "user", "content": "Pick a color."}, {"role": "assistant", "content": "Green."},
        {"role": "user", "content": "Another, twice."}])
    assert [c.message.content for c in resp.choices] == ["Red.", "Blue."]
    sent = mock.last("/n2:generateContent").json
    assert [c["role"] for c in sent["contents"]] == ["user", "model", "user"]
    assert sent["generationConfig"]["candidateCount"] == 2


def test_stream(client: openai.OpenAI, mock: MockServer) -> None:
    got = collect_stream(client.chat.completions.create(model="text", messages=[{"role": "user", "content": "Capital?"}],
                                                  stream=True))
    assert got["roles"] == ["assistant"]
    assert got["content"] == "The capital of France is Paris."
    assert got["finish"] == "stop" and got["usage"] is None
    assert got["ids"] == {"chatcmpl-stream-rid-1"}
    req = mock.last(":streamGenerateContent")
    assert req.path == "/v1beta/models/text:streamGenerateContent" and req.query == {"alt": "sse"}


def test_usage_details(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="usage_details", messages=[{"role": "user", "content": "6*7?"}])
    assert resp.choices[0].message.content == "42."
    assert resp.usage.prompt_tokens_details.cached_tokens == 4096
    assert resp.usage.completion_tokens_details.reasoning_tokens == 187
    assert resp.usage.completion_tokens == 190 and resp.usage.total_tokens == 4310
    got = collect_stream(client.chat.completions.create(model="usage_details", messages=[{"role": "user", "content": "6*7?"}],
                                                  stream=True, stream_options={"include_usage": True}))
    assert got["content"] == "42."
    assert got["usage"].prompt_tokens_details.cached_tokens == 4096
    assert got["usage"].completion_tokens_details.reasoning_tokens == 187


# --- tools ----------------------------------------------------------------------------------------


def test_tools_and_round_trip_of_the_thought_signature(client: openai.OpenAI, mock: MockServer) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    resp = client.chat.completions.create(model="tool_call", messages=messages, tools=[WEATHER], tool_choice="required")
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and call.id.startswith("call_")
    assert call.model_extra["extra_content"]["google"]["thought_signature"] == SIGNATURE
    sent = mock.last("/tool_call:generateContent").json
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert sent["tools"][0]["functionDeclarations"][0]["parameters"]["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]
    # next turn: the SDK's own message object goes back as history, then the tool result
    messages += [choice.message, {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18}'}]
    client.chat.completions.create(model="text", messages=messages, tools=[WEATHER])
    contents = mock.last("/text:generateContent").json["contents"]
    assert contents[1]["role"] == "model"
    assert contents[1]["parts"][0]["functionCall"] == {"name": "get_weather", "args": {"city": "Paris", "unit": "celsius"}}
    assert contents[1]["parts"][0]["thoughtSignature"] == SIGNATURE
    assert contents[2] == {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                                                                           "response": {"temp_c": 18}}}]}


def test_parallel_tool_calls(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="parallel_tools", messages=[{"role": "user", "content": "Paris, Tokyo?"}],
                                          tools=[WEATHER])
    calls = resp.choices[0].message.tool_calls
    assert [c.function.arguments for c in calls] == ['{"city":"Paris"}', '{"city":"Tokyo"}']
    assert len({c.id for c in calls}) == 2
    assert resp.choices[0].message.content == "I'll check both cities."


def test_stream_tools(client: openai.OpenAI) -> None:
    got = collect_stream(client.chat.completions.create(model="parallel_tools", stream=True, tools=[WEATHER],
                                                  messages=[{"role": "user", "content": "Paris, Tokyo?"}]))
    assert got["finish"] == "tool_calls"
    assert [(c["name"], c["arguments"]) for c in got["tool_calls"]] == [
        ("get_weather", '{"city":"Paris"}'), ("get_weather", '{"city":"Tokyo"}')]
    assert all(c["id"] for c in got["tool_calls"])
    got = collect_stream(client.chat.completions.create(model="tool_call", stream=True, tools=[WEATHER],
                                                  messages=[{"role": "user", "content": "Paris?"}]))
    assert got["tool_calls"][0]["arguments"] == '{"city":"Paris","unit":"celsius"}'
    head = next(tc for tc in got["raw_calls"] if tc.id)
    assert head.model_extra["extra_content"]["google"]["thought_signature"] == SIGNATURE


# --- vision and JSON ------------------------------------------------------------------------------


def test_images(client: openai.OpenAI, mock: MockServer) -> None:
    resp = client.chat.completions.create(model="vision", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/photos/cat.webp"}}]}])
    assert resp.choices[0].message.content.startswith("The image shows")
    parts = mock.last("/vision:generateContent").json["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": PNG}}
    assert parts[2] == {"fileData": {"fileUri": "https://example.com/photos/cat.webp", "mimeType": "image/webp"}}


def test_json_mode(client: openai.OpenAI, mock: MockServer) -> None:
    import json

    resp = client.chat.completions.create(model="json_mode", response_format={"type": "json_object"},
                                          messages=[{"role": "user", "content": "Ada as JSON"}])
    assert json.loads(resp.choices[0].message.content)["born"] == 1815
    assert mock.last("/json_mode:generateContent").json["generationConfig"] == {"responseMimeType": "application/json"}
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "born": {"type": "integer"}},
              "required": ["name", "born"], "additionalProperties": False}
    got = collect_stream(client.chat.completions.create(model="json_mode", stream=True, messages=[{"role": "user", "content": "Ada"}],
                                                  response_format={"type": "json_schema",
                                                                   "json_schema": {"name": "p", "schema": schema, "strict": True}}))
    assert json.loads(got["content"])["name"] == "Ada Lovelace"
    gen = mock.last("/json_mode:streamGenerateContent").json["generationConfig"]
    assert gen["responseSchema"] == {"type": "OBJECT", "properties": {"name": {"type": "STRING"}, "born": {"type": "INTEGER"}},
                                     "required": ["name", "born"]}


# --- safety ---------------------------------------------------------------------------------------


def test_safety_blocks(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="safety", messages=[{"role": "user", "content": "..."}])
    assert resp.choices[0].finish_reason == "content_filter" and resp.choices[0].message.content is None
    got = collect_stream(client.chat.completions.create(model="safety", stream=True, messages=[{"role": "user", "content": "..."}]))
    assert got["content"] == "Here is how you" and got["finish"] == "content_filter"
    # a blocked prompt is the client's refusal: a 400 content_filter, streamed or not (before the first byte)
    for stream, reason in ((False, "blockReason SAFETY: HARM_CATEGORY_HATE_SPEECH"),
                           (True, "PROHIBITED_CONTENT")):
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="prompt_blocked", stream=stream,
                                           messages=[{"role": "user", "content": "..."}])
        assert info.value.code == "content_filter" and reason in info.value.message


# --- embeddings -----------------------------------------------------------------------------------


def test_embeddings(client: openai.OpenAI, mock: MockServer) -> None:
    single = load_json("google", "embeddings", "single.json")["embedding"]["values"]
    # The SDK asks for base64 unless told otherwise and decodes it itself; its strict validation types
    # `embedding` as a float list (it rejects real OpenAI's base64 answers too), so this call is lenient.
    lenient = client.with_options()
    lenient._strict_response_validation = False
    resp = lenient.embeddings.create(model="text-embedding-004", input="hello")
    assert resp.data[0].embedding == pytest.approx(single, rel=1e-6)
    assert mock.last(":embedContent").headers["x-goog-api-key"] == API_KEY
    assert mock.last(":embedContent").json == {"content": {"parts": [{"text": "hello"}]}}
    resp = client.embeddings.create(model="text-embedding-004", input=["a", "b", "c"], encoding_format="float",
                                    dimensions=8)
    assert [d.index for d in resp.data] == [0, 1, 2]
    assert resp.data[2].embedding == single  # the mock cycles its two vectors
    sent = mock.last(":batchEmbedContents").json
    assert [r["outputDimensionality"] for r in sent["requests"]] == [8, 8, 8]
    raw = client.embeddings.with_raw_response.create(model="text-embedding-004", input="x", encoding_format="base64")
    encoded = raw.http_response.json()["data"][0]["embedding"]
    assert isinstance(encoded, str) and len(base64.b64decode(encoded)) == 4 * len(single)


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, exc, status, code", [
    ("rate_limit_429", openai.RateLimitError, 429, "resource_exhausted"),
    ("overloaded_503", openai.InternalServerError, 503, "unavailable"),
    ("internal_500", openai.InternalServerError, 500, "internal"),
    ("deadline_504", openai.InternalServerError, 504, "deadline_exceeded"),
    ("not_found_404", openai.NotFoundError, 404, "not_found"),
    ("context_length_400", openai.BadRequestError, 400, "context_length_exceeded"),
    ("invalid_argument_400", openai.BadRequestError, 400, "invalid_argument"),
    ("invalid_api_key_400", openai.InternalServerError, 502, "upstream_auth_error"),
])
def test_errors(client: openai.OpenAI, name: str, exc: type[Exception], status: int, code: str) -> None:
    with pytest.raises(exc) as info:
        client.chat.completions.create(model=f"error-{name}", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == status
    assert info.value.code == code
    if status == 429:
        assert info.value.response.headers["retry-after"] == "37"
    with pytest.raises(exc) as info:  # the same before a stream's first byte
        client.chat.completions.create(model=f"error-{name}", messages=[{"role": "user", "content": "x"}], stream=True)
    assert info.value.status_code == status


def test_refused_key_is_502(gateway: Any, mock: MockServer) -> None:
    url = gateway(_config(mock, api_key="AIzaSy-wrong"))
    client = strict_client(url)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="text", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502 and info.value.code == "upstream_auth_error"
    assert "AIzaSy" not in str(info.value)


def test_malformed_function_call_and_stream_failures(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="malformed_function_call", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502 and info.value.code == "upstream_bad_response"
    for model, code in (("cut", "upstream_stream_cut"), ("error_midstream", "unavailable")):
        stream = client.chat.completions.create(model=model, stream=True, messages=[{"role": "user", "content": "x"}])
        seen = ""
        with pytest.raises(openai.APIError) as err:
            for chunk in stream:
                for choice in chunk.choices:
                    seen += choice.delta.content or ""
        assert seen == ("The capital of France" if model == "cut" else "The capital")
        assert err.value.code == code


def test_bad_request_never_reaches_google(client: openai.OpenAI, mock: MockServer) -> None:
    before = len(mock.requests)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="text", messages=[{"role": "tool", "tool_call_id": "nope", "content": "x"}])
    assert info.value.param == "messages[0].tool_call_id"
    assert len(mock.requests) == before

"""Conformance: `openai` SDK (strict) -> gateway (in-process) -> `ollama` adapter -> the Ollama mock
(native /api/chat NDJSON + /api/embed, tests/fixtures/providers/ollama) and, for `api: openai`, the
OpenAI-like mock in its `ollama-openai` flavour. The native mock refuses what Ollama's decoder refuses
(content-part lists, data-URL prefixes in `images`, string tool-call arguments)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.support.mockservers.ollama import OllamaMock
from tests.support.mockservers.openai_like import OpenAILikeMock, collect_sdk_stream
from tests.support.providers import drain, lenient_client, provider_fixtures, strict_client

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


mock, url, client = provider_fixtures(OllamaMock, "local", "ollama", keep_alive="5m")


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def test_chat(client: openai.OpenAI, mock: OllamaMock) -> None:
    resp = client.chat.completions.create(model="llama3.2", messages=ask("chat"), temperature=0.2, max_tokens=30, seed=1,
                                          stop="###")
    assert resp.choices[0].message.content == "The capital of France is Paris."
    assert resp.choices[0].finish_reason == "stop" and resp.model == "llama3.2"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (26, 8, 34)
    sent = mock.last("/api/chat").json
    assert sent["stream"] is False and sent["keep_alive"] == "5m"
    assert sent["options"] == {"temperature": 0.2, "num_predict": 30, "seed": 1, "stop": ["###"]}
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}


def test_stream_ndjson(client: openai.OpenAI) -> None:
    got = collect_sdk_stream(client.chat.completions.create(model="llama3.2", messages=ask("chat"), stream=True,
                                                            stream_options={"include_usage": True}))
    assert got["content"] == "The capital of France is Paris." and got["finish"] == "stop"
    assert got["usage"].total_tokens == 34 and len(got["ids"]) == 1
    assert collect_sdk_stream(client.chat.completions.create(model="llama3.2", messages=ask("chat"), stream=True))["usage"] is None


def test_vision_data_url_becomes_images(client: openai.OpenAI, mock: OllamaMock) -> None:
    client.chat.completions.create(model="llava", messages=[{"role": "user", "content": [
        {"type": "text", "text": "chat"}, {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}])
    msg = mock.last("/api/chat").json["messages"][0]
    assert msg == {"role": "user", "content": "chat", "images": [PNG]}
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="llava", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
    assert exc.value.body["code"] == "unsupported_image_url"


def test_tools_and_tool_history(client: openai.OpenAI, mock: OllamaMock) -> None:
    history = [{"role": "user", "content": "weather?"},
               {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
                                                                      "function": {"name": "get_weather", "arguments": "{\"location\": \"Paris\"}"}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": "21C"},
               {"role": "user", "content": "tools"}]
    resp = client.chat.completions.create(model="llama3.2", messages=history, tools=[WEATHER])
    call = resp.choices[0].message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris, France", "unit": "celsius"}
    assert resp.choices[0].finish_reason == "tool_calls"
    sent = mock.last("/api/chat").json["messages"]
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == {"location": "Paris"}
    assert sent[2] == {"role": "tool", "content": "21C", "tool_name": "get_weather"}
    resp = client.chat.completions.create(model="qwen3", messages=ask("parallel_tools"), tools=[WEATHER, TIME])
    assert [c.id for c in resp.choices[0].message.tool_calls] == ["call_w3l9x2", "call_t8q1v5"]


@pytest.mark.parametrize("scenario, names", [("tools", ["get_weather"]), ("parallel_tools", ["get_weather", "get_time"])])
def test_stream_tools(client: openai.OpenAI, scenario: str, names: list[str]) -> None:
    got = collect_sdk_stream(client.chat.completions.create(model="qwen3", messages=ask(scenario), tools=[WEATHER, TIME],
                                                            stream=True))
    assert [c["name"] for c in got["tool_calls"]] == names and got["finish"] == "tool_calls"


def test_json_mode_and_schema(client: openai.OpenAI, mock: OllamaMock) -> None:
    resp = client.chat.completions.create(model="llama3.2", messages=ask("json_mode"), response_format={"type": "json_object"})
    assert json.loads(resp.choices[0].message.content) == {"city": "Paris", "country": "France"}
    assert mock.last("/api/chat").json["format"] == "json"
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    got = collect_sdk_stream(client.chat.completions.create(
        model="llama3.2", messages=ask("json_mode"), stream=True,
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}}))
    assert json.loads(got["content"])["city"] == "Paris"
    assert mock.last("/api/chat").json["format"] == schema


def test_length(client: openai.OpenAI) -> None:
    assert client.chat.completions.create(model="llama3.2", messages=ask("length")).choices[0].finish_reason == "length"


def test_embeddings(client: openai.OpenAI, url: str, mock: OllamaMock) -> None:
    resp = client.embeddings.create(model="all-minilm", input=["a", "b"], encoding_format="float")
    assert [d.index for d in resp.data] == [0, 1] and resp.usage.prompt_tokens == 8
    assert mock.last("/api/embed").json == {"model": "all-minilm", "input": ["a", "b"], "keep_alive": "5m"}
    lenient = lenient_client(url)
    assert lenient.embeddings.create(model="all-minilm", input="a").data[1].embedding[1] == pytest.approx(0.06042469)


@pytest.mark.parametrize("scenario, exc_class, status, code", [
    ("error:not_found", openai.NotFoundError, 404, "model_not_found"),
    ("error:bad_request", openai.BadRequestError, 400, None),
    ("error:server", openai.InternalServerError, 500, None),
])
@pytest.mark.parametrize("stream", [False, True])
def test_errors(client: openai.OpenAI, scenario: str, exc_class: type, status: int, code: str | None, stream: bool) -> None:
    with pytest.raises(exc_class) as exc:
        client.chat.completions.create(model="llama3.2", messages=ask(scenario), stream=stream)
    assert exc.value.status_code == status and exc.value.body.get("code") == code


def test_error_line_and_cut(client: openai.OpenAI) -> None:
    for scenario, text in (("stream_error", "unexpected EOF"), ("stream_cut", "before it was complete")):
        with pytest.raises(openai.APIError) as exc:
            drain(client.chat.completions.create(model="llama3.2", messages=ask(scenario), stream=True))
        assert text in exc.value.message


# --- api: openai -------------------------------------------------------------------------------------

def test_openai_api_mode(gateway: Any) -> None:
    with OpenAILikeMock("ollama-openai", api_key=None) as mock:
        root = mock.base_url[: -len("/v1")]
        url = gateway({"providers": {"local": {"type": "ollama", "api": "openai", "base_url": root}},
                       "default_provider": "local"})
        client = strict_client(url)
        assert client.chat.completions.create(model="llama3.2", messages=ask("chat")).choices[0].message.content \
            == "The capital of France is Paris."
        got = collect_sdk_stream(client.chat.completions.create(model="llama3.2", messages=ask("tools"), tools=[WEATHER],
                                                                stream=True, stream_options={"include_usage": True}))
        assert got["tool_calls"][0]["name"] == "get_weather" and got["usage"].total_tokens == 155
        assert mock.last().path == "/v1/chat/completions"
        assert client.embeddings.create(model="all-minilm", input="x", encoding_format="float").usage.prompt_tokens == 8

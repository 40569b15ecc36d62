"""Conformance: `openai` SDK (strict) -> gateway (in-process) -> `vllm` adapter -> the vLLM mock replaying
tests/fixtures/providers/vllm. vLLM extras sent with `extra_body` must reach the server unchanged."""

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

MODEL = "Qwen/Qwen2.5-7B-Instruct"
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


mock, url, client = provider_fixtures(lambda: OpenAILikeMock("vllm", api_key=None), "local", "vllm", model=MODEL)


def test_chat_extras_pass_through(client: openai.OpenAI, mock: OpenAILikeMock) -> None:
    extras = {"guided_json": {"type": "object", "properties": {"city": {"type": "string"}}}, "top_k": 20,
              "repetition_penalty": 1.05, "chat_template_kwargs": {"enable_thinking": False}}
    resp = client.chat.completions.create(model=MODEL, messages=ask("chat"), extra_body=extras)
    assert resp.choices[0].message.content == "The capital of France is Paris."
    assert resp.usage.prompt_tokens_details.cached_tokens == 16
    sent = mock.last().json
    assert {k: sent[k] for k in extras} == extras
    assert "authorization" not in mock.last().headers


def test_stream(client: openai.OpenAI) -> None:
    got = collect_sdk_stream(client.chat.completions.create(model=MODEL, messages=ask("chat"), stream=True,
                                                            stream_options={"include_usage": True}))
    assert got["content"] == "The capital of France is Paris." and got["usage"].total_tokens == 32
    assert collect_sdk_stream(client.chat.completions.create(model=MODEL, messages=ask("chat"), stream=True))["usage"] is None


def test_tools(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model=MODEL, messages=ask("tools"), tools=[WEATHER])
    assert resp.choices[0].message.tool_calls[0].id == "chatcmpl-tool-4a1f0c2e9b8d4e7f"
    resp = client.chat.completions.create(model=MODEL, messages=ask("parallel_tools"), tools=[WEATHER, TIME])
    assert [c.function.name for c in resp.choices[0].message.tool_calls] == ["get_weather", "get_time"]


@pytest.mark.parametrize("scenario, names", [("tools", ["get_weather"]), ("parallel_tools", ["get_weather", "get_time"])])
def test_stream_tools(client: openai.OpenAI, scenario: str, names: list[str]) -> None:
    got = collect_sdk_stream(client.chat.completions.create(model=MODEL, messages=ask(scenario), tools=[WEATHER, TIME],
                                                            stream=True))
    assert [c["name"] for c in got["tool_calls"]] == names and got["finish"] == "tool_calls"
    assert json.loads(got["tool_calls"][-1]["arguments"])


def test_json_mode(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model=MODEL, messages=ask("json_mode"), response_format={"type": "json_object"})
    assert json.loads(resp.choices[0].message.content)["city"] == "Paris"
    got = collect_sdk_stream(client.chat.completions.create(model=MODEL, messages=ask("json_mode"), stream=True,
                                                            response_format={"type": "json_object"}))
    assert json.loads(got["content"])["country"] == "France"


def test_embeddings(client: openai.OpenAI, url: str, mock: OpenAILikeMock) -> None:
    resp = client.embeddings.create(model="BAAI/bge-m3", input=["a", "b"], encoding_format="float")
    assert resp.usage.prompt_tokens == 9 and resp.data[1].embedding[0] == pytest.approx(-0.0321)
    lenient = lenient_client(url)
    resp = lenient.embeddings.create(model="BAAI/bge-m3", input=["a", "b"])
    assert mock.last("/embeddings").json["encoding_format"] == "base64"  # vLLM encodes, the SDK decodes
    assert resp.data[0].embedding[0] == pytest.approx(0.0123)


def test_abort_is_an_error_not_a_finish(client: openai.OpenAI) -> None:
    err, content = stream_error(client.chat.completions.create(model=MODEL, messages=ask("abort"), stream=True))
    assert content == "The" and (err.code, err.type) == ("upstream_generation_error", "upstream_error")
    assert "finish_reason 'abort'" in err.message


@pytest.mark.parametrize("scenario, exc_class, status", [
    ("error:context_length", openai.BadRequestError, 400),
    ("error:not_found", openai.NotFoundError, 404),
    ("error:bad_request_legacy", openai.BadRequestError, 400),
    ("error:server", openai.InternalServerError, 500),
    ("error:unavailable", openai.InternalServerError, 503),
])
@pytest.mark.parametrize("stream", [False, True])
def test_errors(client: openai.OpenAI, scenario: str, exc_class: type, status: int, stream: bool) -> None:
    with pytest.raises(exc_class) as exc:
        client.chat.completions.create(model=MODEL, messages=ask(scenario), stream=stream)
    assert exc.value.status_code == status


def test_stream_cut(client: openai.OpenAI) -> None:
    err, content = stream_error(client.chat.completions.create(model=MODEL, messages=ask("stream_cut"), stream=True))
    assert content and (err.code, err.type) == ("upstream_stream_cut", "upstream_error")


def test_vision_parts_reach_the_provider_unchanged(client: openai.OpenAI, mock: OpenAILikeMock) -> None:
    assert_vision_parts_unchanged(client, mock, MODEL)

"""Conformance: `openai` SDK (strict) -> gateway (in-process) -> `ray-serve` provider -> the stub model
(tests/support/ray_serve_llm_stub.py) behind a fake DeploymentHandle (no Ray here:
`serve.get_deployment_handle` is patched to return it). Both protocols: the simple one (dict / SSE
strings) and Ray Serve LLM's LLMServer one (generator of pydantic objects / batched SSE lists /
ErrorResponse). The same stub runs on a real cluster in tests/integration/test_ray_serve_provider.py.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.support.ray_serve_llm_stub import EchoLLM, FakeHandle

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}


@pytest.fixture
def handles(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str], FakeHandle]:
    from ray import serve

    made: dict[tuple[str, str], FakeHandle] = {}

    def get_deployment_handle(deployment_name: str, app_name: str) -> FakeHandle:
        made[(app_name, deployment_name)] = FakeHandle(EchoLLM(model_id="echo-1"))
        return made[(app_name, deployment_name)]

    monkeypatch.setattr(serve, "get_deployment_handle", get_deployment_handle)
    return made


@pytest.fixture(params=["simple", "llmserver"])
def client(request: pytest.FixtureRequest, gateway: Any, handles: Any) -> openai.OpenAI:
    provider: dict[str, Any] = {"type": "ray-serve", "app_name": "llm", "deployment_name": "EchoLLM", "model": "echo-1"}
    if request.param == "llmserver":
        provider.update(method="llm_chat", embeddings_method="llm_embeddings")
    url = gateway({"providers": {"incluster": provider}, "default_provider": "incluster"})
    return openai.OpenAI(base_url=url, api_key="x", _strict_response_validation=True, max_retries=0)


def collect(stream: Any) -> dict[str, Any]:
    from tests.support.mockservers.openai_like import collect_sdk_stream

    return collect_sdk_stream(stream)


def test_chat(client: openai.OpenAI, handles: Any) -> None:
    resp = client.chat.completions.create(model="echo-1", messages=[{"role": "user", "content": "hello there"}])
    assert resp.choices[0].message.content == "Echo: hello there"
    assert resp.usage.total_tokens == 5
    assert list(handles) == [("llm", "EchoLLM")]  # the handle was made lazily, on the first call


def test_stream_with_usage(client: openai.OpenAI) -> None:
    got = collect(client.chat.completions.create(model="echo-1", messages=[{"role": "user", "content": "a b c d e f"}],
                                                 stream=True, stream_options={"include_usage": True}))
    assert got["content"] == "Echo: a b c d e f" and got["finish"] == "stop"
    assert got["usage"].completion_tokens == 7
    assert collect(client.chat.completions.create(model="echo-1", messages=[{"role": "user", "content": "x"}],
                                                  stream=True))["usage"] is None


def test_tools_and_stream_tools(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="echo-1", messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER])
    assert resp.choices[0].finish_reason == "tool_calls"
    assert json.loads(resp.choices[0].message.tool_calls[0].function.arguments) == {"location": "Paris"}
    got = collect(client.chat.completions.create(model="echo-1", messages=[{"role": "user", "content": "weather?"}],
                                                 tools=[WEATHER], stream=True))
    assert got["tool_calls"][0]["name"] == "get_weather" and json.loads(got["tool_calls"][0]["arguments"]) == {"location": "Paris"}


def test_json_mode(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="echo-1", messages=[{"role": "user", "content": "q"}],
                                          response_format={"type": "json_object"})
    assert json.loads(resp.choices[0].message.content) == {"echo": "q"}


def test_embeddings(client: openai.OpenAI) -> None:
    resp = client.embeddings.create(model="echo-embed", input=["a", "b"], encoding_format="float")
    assert len(resp.data) == 2 and len(resp.data[0].embedding) == 8


@pytest.mark.parametrize("status, exc_class", [(400, openai.BadRequestError), (404, openai.NotFoundError),
                                               (429, openai.RateLimitError), (500, openai.InternalServerError)])
@pytest.mark.parametrize("stream", [False, True])
def test_errors(client: openai.OpenAI, status: int, exc_class: type, stream: bool) -> None:
    with pytest.raises(exc_class) as exc:
        client.chat.completions.create(model="echo-1", messages=[{"role": "user", "content": f"error:{status}"}], stream=stream)
    assert exc.value.status_code == status and "stub error" in exc.value.message


def test_replica_failure_mid_stream(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIError) as exc:
        for _ in client.chat.completions.create(model="echo-1", messages=[{"role": "user", "content": "cut"}], stream=True):
            pass
    assert "before it was complete" in exc.value.message

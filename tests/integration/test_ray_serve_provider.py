"""`ray-serve` provider end to end on a real Ray cluster: the gateway (build_app graph) calls the stub
model deployment (tests/support/ray_serve_llm_stub.py) through a DeploymentHandle, no HTTP hop,
driven by the official openai SDK with strict parsing. Both protocols: the simple one (`chat`: dict /
SSE strings) and Ray Serve LLM's LLMServer one (`llm_chat`: a generator of pydantic objects, batched
SSE lists, ErrorResponse), with the `auto` switch to streaming calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.mockservers.openai_like import collect_sdk_stream

pytestmark = pytest.mark.ray

STUB_APP = "stubllm"
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}


@pytest.fixture(scope="module")
def stub_app(ray_cluster: Any) -> Iterator[str]:
    from ray import serve

    from tests.support.ray_serve_llm_stub import build_app

    serve.run(build_app(model_id="echo-1"), name=STUB_APP, route_prefix=None)  # handle-only: no HTTP route
    yield STUB_APP
    serve.delete(STUB_APP)


@pytest.fixture(scope="module")
def app(deploy_gateway: Any, stub_app: str) -> Any:
    target = {"type": "ray-serve", "app_name": stub_app, "deployment_name": "EchoLLM", "model": "echo-1"}
    return deploy_gateway({
        "providers": {
            "incluster": target,
            "llmserver": {**target, "method": "llm_chat", "embeddings_method": "llm_embeddings"},
            "missing": {**target, "app_name": "no-such-app", "timeout": 10},
        },
        "default_provider": "incluster",
    }, name="rsgw")


@pytest.fixture
def client(app: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=app.base_url, api_key="x", max_retries=0, _strict_response_validation=True)


@pytest.mark.parametrize("provider", ["incluster", "llmserver"])
def test_chat_and_stream_through_the_handle(client: openai.OpenAI, provider: str) -> None:
    model = f"{provider}/echo-1"
    resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello ray"}])
    assert resp.choices[0].message.content == "Echo: hello ray"
    assert resp.usage.total_tokens == 5
    got = collect_sdk_stream(client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "one two three four"}], stream=True,
        stream_options={"include_usage": True}))
    assert got["content"] == "Echo: one two three four" and got["finish"] == "stop"
    assert got["usage"].completion_tokens == 5


@pytest.mark.parametrize("provider", ["incluster", "llmserver"])
def test_tools_stream_and_embeddings(client: openai.OpenAI, provider: str) -> None:
    got = collect_sdk_stream(client.chat.completions.create(
        model=f"{provider}/echo-1", messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER], stream=True))
    assert got["tool_calls"][0]["name"] == "get_weather"
    assert json.loads(got["tool_calls"][0]["arguments"]) == {"location": "Paris"}
    assert got["finish"] == "tool_calls"
    emb = client.embeddings.create(model=f"{provider}/echo-embed", input=["a", "b"], encoding_format="float")
    assert len(emb.data) == 2


@pytest.mark.parametrize("provider", ["incluster", "llmserver"])
@pytest.mark.parametrize("stream", [False, True])
def test_deployment_errors_keep_their_status(client: openai.OpenAI, provider: str, stream: bool) -> None:
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(model=f"{provider}/echo-1", messages=[{"role": "user", "content": "error:429"}],
                                       stream=stream)
    assert "stub error 429" in exc.value.message


def test_replica_failure_mid_stream_is_an_error_event(client: openai.OpenAI) -> None:
    seen = []
    with pytest.raises(openai.APIError) as exc:
        for chunk in client.chat.completions.create(model="echo-1", messages=[{"role": "user", "content": "cut"}],
                                                    stream=True):
            seen.append(chunk)
    assert seen and "before it was complete" in exc.value.message


def test_unknown_application_is_a_502(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as exc:
        client.chat.completions.create(model="missing/echo-1", messages=[{"role": "user", "content": "x"}])
    assert exc.value.status_code == 502

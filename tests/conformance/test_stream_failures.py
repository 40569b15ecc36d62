"""Conformance: every provider type's stream failures, through the gateway, read by the strict `openai` SDK.

Each case replays a provider transcript (tests/fixtures/providers/<type>/: each names the section of
the provider's API reference it follows) in which something other than a well-formed content event
arrives after the stream started: an error object in a shape the provider documents (`event: error`,
`data: {"error": ...}`, a bare JSON error line, an event-stream exception frame, a `finish_reason`
that means failure), garbage, a dropped connection, or the end of the body without the provider's
end marker. Two things must hold for every one:

- the SDK raises `openai.APIError` with the error's OpenAI `code` and `type` (the provider's status
  mapped as for a non-streamed error), after the content that came before it;
- on the wire, the stream ends with exactly one error event and no `data: [DONE]`.

One gateway serves every provider (`<provider>/<model>` routing); the mocks are the suites' own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.support.gateway_server import GatewayServer
from tests.support.mockservers import bedrock as mockbedrock
from tests.support.mockservers.anthropic import create_app as anthropic_app
from tests.support.mockservers.cohere import create_app as cohere_app
from tests.support.mockservers.common import MockServer
from tests.support.mockservers.faulty_upstream import FaultyUpstream
from tests.support.mockservers.google import API_KEY as GOOGLE_KEY
from tests.support.mockservers.google import serve as google_serve
from tests.support.mockservers.ollama import OllamaMock
from tests.support.mockservers.openai_like import OpenAILikeMock
from tests.support.providers import strict_client
from tests.support.ray_serve_llm_stub import EchoLLM, FakeHandle

KEY = "test-key"
AWS = {"region": mockbedrock.REGION, "access_key_id": mockbedrock.ACCESS_KEY,
       "secret_access_key": mockbedrock.SECRET_KEY}
OPENAI_LIKE = ("openai", "azure-openai", "groq", "mistral", "together", "vllm")
RAY_SERVE = {"type": "ray-serve", "app_name": "llm", "deployment_name": "EchoLLM", "model": "echo-1"}


@pytest.fixture(scope="module")
def mocks() -> Iterator[dict[str, Any]]:
    servers: dict[str, Any] = {
        "google": google_serve(piece=17),
        "anthropic": MockServer(anthropic_app("sk-ant-mock", piece=29)),
        "cohere": MockServer(cohere_app(KEY, piece=31)),
        "bedrock": mockbedrock.serve(piece=23),
        "ollama": OllamaMock(),
        "ollama-openai": OpenAILikeMock("ollama-openai", api_key=None),
        "faulty": FaultyUpstream(),
        **{name: OpenAILikeMock(name, api_key=None if name == "vllm" else KEY) for name in OPENAI_LIKE},
    }
    for server in servers.values():
        server.start()
    servers["faulty"].script("reset", default="cut:2")  # two events, then the connection is dropped
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def gateway_url(mocks: dict[str, Any]) -> Iterator[str]:
    from ray import serve

    providers: dict[str, dict[str, Any]] = {
        "google": {"type": "google", "api_key": GOOGLE_KEY, "base_url": mocks["google"].base_url},
        "anthropic": {"type": "anthropic", "api_key": "sk-ant-mock",
                      "base_url": mocks["anthropic"].base_url},
        "cohere": {"type": "cohere", "api_key": KEY, "base_url": mocks["cohere"].base_url},
        "bedrock": {"type": "bedrock", **AWS, "base_url": mocks["bedrock"].base_url},
        "ollama": {"type": "ollama", "base_url": mocks["ollama"].base_url},
        "ollama-openai": {"type": "ollama", "api": "openai",
                          "base_url": mocks["ollama-openai"].server.base_url},
        "faulty": {"type": "openai", "api_key": KEY, "base_url": mocks["faulty"].url("reset")},
        "ray-serve": RAY_SERVE,
        "ray-serve-llm": {**RAY_SERVE, "method": "llm_chat"},
        "mock": {"type": "mock"},
        **{name: {"type": name, "base_url": mocks[name].base_url, "model": "m",
                  **({} if name == "vllm" else {"api_key": KEY}),
                  **({"deployment_id": "gpt4o-prod"} if name == "azure-openai" else {})}
           for name in OPENAI_LIKE},
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(serve, "get_deployment_handle", lambda deployment_name, app_name: FakeHandle(EchoLLM()))
        server = GatewayServer({"providers": providers}).start()
        yield server.base_url
        server.stop()


def case(name: str, provider: str, model: str, text: str, code: str | None, etype: str,
         before: str | None) -> Any:
    """One stream failure: the request (provider, model, last user message), the error's OpenAI
    `code` and `type`, and the content the SDK reads before it (None: not checked)."""
    return pytest.param(provider, model, text, code, etype, before, id=name)


CUT, UPSTREAM = "upstream_stream_cut", "upstream_error"
UNAVAILABLE, RATE = "service_unavailable_error", "rate_limit_error"
CAPITAL = "The capital"
CASES = [
    # Gemini: a data-event error, the bare JSON object after data events (the reported defect: two
    # data events, the second finishing, then the bare error), a client-side status mid-stream, an
    # error after the last finishReason, EOF before a finishReason
    case("google-data-error-503", "google", "error_midstream", "x", "unavailable", UNAVAILABLE, CAPITAL),
    case("google-bare-json-499", "google", "cancelled_bare", "x", "cancelled", UPSTREAM,
         "The capital of France is"),
    case("google-data-error-429", "google", "rate_limit_midstream", "x", "resource_exhausted", RATE, CAPITAL),
    case("google-error-after-finish", "google", "error_after_finish", "x", "internal", "api_error",
         "The capital of France is Paris."),
    case("google-cut", "google", "cut", "x", CUT, UPSTREAM, "The capital of France"),
    # Anthropic: `event: error` (overloaded_error 529 -> 503, api_error 500), EOF before message_stop
    case("anthropic-event-error-overloaded", "anthropic", "error_overloaded", "x", "upstream_overloaded",
         UNAVAILABLE, "Partial"),
    case("anthropic-event-error-api", "anthropic", "error_api", "x", None, "api_error", "Half an"),
    case("anthropic-cut", "anthropic", "cut", "x", CUT, UPSTREAM, "The first half of an answer"),
    # Cohere: message-end with finish_reason ERROR, EOF before message-end
    case("cohere-finish-error", "cohere", "generation_error", "x", "upstream_generation_error", UPSTREAM,
         "The ans"),
    case("cohere-cut", "cohere", "cut", "x", CUT, UPSTREAM, "The first half of an answer"),
    # Bedrock ConverseStream: every exception member of the stream union, a cut frame, no messageStop
    case("bedrock-throttling", "bedrock", "exception_throttling", "x", "rate_limit_exceeded", RATE, CAPITAL),
    case("bedrock-model-stream-error", "bedrock", "exception_model", "x", "model_error", UPSTREAM, "The"),
    case("bedrock-internal", "bedrock", "exception_internal", "x", "internal_error", "api_error", CAPITAL),
    case("bedrock-unavailable", "bedrock", "exception_unavailable", "x", "upstream_overloaded", UNAVAILABLE,
         CAPITAL),
    case("bedrock-validation", "bedrock", "exception_validation", "x", "context_length_exceeded",
         "invalid_request_error", CAPITAL),
    case("bedrock-cut-midframe", "bedrock", "cut_midframe", "x", CUT, UPSTREAM, None),
    case("bedrock-no-message-stop", "bedrock", "cut", "x", CUT, UPSTREAM, None),
    # OpenAI and the OpenAI-like types: data-event errors, `event: error` (OpenAI's own `type`
    # values, e.g. "tokens", are relayed), failure finish reasons, EOF without [DONE], a dropped
    # connection; numeric provider codes are dropped as for non-streamed errors
    case("openai-data-error", "openai", "m", "stream_error", None, "server_error", CAPITAL),
    case("openai-event-error", "openai", "m", "event_error", "rate_limit_exceeded", "tokens", CAPITAL),
    case("openai-cut", "openai", "m", "stream_cut", CUT, UPSTREAM, CAPITAL),
    case("openai-connection-reset", "faulty", "m", "x", CUT, UPSTREAM, None),
    case("azure-data-error-429", "azure-openai", "m", "stream_error", None, RATE, "The"),
    case("azure-cut", "azure-openai", "m", "stream_cut", CUT, UPSTREAM, None),
    case("groq-data-error", "groq", "m", "stream_error", "tool_use_failed", "invalid_request_error", "The"),
    case("mistral-finish-error", "mistral", "m", "generation_error", "upstream_generation_error", UPSTREAM,
         CAPITAL),
    case("together-data-error", "together", "m", "stream_error", None, "server_error", "The"),
    case("vllm-data-error", "vllm", "m", "stream_error", None, "api_error", "The"),
    case("vllm-finish-abort", "vllm", "m", "abort", "upstream_generation_error", UPSTREAM, "The"),
    case("ollama-error-line", "ollama", "llama3.2", "stream_error", None, "api_error", CAPITAL),
    case("ollama-cut", "ollama", "llama3.2", "stream_cut", CUT, UPSTREAM, None),
    case("ollama-openai-data-error", "ollama-openai", "llama3.2", "stream_error", None, "api_error", "The"),
    # Ray Serve: an engine error mid-stream (both protocols), a replica lost mid-stream
    case("ray-serve-error-event", "ray-serve", "echo-1", "error_midstream", None, "api_error",
         "Echo: error_midstream"),
    case("ray-serve-llm-error-response", "ray-serve-llm", "echo-1", "error_midstream", None, "api_error",
         "Echo: error_midstream"),
    case("ray-serve-replica-lost", "ray-serve", "echo-1", "cut", CUT, UPSTREAM, None),
    # the mock provider's injected cut
    case("mock-cut", "mock", "mock", "hello there my friend", CUT, UPSTREAM, "Mock reply to:"),
]


def _request(provider: str, model: str, text: str) -> tuple[dict[str, Any], dict[str, str]]:
    body = {"model": f"{provider}/{model}", "messages": [{"role": "user", "content": text}]}
    headers = {"x-raygate-mock-fail": "cut"} if provider == "mock" else {}
    return body, headers


def _raw_events(url: str, body: dict[str, Any], headers: dict[str, str]) -> list[bytes]:
    resp = httpx.post(url + "/chat/completions", json={**body, "stream": True}, timeout=30,
                      headers={"authorization": "Bearer x", **headers})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    # SSE comments (the fixtures' source lines, relayed as sent by the `openai` fast path) are no events
    events = [e for e in resp.content.split(b"\n\n") if e and not e.startswith(b":")]
    assert all(e.startswith(b"data: ") for e in events), events
    return [e[6:] for e in events]


@pytest.mark.parametrize("provider, model, text, code, etype, before", CASES)
def test_stream_failure_is_one_error_event(gateway_url: str, provider: str, model: str, text: str,
                                          code: str | None, etype: str, before: str | None) -> None:
    body, headers = _request(provider, model, text)
    client = strict_client(gateway_url).with_options(default_headers=headers)
    seen = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(stream=True, **body):
            for choice in chunk.choices:
                seen += choice.delta.content or ""
    assert type(info.value) is openai.APIError  # raised from the stream, not an HTTP status error
    assert (info.value.code, info.value.type) == (code, etype)
    if before is not None:
        assert seen == before
    events = _raw_events(gateway_url, body, headers)
    assert b"[DONE]" not in events
    errors = [e for e in events if b'"error"' in e and "error" in orjson.loads(e)]
    assert errors == [events[-1]], "exactly one error event, and it is the last"

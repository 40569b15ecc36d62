"""Conformance for the OpenAI-compatible presets (deployments/providers/presets.py), one table row each:
`openai` SDK (strict) -> gateway (in-process) -> the preset's adapter -> a mock of that API replaying
tests/fixtures/providers/<type>/ (each folder's README names the API-reference section of each file).

Per preset: the request golden (requests/*.json) sent through the SDK arrives upstream exactly as the
golden says, with its headers (auth, attribution) and without the fields the preset drops; the mock
refuses what the real API refuses, so a field forwarded by mistake fails the test. Then the response
(chat.json), the stream (chat_stream.sse, usage chunk only when asked) and each error fixture, with
the client's error class, status and code; and the fields the preset refuses are a 400 naming them
that never reaches the upstream.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from tests.support.mockservers.common import FIXTURES
from tests.support.mockservers.openai_like import Flavour, OpenAILikeMock, collect_sdk_stream
from tests.support.providers import ask, gateway_config, strict_client

ANSWER = "The capital of France is Paris."
Error = tuple[str, type[openai.APIStatusError], int, str | None]


@dataclass(frozen=True)
class Case:
    type: str
    prefix: str  # where the API lives on its host (the mock serves it there)
    usage: tuple[int, int, int]  # prompt, completion, total of chat.json and the stream
    errors: tuple[Error, ...]  # errors/<name>.json -> what the client gets
    refuses: frozenset[str] = frozenset()  # fields the real API answers with a 4xx (the mock too)
    rejected: tuple[tuple[str, Any, str | None], ...] = ()  # (param, value, model): the gateway's own 400
    cached: int | None = None  # prompt_tokens_details.cached_tokens of chat.json
    extras: tuple[str, ...] = ()  # vendor keys of chat.json that reach the client

    @property
    def golden(self) -> dict[str, Any]:
        (path,) = sorted((FIXTURES / self.type / "requests").glob("*.json"))
        return orjson.loads(path.read_bytes())


AUTH_502: Error = ("", openai.InternalServerError, 502, "upstream_auth_error")
CASES = [
    Case("deepseek", "", (16, 41, 57), cached=8, errors=(
        ("insufficient_balance", openai.InternalServerError, 502, "upstream_insufficient_balance"),
        ("invalid_parameters", openai.UnprocessableEntityError, 422, "invalid_request_error"),
    ), rejected=(("logprobs", True, "deepseek-reasoner"), ("top_logprobs", 2, "deepseek-reasoner"))),
    Case("xai", "/v1", (22, 8, 270), cached=6, errors=(
        ("not_found", openai.NotFoundError, 404, None),
        ("invalid_argument", openai.BadRequestError, 400, None),
    ), rejected=(("stop", ["END"], "grok-3-mini"), ("reasoning_effort", "high", "grok-4-0709"),
                 ("presence_penalty", 0.5, "grok-4-0709"))),
    Case("perplexity", "", (9, 8, 17), extras=("citations", "search_results"), refuses=frozenset({"stream_options"}),
         errors=(("invalid_model", openai.BadRequestError, 400, None), ("auth", *AUTH_502[1:]))),
    Case("fireworks", "/inference/v1", (25, 8, 33), refuses=frozenset({"stream_options"}), errors=(
        ("context_length", openai.BadRequestError, 400, "context_length_exceeded"),)),
    Case("openrouter", "/api/v1", (20, 8, 28), cached=0, errors=(
        ("insufficient_credits", openai.InternalServerError, 502, "upstream_insufficient_credits"),
        ("moderation", openai.BadRequestError, 400, "content_filter"),
        ("no_provider", openai.InternalServerError, 503, None),
    )),
    Case("cerebras", "/v1", (20, 8, 28), extras=("time_info",),
         refuses=frozenset({"frequency_penalty", "presence_penalty", "logit_bias", "parallel_tool_calls",
                            "service_tier"}),
         errors=(("rate_limit", openai.RateLimitError, 429, "request_quota_exceeded"),
                 ("bad_request", openai.BadRequestError, 400, "wrong_api_format")),
         rejected=(("frequency_penalty", 0.5, None), ("logit_bias", {"1": 2}, None),
                   ("parallel_tool_calls", False, None))),
    Case("sambanova", "/v1", (44, 8, 52), refuses=frozenset({"store"}),
         errors=(("rate_limit", openai.RateLimitError, 429, "rate_limit_exceeded"),),
         rejected=(("logprobs", True, None), ("n", 2, None), ("presence_penalty", 0.1, None))),
    Case("nvidia-nim", "/v1", (25, 8, 33), refuses=frozenset({"store", "metadata"}), errors=(
        ("function_not_found", openai.NotFoundError, 404, None),)),
    Case("deepinfra", "/v1/openai", (25, 8, 33), refuses=frozenset({"stream_options"}), errors=(
        ("rate_limit", openai.RateLimitError, 429, None),)),
    Case("huggingface", "/v1", (25, 8, 33), refuses=frozenset({"metadata"}), errors=(
        ("overloaded", openai.RateLimitError, 429, None),
        ("generation", openai.InternalServerError, 502, "upstream_generation_error"),
        ("validation", openai.UnprocessableEntityError, 422, "context_length_exceeded"),
    )),
    Case("lmstudio", "/v1", (24, 8, 32), errors=(
        ("model_not_found", openai.NotFoundError, 404, "model_not_found"),)),
    Case("llamacpp", "/v1", (24, 8, 32), extras=("timings",), errors=(
        ("context_size", openai.BadRequestError, 400, "context_length_exceeded"),
        ("loading", openai.InternalServerError, 503, None),
    ), rejected=(("n", 2, None),)),
]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: c.type)
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


@pytest.fixture(scope="module")
def mock(case: Case) -> Any:
    key = case.golden["config"].get("api_key")
    flavour = Flavour(case.type, case.prefix, "bearer" if key else "optional-bearer", case.refuses)
    with OpenAILikeMock(flavour, api_key=key) as server:
        yield server


@pytest.fixture
def client(gateway: Any, mock: OpenAILikeMock, case: Case) -> openai.OpenAI:
    config = gateway_config(case.type, case.type, base_url=mock.base_url, **case.golden["config"])
    return strict_client(gateway(config))


def _create(client: openai.OpenAI, body: dict[str, Any]) -> Any:
    body = dict(body)
    model, messages = body.pop("model"), body.pop("messages")
    if body.pop("stream", False):  # not stream=False: the SDK would send that field, the golden has none
        return client.chat.completions.create(model=model, messages=messages, stream=True, extra_body=body)
    return client.chat.completions.create(model=model, messages=messages, extra_body=body)


def test_request_golden_arrives_upstream(client: openai.OpenAI, mock: OpenAILikeMock, case: Case) -> None:
    golden = case.golden
    result = _create(client, golden["openai"])
    if golden["stream"]:
        assert collect_sdk_stream(result)["content"] == ANSWER
    else:
        assert result.choices[0].message.content == ANSWER
    sent = mock.last("/chat/completions")
    assert sent.path == case.prefix + "/chat/completions"
    assert sent.json == golden["upstream"]
    for name, value in golden["headers"].items():
        assert sent.headers.get(name) == value, name
    for name in golden["absent_headers"]:
        assert name not in sent.headers


def test_chat(client: openai.OpenAI, case: Case) -> None:
    resp = client.chat.completions.create(model=case.golden["model"], messages=ask("chat"))
    assert resp.choices[0].message.content == ANSWER and resp.choices[0].finish_reason == "stop"
    assert resp.id and resp.object == "chat.completion"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == case.usage
    if case.cached is not None:
        assert resp.usage.prompt_tokens_details.cached_tokens == case.cached
    for key in case.extras:
        assert resp.model_extra[key], key


def test_stream_usage_only_when_asked(client: openai.OpenAI, case: Case) -> None:
    model = case.golden["model"]
    got = collect_sdk_stream(client.chat.completions.create(model=model, messages=ask("chat"), stream=True,
                                                            stream_options={"include_usage": True}))
    assert got["content"] == ANSWER and got["finish"] == "stop" and len(got["ids"]) == 1
    assert (got["usage"].prompt_tokens, got["usage"].completion_tokens, got["usage"].total_tokens) == case.usage
    got = collect_sdk_stream(client.chat.completions.create(model=model, messages=ask("chat"), stream=True))
    assert got["content"] == ANSWER and got["usage"] is None


@contextmanager
def served(gateway: Any, row: Case) -> Iterator[tuple[OpenAILikeMock, openai.OpenAI]]:
    """A mock of `row`'s API (refusing nothing) and a strict client on a gateway in front of it."""
    key = row.golden["config"].get("api_key")
    with OpenAILikeMock(Flavour(row.type, row.prefix, "bearer" if key else "optional-bearer"), api_key=key) as mock:
        config = gateway_config(row.type, row.type, base_url=mock.base_url, **row.golden["config"])
        yield mock, strict_client(gateway(config))


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("row, name, exc_class, status, code", [
    pytest.param(case, *err, id=f"{case.type}-{err[0]}") for case in CASES for err in case.errors])
def test_errors(gateway: Any, row: Case, name: str, exc_class: type, status: int, code: str | None,
                stream: bool) -> None:
    with served(gateway, row) as (mock, client):
        with pytest.raises(exc_class) as exc:
            client.chat.completions.create(model=row.golden["model"], messages=ask(f"error:{name}"), stream=stream)
        assert len(mock.requests) == 1  # the error came from the upstream, not from a refused connection
    assert exc.value.status_code == status
    assert exc.value.body.get("code") == code
    assert exc.value.body["message"].startswith(f"provider {row.type!r}")


@pytest.mark.parametrize("row, param, value, model", [
    pytest.param(case, *rej, id=f"{case.type}-{rej[0]}") for case in CASES for rej in case.rejected])
def test_refused_fields_never_reach_the_upstream(gateway: Any, row: Case, param: str, value: Any,
                                                 model: str | None) -> None:
    with served(gateway, row) as (mock, client):
        with pytest.raises(openai.BadRequestError) as exc:
            client.chat.completions.create(model=model or row.golden["model"], messages=ask("chat"),
                                           extra_body={param: value})
        assert mock.requests == []
    assert exc.value.body["param"] == param and exc.value.body["code"] == "unsupported_parameter"


def test_every_preset_has_a_case() -> None:
    from deployments.providers import presets, registry

    preset_types = {name for name in registry.names() if registry.get(name).adapter.__module__ == presets.__name__}
    assert preset_types == {case.type for case in CASES}
    for case in CASES:
        assert Path(FIXTURES / case.type / "README.md").exists(), case.type

"""Bad input gets OpenAI's precise error before any upstream call: 400 invalid_request_error with the
offending `param` and a `code` (the API reference's bounds, roles and wording); a method a route
does not allow is 405 invalid_request_error. Through the strict `openai` SDK."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.support.mockservers.recording_openai import RecordingUpstream
from tests.support.providers import strict_client

MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def url(gateway: Any, upstream: RecordingUpstream) -> str:
    return gateway(
        {
            "providers": {"up": {"type": "openai", "base_url": upstream.base_url, "api_key": "sk-x"}},
            "default_provider": "up",
        }
    )


CHAT_CASES = [
    # (fields, param, code)
    ({"temperature": 2.5}, "temperature", "decimal_above_max_value"),
    ({"temperature": -0.1}, "temperature", "decimal_below_min_value"),
    ({"temperature": 3}, "temperature", "decimal_above_max_value"),  # an integer is still a decimal field
    ({"temperature": "warm"}, "temperature", "invalid_type"),
    ({"temperature": True}, "temperature", "invalid_type"),
    ({"top_p": 1.01}, "top_p", "decimal_above_max_value"),
    ({"top_p": -0.5}, "top_p", "decimal_below_min_value"),
    ({"top_p": [1]}, "top_p", "invalid_type"),
    ({"max_tokens": 0}, "max_tokens", "integer_below_min_value"),
    ({"max_tokens": 1.5}, "max_tokens", "invalid_type"),
    ({"max_tokens": "10"}, "max_tokens", "invalid_type"),
    ({"max_completion_tokens": -3}, "max_completion_tokens", "integer_below_min_value"),
    ({"max_completion_tokens": False}, "max_completion_tokens", "invalid_type"),
    ({"n": 0}, "n", "integer_below_min_value"),
    ({"n": "2"}, "n", "invalid_type"),
    ({"presence_penalty": 2.5}, "presence_penalty", "decimal_above_max_value"),
    ({"presence_penalty": -2.01}, "presence_penalty", "decimal_below_min_value"),
    ({"presence_penalty": {}}, "presence_penalty", "invalid_type"),
    ({"frequency_penalty": 3}, "frequency_penalty", "decimal_above_max_value"),
    ({"frequency_penalty": -2.5}, "frequency_penalty", "decimal_below_min_value"),
    ({"frequency_penalty": "0"}, "frequency_penalty", "invalid_type"),
    ({"messages": []}, "messages", "empty_array"),
    ({"messages": "hi"}, "messages", "invalid_type"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role", "invalid_value"),
    ({"messages": [{"content": "hi"}]}, "messages[0].role", "missing_required_parameter"),
    ({"messages": [{"role": 1, "content": "hi"}]}, "messages[0].role", "invalid_type"),
    (
        {"messages": [*MSG, {"role": "tool", "content": "42"}]},
        "messages[1].tool_call_id",
        "missing_required_parameter",
    ),
    (
        {"messages": [*MSG, {"role": "tool", "content": "42", "tool_call_id": 7}]},
        "messages[1].tool_call_id",
        "invalid_type",
    ),
]


@pytest.mark.parametrize(
    "fields,param,code", CHAT_CASES, ids=[f"{c[1]}-{c[2]}-{i}" for i, c in enumerate(CHAT_CASES)]
)
@pytest.mark.parametrize("stream", [False, True])
def test_chat_bad_input(
    url: str, upstream: RecordingUpstream, fields: dict[str, Any], param: str, code: str, stream: bool
) -> None:
    before = len(upstream.requests)
    body = {"model": "gpt-4o", "messages": MSG, **fields}
    with pytest.raises(openai.BadRequestError) as exc:
        strict_client(url).chat.completions.create(**body, stream=stream)
    err = exc.value
    assert err.status_code == 400
    assert err.type == "invalid_request_error" and err.param == param and err.code == code
    assert err.message  # says what is wrong
    assert len(upstream.requests) == before  # answered before any upstream call


def test_messages_error_wording_is_openais(url: str) -> None:
    client = strict_client(url)
    with pytest.raises(openai.BadRequestError) as exc:
        robot = [{"role": "robot", "content": "hi"}]
        client.chat.completions.create(model="m", messages=robot)  # type: ignore[arg-type]
    assert exc.value.body["message"] == (  # type: ignore[index]
        "Invalid value: 'robot'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', "
        "and 'developer'."
    )
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="m", messages=MSG, temperature=2.5)
    assert exc.value.body["message"] == (  # type: ignore[index]
        "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 2.5 instead."
    )


def test_bounds_themselves_are_accepted(url: str, upstream: RecordingUpstream) -> None:
    client = strict_client(url)
    client.chat.completions.create(
        model="ok",
        messages=MSG,
        temperature=0,
        top_p=1,
        max_tokens=1,
        n=1,
        presence_penalty=-2,
        frequency_penalty=2,
        max_completion_tokens=1,
    )
    sent = upstream.requests[-1]["body"]
    assert (sent["temperature"], sent["top_p"], sent["frequency_penalty"]) == (0, 1, 2)
    tool_turn = [
        *MSG,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        {"role": "developer", "content": "be brief"},
    ]
    client.chat.completions.create(model="ok", messages=tool_turn)  # type: ignore[arg-type]
    assert upstream.requests[-1]["body"]["messages"][2]["tool_call_id"] == "call_1"


def test_embeddings_bad_input(url: str, upstream: RecordingUpstream) -> None:
    before = len(upstream.requests)
    client = strict_client(url)
    for fields, param, code in (
        ({"dimensions": 0}, "dimensions", "integer_below_min_value"),
        ({"dimensions": "8"}, "dimensions", "invalid_type"),
        ({"input": 5}, "input", "invalid_type"),
    ):
        with pytest.raises(openai.BadRequestError) as exc:
            client.embeddings.create(**{"model": "emb", "input": "x", "encoding_format": "float", **fields})
        assert (exc.value.type, exc.value.param, exc.value.code) == ("invalid_request_error", param, code)
    assert len(upstream.requests) == before


@pytest.mark.parametrize(
    "method,path,allowed",
    [
        ("GET", "/v1/chat/completions", "POST"),
        ("DELETE", "/v1/embeddings", "POST"),
        ("POST", "/v1/models", "GET"),
        ("POST", "/v1/models/gpt-4o", "GET"),
        ("PUT", "/health", "GET"),
    ],
)
def test_method_not_allowed(url: str, method: str, path: str, allowed: str) -> None:
    resp = httpx.request(method, url[: -len("/v1")] + path, timeout=10)
    assert resp.status_code == 405 and resp.headers["allow"] == allowed
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert resp.json()["error"]["code"] == "method_not_allowed"


def test_method_not_allowed_through_the_sdk(url: str) -> None:
    with pytest.raises(openai.APIStatusError) as exc:
        strict_client(url).get("/chat/completions", cast_to=object)
    assert exc.value.status_code == 405 and exc.value.type == "invalid_request_error"  # type: ignore[attr-defined]

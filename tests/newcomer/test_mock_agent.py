"""Building against the mock offline: an OpenAI agent loop (tool call -> tool result -> answer) and JSON
answers, through the Python SDK (strict) and the Node SDK, non-streamed and streamed, with usage."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonschema
import openai
import pytest
from pydantic import BaseModel

from tests.support.providers import strict_client

WEATHER_PARAMS = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "unit", "days"],
    "additionalProperties": False,
}
TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
    },
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_PARAMS}},
]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture
def url(gateway: Any) -> str:
    # configs/dev.yaml's provider: the mock, declaring its one model
    return gateway(
        {"providers": {"sandbox": {"type": "mock", "models": ["mock"]}}, "default_provider": "sandbox"}
    )


@pytest.fixture
def client(url: str) -> openai.OpenAI:
    return strict_client(url)


def _weather(args: dict[str, Any]) -> str:
    return f"sunny, 21 degrees in {args['city']}"


def test_agent_loop(client: openai.OpenAI) -> None:
    messages: list[Any] = list(ASK)
    first = client.chat.completions.create(
        model="mock",
        messages=messages,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    args = json.loads(call.function.arguments)
    jsonschema.validate(args, WEATHER_PARAMS)
    assert first.usage.completion_tokens > 0 and first.usage.total_tokens > first.usage.prompt_tokens
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": _weather(args)},
    ]
    final = client.chat.completions.create(model="mock", messages=messages, tools=TOOLS)
    assert final.choices[0].finish_reason == "stop" and final.choices[0].message.tool_calls is None
    assert _weather(args) in final.choices[0].message.content


def test_first_tool_by_default_and_none_means_text(client: openai.OpenAI) -> None:
    auto = client.chat.completions.create(model="mock", messages=ASK, tools=TOOLS)
    assert auto.choices[0].message.tool_calls[0].function.name == "get_time"
    assert json.loads(auto.choices[0].message.tool_calls[0].function.arguments) == {}
    text = client.chat.completions.create(model="mock", messages=ASK, tools=TOOLS, tool_choice="none")
    assert text.choices[0].message.tool_calls is None and text.choices[0].message.content


def test_streamed_agent_loop(client: openai.OpenAI) -> None:
    """The SDK's stream helper assembles the tool call from OpenAI-shaped chunks (arguments in pieces)."""
    named = {"type": "function", "function": {"name": "get_weather"}}
    with client.chat.completions.stream(
        model="mock", messages=ASK, tools=TOOLS, tool_choice=named, stream_options={"include_usage": True}
    ) as stream:
        pieces = [e for e in stream if e.type == "tool_calls.function.arguments.delta"]
        first = stream.get_final_completion()
    assert len(pieces) > 1  # the arguments really arrived cut into pieces
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls" and first.usage.completion_tokens > 0
    args = json.loads(call.function.arguments)
    jsonschema.validate(args, WEATHER_PARAMS)
    messages = [
        *ASK,
        first.choices[0].message.model_dump(exclude_none=True, exclude={"parsed"}),
        {"role": "tool", "tool_call_id": call.id, "content": _weather(args)},
    ]
    with client.chat.completions.stream(
        model="mock", messages=messages, tools=TOOLS, stream_options={"include_usage": True}
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "stop" and _weather(args) in final.choices[0].message.content
    assert final.usage.prompt_tokens > 0


class Person(BaseModel):
    name: str
    age: int
    tags: list[str]


def test_json_object_and_schema(client: openai.OpenAI) -> None:
    obj = client.chat.completions.create(model="mock", messages=ASK, response_format={"type": "json_object"})
    assert isinstance(json.loads(obj.choices[0].message.content), dict)
    # the SDK's structured-output helper: a strict json_schema from the model, parsed back into it
    parsed = client.chat.completions.parse(model="mock", messages=ASK, response_format=Person)
    assert isinstance(parsed.choices[0].message.parsed, Person)
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["when", "score", "kind", "items"],
        "properties": {
            "when": {"type": "string", "format": "date-time"},
            "score": {"type": "number", "exclusiveMinimum": 0, "maximum": 0.5},
            "kind": {"anyOf": [{"$ref": "#/$defs/kind"}, {"type": "null"}]},
            "items": {
                "type": "array",
                "minItems": 2,
                "uniqueItems": True,
                "items": {"type": "string", "minLength": 6},
            },
        },
        "$defs": {"kind": {"type": "string", "enum": ["a", "b"]}},
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "thing", "strict": True, "schema": schema}}
    out = client.chat.completions.create(model="mock", messages=ASK, response_format=fmt)
    jsonschema.validate(
        json.loads(out.choices[0].message.content), schema, format_checker=jsonschema.FormatChecker()
    )
    text = ""
    usage = None
    for chunk in client.chat.completions.create(
        model="mock", messages=ASK, response_format=fmt, stream=True, stream_options={"include_usage": True}
    ):
        text += "".join(c.delta.content or "" for c in chunk.choices)
        usage = chunk.usage or usage
    jsonschema.validate(json.loads(text), schema)
    assert usage is not None and usage.completion_tokens > 0


def test_node_sdk_agent_loop_and_json(url: str, node_sdk: Callable[..., dict[str, Any]]) -> None:
    got = node_sdk(url, "agent", {"model": "mock"})
    for run in (got["plain"], got["streamed"]):  # runTools, non-streamed and streamed
        assert run["roles"] == ["user", "assistant", "tool", "assistant"] and run["finish"] == "stop"
        (args,) = run["calls"]
        assert f"sunny, 21 degrees in {args['city']}" in run["answer"]
        assert run["usage"]["completion_tokens"] > 0
    js = node_sdk(url, "json", {"model": "mock"})
    assert isinstance(js["object"], dict) and isinstance(js["streamed_object"], dict)
    for person in (js["person"], js["streamed_person"]):
        jsonschema.validate(person, js["schema"])
    assert all(u and u["completion_tokens"] > 0 for u in js["usage"])

"""Conformance: reasoning content through the gateway, read by the strict `openai` SDK.

Thinking from Anthropic (thinking blocks), Gemini (thought parts) and Bedrock (reasoningContent)
comes back as `reasoning_content` on the message and on stream deltas, with Anthropic / Bedrock
blocks also as `thinking_blocks` (text + signature). The Anthropic mock checks what the API checks
in a tool-use conversation with thinking: the assistant turn sent back starts with the thinking
block and its signature is the one the API issued; otherwise it answers the API's own 400.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.mockservers import bedrock as mockbedrock
from tests.support.mockservers.anthropic import SIGNATURES
from tests.support.mockservers.anthropic import create_app as anthropic_app
from tests.support.mockservers.common import MockServer, load_json
from tests.support.mockservers.google import API_KEY as GOOGLE_KEY
from tests.support.mockservers.google import serve as google_serve
from tests.support.providers import strict_client

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
    "required": ["location"]}}}
THINKING = {"type": "enabled", "budget_tokens": 1024}
TOOL_TURN = load_json("anthropic", "chat", "thinking_tool_use.json")
SIGNATURE = TOOL_TURN["content"][0]["signature"]
THOUGHT = TOOL_TURN["content"][0]["thinking"]
CLAUDE = {"tools": [WEATHER], "extra_body": {"thinking": THINKING}, "max_tokens": 2048}
Mocks = dict[str, MockServer]
AWS = {"region": mockbedrock.REGION, "access_key_id": mockbedrock.ACCESS_KEY,
       "secret_access_key": mockbedrock.SECRET_KEY}


@pytest.fixture(scope="module")
def mocks() -> Iterator[dict[str, MockServer]]:
    servers = {"anthropic": MockServer(anthropic_app("sk-ant-mock", piece=19)),
               "google": google_serve(piece=17), "bedrock": mockbedrock.serve(piece=23)}
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def client(gateway: Any, mocks: dict[str, MockServer]) -> openai.OpenAI:
    return strict_client(gateway({"providers": {
        "claude": {"type": "anthropic", "api_key": "sk-ant-mock", "base_url": mocks["anthropic"].base_url},
        "gemini": {"type": "google", "api_key": GOOGLE_KEY, "base_url": mocks["google"].base_url},
        "aws": {"type": "bedrock", **AWS, "base_url": mocks["bedrock"].base_url},
    }}))


def _tool_result(call_id: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": '{"temp_c": 18}'}


# --- Anthropic: multi-turn tool use with thinking ---------------------------------------------------


def test_anthropic_thinking_round_trips_in_tool_use(client: openai.OpenAI, mocks: Mocks) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model="claude/thinking_tool_use", messages=messages, **CLAUDE)
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert message.model_extra["reasoning_content"].startswith("The user wants the weather in Paris.")
    assert message.model_extra["thinking_blocks"] == [{"type": "thinking", "thinking": THOUGHT,
                                                       "signature": SIGNATURE}]
    # the SDK's own message object goes back as history: the API accepts the second turn
    messages += [message, _tool_result(message.tool_calls[0].id)]
    second = client.chat.completions.create(model="claude/text", messages=messages, **CLAUDE)
    assert second.choices[0].message.content
    turn = mocks["anthropic"].last("/v1/messages").json["messages"][1]
    assert turn["role"] == "assistant"
    assert turn["content"][0] == {"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE}
    assert turn["content"][1]["type"] == "tool_use"


def test_anthropic_thinking_round_trips_from_a_stream(client: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    reasoning, blocks, calls = "", [], {}
    for chunk in client.chat.completions.create(model="claude/thinking_tool_use", messages=messages,
                                                stream=True, **CLAUDE):
        for choice in chunk.choices:
            extra = choice.delta.model_extra or {}
            reasoning += extra.get("reasoning_content") or ""
            blocks += extra.get("thinking_blocks") or []
            for tc in choice.delta.tool_calls or []:
                call = calls.setdefault(tc.index, {"id": tc.id, "name": tc.function.name, "arguments": ""})
                call["arguments"] += tc.function.arguments or ""
    assert reasoning == THOUGHT
    assert [b["signature"] for b in blocks] == [SIGNATURE]
    call = calls[0]
    function = {"name": call["name"], "arguments": call["arguments"]}
    assistant = {"role": "assistant", "content": None, "thinking_blocks": blocks,
                 "tool_calls": [{"id": call["id"], "type": "function", "function": function}]}
    history = messages + [assistant, _tool_result(call["id"])]
    resp = client.chat.completions.create(model="claude/text", messages=history, **CLAUDE)
    assert resp.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("blocks, complaint", [
    (None, "a final `assistant` message must start with a thinking block"),
    ([{"type": "thinking", "thinking": "made up", "signature": "c2lnbmF0dXJlLW5vdC1pc3N1ZWQ="}],
     "Invalid `signature`"),
])
def test_anthropic_without_the_issued_signature_is_anthropics_400(client: openai.OpenAI, blocks: Any,
                                                                    complaint: str) -> None:
    assert "c2lnbmF0dXJlLW5vdC1pc3N1ZWQ=" not in SIGNATURES
    assistant: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "toolu_01ThinkWx5nQ", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"location": "Paris, France"}'}}]}
    if blocks is not None:
        assistant["thinking_blocks"] = blocks
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="claude/text", **CLAUDE, messages=[
            {"role": "user", "content": "Weather in Paris?"}, assistant, _tool_result("toolu_01ThinkWx5nQ")])
    assert complaint in info.value.message and info.value.type == "invalid_request_error"


def test_anthropic_reasoning_effort_enables_thinking(client: openai.OpenAI, mocks: Mocks) -> None:
    resp = client.chat.completions.create(model="claude/thinking", reasoning_effort="high",
                                          messages=[{"role": "user", "content": "27*453?"}])
    assert resp.choices[0].message.model_extra["reasoning_content"].startswith("27 * 453")
    sent = mocks["anthropic"].last("/v1/messages").json
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 4096} and sent["max_tokens"] > 4096


# --- Gemini: thought parts when asked ----------------------------------------------------------------


def test_gemini_thoughts_are_reasoning_content(client: openai.OpenAI, mocks: Mocks) -> None:
    resp = client.chat.completions.create(model="gemini/thinking", reasoning_effort="low",
                                          messages=[{"role": "user", "content": "6*7?"}])
    assert resp.choices[0].message.content == "6 times 7 is 42."
    assert resp.choices[0].message.model_extra["reasoning_content"].startswith("**Multiplying**")
    sent = mocks["google"].last(":generateContent").json["generationConfig"]
    assert sent["thinkingConfig"] == {"thinkingBudget": 1024, "includeThoughts": True}
    reasoning = content = ""
    for chunk in client.chat.completions.create(model="gemini/thinking", stream=True,
                                                extra_body={"thinking_config": {"include_thoughts": True}},
                                                messages=[{"role": "user", "content": "6*7?"}]):
        for choice in chunk.choices:
            reasoning += (choice.delta.model_extra or {}).get("reasoning_content") or ""
            content += choice.delta.content or ""
    assert reasoning.startswith("**Multiplying**") and content == "6 times 7 is 42."
    assert mocks["google"].last(":streamGenerateContent").json["generationConfig"] == {
        "thinkingConfig": {"includeThoughts": True}}


# --- Bedrock: reasoningContent and its signature -------------------------------------------------------


def test_bedrock_reasoning_round_trips(client: openai.OpenAI, mocks: Mocks) -> None:
    answer = load_json("bedrock", "chat", "reasoning.json")["output"]["message"]
    fixture = answer["content"][0]["reasoningContent"]
    resp = client.chat.completions.create(model="aws/reasoning", extra_body={"thinking": THINKING},
                                          messages=[{"role": "user", "content": "6*7?"}])
    message = resp.choices[0].message
    assert message.content == "42"
    assert message.model_extra["reasoning_content"] == fixture["reasoningText"]["text"]
    assert mocks["bedrock"].last("/converse").json["additionalModelRequestFields"] == {"thinking": THINKING}
    reasoning, blocks = "", []
    for chunk in client.chat.completions.create(model="aws/reasoning", stream=True,
                                                messages=[{"role": "user", "content": "6*7?"}]):
        for choice in chunk.choices:
            reasoning += (choice.delta.model_extra or {}).get("reasoning_content") or ""
            blocks += (choice.delta.model_extra or {}).get("thinking_blocks") or []
    assert reasoning == "6*7 is 42." and blocks[0]["signature"] == fixture["reasoningText"]["signature"]
    client.chat.completions.create(model="aws/text", messages=[
        {"role": "user", "content": "6*7?"}, message, {"role": "user", "content": "And 6*8?"}])
    turn = mocks["bedrock"].last("/converse").json["messages"][1]
    assert turn["content"][0] == {"reasoningContent": {"reasoningText": fixture["reasoningText"]}}
    assert turn["content"][1] == {"text": "42"}

"""`anthropic` adapter: request-translation goldens, response / stream / error fixtures (no network, no Ray)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from serve_app import errors as E
from serve_app.errors import GatewayError, UpstreamError
from tests.support.providers import ProviderKit, assemble, assert_error_fixtures_covered
from tests.support.providers import parse_chunk_sse as parse_sse

KIT = ProviderKit("anthropic", name="claude", model="claude-sonnet-4-5",
                  config={"api_key": "sk-ant-test", "model": "claude-sonnet-4-5"})
REQUESTS = KIT.paths("requests/*.json")
ERRORS = KIT.paths("errors/*.json")


# --- requests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", REQUESTS, ids=[p.stem for p in REQUESTS])
def test_request_golden(path: Path) -> None:
    case = orjson.loads(path.read_bytes())
    body = copy.deepcopy(case["openai"])
    req = KIT.adapter().chat_request(body, KIT.ctx(case["openai"]["model"]), stream=case["stream"])
    assert req.method == "POST"
    assert req.url == "https://api.anthropic.com/v1/messages"
    assert orjson.loads(req.body) == case["anthropic"]


def test_request_headers_and_base_url() -> None:
    adapter = KIT.adapter(base_url="http://127.0.0.1:9/proxy/", anthropic_version="2023-01-01",
                           anthropic_beta=["prompt-caching-2024-07-31", "output-128k-2025-02-19"], max_tokens=77)
    req = adapter.chat_request({"messages": [{"role": "user", "content": "hi"}]}, KIT.ctx(), stream=True)
    assert req.url == "http://127.0.0.1:9/proxy/v1/messages"
    assert req.headers["x-api-key"] == "sk-ant-test"
    assert req.headers["anthropic-version"] == "2023-01-01"
    assert req.headers["anthropic-beta"] == "prompt-caching-2024-07-31,output-128k-2025-02-19"
    assert req.headers["content-type"] == "application/json"
    assert "authorization" not in {k.lower() for k in req.headers}
    assert orjson.loads(req.body)["max_tokens"] == 77


def test_request_default_version_header() -> None:
    req = KIT.adapter().chat_request({"messages": [{"role": "user", "content": "hi"}]}, KIT.ctx(), stream=False)
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert "anthropic-beta" not in req.headers


@pytest.mark.parametrize("body, param", [
    ({"n": 2, "messages": [{"role": "user", "content": "hi"}]}, "n"),
    ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
    ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]},
     "messages[0].content[0].type"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [
        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]},
     "messages[1].tool_calls[0].function.arguments"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "user", "content": "q"}], "tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0].type"),
    ({"messages": [{"role": "user", "content": "q"}], "response_format": {"type": "grammar"}}, "response_format.type"),
])
def test_request_rejections_are_400(body: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as info:
        KIT.adapter().chat_request(body, KIT.ctx(), stream=False)
    assert info.value.status == 400
    assert info.value.param == param
    assert info.value.error_class == E.BAD_REQUEST


def test_request_n_one_is_fine_and_pdf_file_becomes_document() -> None:
    body = {"n": 1, "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQK"}},
        {"type": "text", "text": "Summarise."}]}]}
    sent = orjson.loads(KIT.adapter().chat_request(body, KIT.ctx(), stream=False).body)
    assert sent["messages"][0]["content"][0] == {
        "type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"}}
    assert "n" not in sent


def test_request_allowed_tools_choice_filters_tools() -> None:
    tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
             for n in ("a", "b", "c")]
    body = {"messages": [{"role": "user", "content": "q"}], "tools": tools,
            "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
                {"type": "function", "function": {"name": "b"}}]}}}
    sent = orjson.loads(KIT.adapter().chat_request(body, KIT.ctx(), stream=False).body)
    assert [t["name"] for t in sent["tools"]] == ["b"]
    assert sent["tool_choice"] == {"type": "any"}


def test_request_json_schema_with_thinking_uses_instruction_not_forced_tool() -> None:
    body = {"messages": [{"role": "user", "content": "q"}], "thinking": {"type": "enabled", "budget_tokens": 2048},
            "max_tokens": 8000,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}}
    sent = orjson.loads(KIT.adapter().chat_request(body, KIT.ctx(), stream=False).body)
    assert "tools" not in sent and "tool_choice" not in sent
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert "JSON Schema (x)" in sent["system"]


# --- responses ---------------------------------------------------------------------------------


def completion(name: str) -> dict[str, Any]:
    return KIT.completion("chat", f"{name}.json")  # checked by the SDK's own model


def test_response_text() -> None:
    data = completion("text")
    assert data["id"] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert data["object"] == "chat.completion"
    assert data["created"] == 1700000000
    assert data["model"] == "claude-sonnet-4-5-20250929"
    choice = data["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hello! How can I help you today?", "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert data["usage"] == {"prompt_tokens": 12, "completion_tokens": 10, "total_tokens": 22,
                             "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0}}


def test_response_tool_use_keeps_text_and_id() -> None:
    choice = completion("tool_use")["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "I'll check the current weather in San Francisco for you."
    [call] = choice["message"]["tool_calls"]
    assert call["id"] == "toolu_01A09q90qw90lq917835lq9"
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"location": "San Francisco, CA", "unit": "celsius"}


def test_response_parallel_tool_calls() -> None:
    choice = completion("parallel_tools")["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["toolu_01Paris7Hq2kLm", "toolu_01Tokyo9Rt5nBv", "toolu_01Clock3Xz8wQe"]
    assert [orjson.loads(c["function"]["arguments"]) for c in calls] == [
        {"location": "Paris, France"}, {"location": "Tokyo, Japan"}, {"timezone": "Asia/Tokyo"}]


def test_response_json_schema_tool_becomes_content() -> None:
    choice = completion("json_schema")["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert "tool_calls" not in choice["message"]
    assert orjson.loads(choice["message"]["content"]) == {
        "city": "Paris", "country": "France", "population_millions": 2.1, "landmarks": ["Eiffel Tower", "Louvre"]}


def test_response_cached_usage() -> None:
    usage = completion("cached_usage")["usage"]
    assert usage == {"prompt_tokens": 21 + 188 + 1800, "completion_tokens": 15, "total_tokens": 2009 + 15,
                     "prompt_tokens_details": {"cached_tokens": 1800, "cache_write_tokens": 188}}


THINKING_SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"


def test_response_thinking_is_reasoning_content_and_reasoning_tokens_reported() -> None:
    data = completion("thinking")
    message = data["choices"][0]["message"]
    assert message["content"] == "27 × 453 = 12,231."
    assert message["reasoning_content"] == "27 * 453: 27*400 = 10800, 27*53 = 1431, total 12231."
    assert message["thinking_blocks"] == [{"type": "thinking", "thinking": message["reasoning_content"],
                                           "signature": THINKING_SIGNATURE}]
    assert data["usage"]["completion_tokens"] == 96
    assert data["usage"]["completion_tokens_details"] == {"reasoning_tokens": 81}


@pytest.mark.parametrize("name, finish, content", [
    ("max_tokens", "length", "Once upon a time, in a kingdom by"),
    ("stop_sequence", "stop", "1, 2, 3, 4"),
    ("refusal", "content_filter", None),
    ("json_object", "stop", '{"answer": 42, "unit": "none"}'),
    ("vision", "stop", "The image shows a red square on a white background."),
])
def test_response_finish_reasons(name: str, finish: str, content: str | None) -> None:
    choice = completion(name)["choices"][0]
    assert choice["finish_reason"] == finish
    assert choice["message"]["content"] == content


def test_response_not_json_is_upstream_error() -> None:
    with pytest.raises(UpstreamError) as info:
        KIT.adapter().chat_response(200, b"<html>oops</html>", KIT.ctx())
    assert info.value.status == 502 and info.value.error_class == E.SERVER


# --- streams -----------------------------------------------------------------------------------


PIECES = [0, 1, 13, 64]


@pytest.mark.parametrize("piece", PIECES)
def test_stream_text(piece: int) -> None:
    translator, out = KIT.run_stream("text", piece)
    chunks, done = parse_sse(out)
    assert done
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    msg = assemble(chunks)
    assert msg["roles"] == ["assistant"]
    assert msg["content"] == "Hello! How can I help you today?"
    assert msg["finish"] == "stop"
    assert {c["id"] for c in chunks} == {"msg_01StreamText7Ab"}
    assert {c["created"] for c in chunks} == {1700000000}
    assert {c["model"] for c in chunks} == {"claude-sonnet-4-5-20250929"}
    assert all(c["choices"] for c in chunks), "usage chunk sent although the client did not ask"
    assert translator.usage == {"prompt_tokens": 12, "completion_tokens": 10, "total_tokens": 22,
                                "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0}}


def test_stream_crlf_line_endings() -> None:
    _, out = KIT.run_stream("text", 5, crlf=True)
    chunks, done = parse_sse(out)
    assert done and assemble(chunks)["content"] == "Hello! How can I help you today?"


@pytest.mark.parametrize("piece", PIECES)
def test_stream_tool_use(piece: int) -> None:
    _, out = KIT.run_stream("tool_use", piece)
    chunks, done = parse_sse(out)
    msg = assemble(chunks)
    assert done and msg["finish"] == "tool_calls"
    assert msg["content"] == "Okay, let's check the weather for San Francisco, CA:"
    [call] = msg["tool_calls"]
    assert call["id"] == "toolu_01T1x1fJ34qAmk2tNTrN7Up6" and call["name"] == "get_weather"
    assert orjson.loads(call["arguments"]) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    first_tool = next(c for c in chunks if c["choices"][0]["delta"].get("tool_calls"))
    assert first_tool["choices"][0]["delta"]["tool_calls"][0] == {
        "index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function",
        "function": {"name": "get_weather", "arguments": ""}}


@pytest.mark.parametrize("piece", PIECES)
def test_stream_parallel_tool_calls(piece: int) -> None:
    _, out = KIT.run_stream("parallel_tools", piece)
    chunks, done = parse_sse(out)
    msg = assemble(chunks)
    assert done and msg["finish"] == "tool_calls"
    assert [(c["id"], c["name"]) for c in msg["tool_calls"]] == [
        ("toolu_01Paris7Hq2kLm", "get_weather"), ("toolu_01Tokyo9Rt5nBv", "get_weather"), ("toolu_01Clock3Xz8wQe", "get_time")]
    assert [orjson.loads(c["arguments"]) for c in msg["tool_calls"]] == [
        {"location": "Paris, France"}, {"location": "Tokyo, Japan"}, {"timezone": "Asia/Tokyo"}]


def test_stream_json_schema_tool_streams_as_content() -> None:
    _, out = KIT.run_stream("json_schema", 9)
    chunks, done = parse_sse(out)
    msg = assemble(chunks)
    assert done and msg["finish"] == "stop" and msg["tool_calls"] == []
    assert orjson.loads(msg["content"])["landmarks"] == ["Eiffel Tower", "Louvre"]


def test_stream_usage_chunk_only_when_asked_and_cached_tokens() -> None:
    translator, out = KIT.run_stream("cached_usage", 0, include_usage=True)
    chunks, done = parse_sse(out)
    assert done
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 2009, "completion_tokens": 15, "total_tokens": 2024,
                                    "prompt_tokens_details": {"cached_tokens": 1800, "cache_write_tokens": 188}}
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert translator.usage == usage_chunk["usage"]


@pytest.mark.parametrize("piece", [0, 11])
def test_stream_thinking_deltas_then_the_signed_block(piece: int) -> None:
    translator, out = KIT.run_stream("thinking", piece, include_usage=True)
    chunks, _ = parse_sse(out)
    assert assemble(chunks)["content"] == "27 × 453 = 12,231."
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    thought = "27*400 = 10800, 27*53 = 1431, total 12231."
    assert "".join(d.get("reasoning_content", "") for d in deltas) == thought
    (blocks,) = [d["thinking_blocks"] for d in deltas if "thinking_blocks" in d]
    assert blocks == [{"type": "thinking", "thinking": thought, "signature": THINKING_SIGNATURE}]
    first_text = next(i for i, d in enumerate(deltas) if d.get("content"))
    assert deltas.index({"thinking_blocks": blocks}) < first_text
    assert translator.usage["completion_tokens_details"] == {"reasoning_tokens": 81}


def test_stream_max_tokens_is_length() -> None:
    _, out = KIT.run_stream("max_tokens", 0)
    assert assemble(parse_sse(out)[0])["finish"] == "length"


@pytest.mark.parametrize("piece", [0, 7])
def test_stream_cut_raises_stream_cut(piece: int) -> None:
    translator = KIT.adapter().chat_stream(KIT.ctx())
    raw = KIT.fixture("stream", "cut.sse")
    out = b""
    step = piece or len(raw)
    for i in range(0, len(raw), step):
        out += translator.feed(raw[i:i + step])
    assert b"The first half of an answer" in out and b"[DONE]" not in out
    with pytest.raises(UpstreamError) as info:
        translator.finish()
    assert info.value.error_class == E.STREAM_CUT and info.value.code == "upstream_stream_cut"
    assert info.value.status == 502


def test_stream_error_event_emits_what_came_before_then_raises_overloaded() -> None:
    translator = KIT.adapter().chat_stream(KIT.ctx())
    out = translator.feed(KIT.fixture("stream", "error_overloaded.sse"))
    assert b"Partial" in out and b"[DONE]" not in out
    with pytest.raises(UpstreamError) as info:
        translator.finish()
    err = info.value
    assert err.status == 503 and err.error_class == E.OVERLOADED and err.code == "upstream_overloaded"
    assert "Overloaded" in err.message


def test_stream_error_event_alone_raises_from_feed() -> None:
    translator = KIT.adapter().chat_stream(KIT.ctx())
    event = b'event: error\ndata: {"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}\n\n'
    with pytest.raises(UpstreamError) as info:
        translator.feed(event)
    assert info.value.status == 429 and info.value.error_class == E.RATE_LIMITED


def test_stream_ignores_bytes_after_message_stop() -> None:
    translator = KIT.adapter().chat_stream(KIT.ctx())
    out = translator.feed(KIT.fixture("stream", "text.sse") + b"event: ping\ndata: {\"type\":\"ping\"}\n\n")
    out += translator.finish()
    assert out.count(b"data: [DONE]") == 1 and out.endswith(b"data: [DONE]\n\n")


def test_stream_last_event_without_blank_line_is_processed() -> None:
    raw = KIT.fixture("stream", "text.sse").rstrip(b"\n")
    translator = KIT.adapter().chat_stream(KIT.ctx())
    out = translator.feed(raw) + translator.finish()
    assert out.endswith(b"data: [DONE]\n\n")


# --- errors ------------------------------------------------------------------------------------

EXPECTED_ERRORS = {
    # name: (client status, error class, code, OpenAI error type)
    "invalid_request_400": (400, E.BAD_REQUEST, None, "invalid_request_error"),
    "context_length_400": (400, E.CONTEXT_LENGTH, "context_length_exceeded", "invalid_request_error"),
    "authentication_401": (502, E.AUTH, "upstream_auth_error", "upstream_error"),
    "billing_402": (502, E.AUTH, "upstream_billing_error", "upstream_error"),
    "permission_403": (502, E.AUTH, "upstream_auth_error", "upstream_error"),
    "not_found_404": (404, E.NOT_FOUND, None, "not_found_error"),
    "request_too_large_413": (413, E.BAD_REQUEST, None, "request_too_large"),
    "rate_limit_429": (429, E.RATE_LIMITED, None, "rate_limit_error"),
    "api_500": (500, E.SERVER, None, "api_error"),
    "timeout_504": (504, E.TIMEOUT, None, "timeout_error"),
    "overloaded_529": (503, E.OVERLOADED, "upstream_overloaded", "service_unavailable_error"),
}


def test_every_error_fixture_has_an_expectation() -> None:
    assert_error_fixtures_covered(ERRORS, EXPECTED_ERRORS)


@pytest.mark.parametrize("path", ERRORS, ids=[p.stem for p in ERRORS])
def test_error_mapping(path: Path) -> None:
    fx, err = KIT.error(path.stem)
    status, error_class, code, etype = EXPECTED_ERRORS[path.stem]
    assert isinstance(err, UpstreamError)
    assert (err.status, err.error_class, err.code, err.type) == (status, error_class, code, etype)
    assert err.provider == "claude"
    if fx["status"] in (401, 402, 403):
        assert fx["body"]["error"]["message"] not in err.message  # never echo the provider's auth text
    else:
        assert fx["body"]["error"]["message"] in err.message


def test_error_retry_after_kept_for_429_and_529() -> None:
    for name, seconds in (("rate_limit_429", 17), ("overloaded_529", 3)):
        fx, err = KIT.error(name)
        assert err.retry_after == seconds
        assert err.response_headers()["retry-after"] == str(seconds)
    assert EXPECTED_ERRORS["rate_limit_429"][1] in E.RETRYABLE_CLASSES


def test_embeddings_are_a_clear_400() -> None:
    with pytest.raises(GatewayError) as info:
        KIT.adapter().embeddings_request({"input": "x"}, KIT.ctx())
    assert info.value.status == 400 and info.value.code == "unsupported_endpoint"


def test_request_thinking_blocks_go_first_with_their_signature() -> None:
    blocks = [{"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
              {"type": "thinking", "thinking": "Call the tool.", "signature": "sig-1"}]
    body = {"messages": [{"role": "user", "content": "q"},
                         {"role": "assistant", "content": "Checking.", "reasoning_content": "Call the tool.",
                          "thinking_blocks": blocks,
                          "tool_calls": [{"id": "toolu_1", "type": "function",
                                          "function": {"name": "f", "arguments": "{}"}}]},
                         {"role": "tool", "tool_call_id": "toolu_1", "content": "ok"}],
            "reasoning_effort": "medium"}
    sent = orjson.loads(KIT.adapter().chat_request(body, KIT.ctx(), False).body)
    turn = sent["messages"][1]["content"]
    assert [b["type"] for b in turn] == ["redacted_thinking", "thinking", "text", "tool_use"]
    assert turn[1] == {"type": "thinking", "thinking": "Call the tool.", "signature": "sig-1"}
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    unsigned = {**body["messages"][1], "thinking_blocks": [{"type": "thinking"}]}
    bad = {**body, "messages": [body["messages"][0], unsigned, body["messages"][2]]}
    with pytest.raises(GatewayError) as info:
        KIT.adapter().chat_request(bad, KIT.ctx(), False)
    assert info.value.param == "messages[1].thinking_blocks[0]"

"""`google` (Gemini API) adapter: request goldens, response / stream / error / embeddings fixtures.

No network, no Ray. Outputs are validated with the `openai` SDK's own pydantic types.
"""

from __future__ import annotations

import base64
import copy
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.types import CreateEmbeddingResponse

from deployments.providers import registry
from serve_app import errors as E
from serve_app.errors import GatewayError, UpstreamError
from tests.support.providers import ProviderKit, accumulate, assert_error_fixtures_covered, done_chunks

KEY = "AIzaSy-test-key"
KIT = ProviderKit("google", name="gemini", model="gemini-2.0-flash", config={"api_key": KEY})
REQUESTS = KIT.paths("requests/*.json")
ERRORS = KIT.paths("errors/*.json")
CHATS = KIT.paths("chat/*.json")
STREAMS = KIT.paths("stream/*.sse")


# --- requests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", REQUESTS, ids=[p.stem for p in REQUESTS])
def test_request_golden(path: Path) -> None:
    case = orjson.loads(path.read_bytes())
    body = copy.deepcopy(case["openai"])
    req = KIT.adapter().chat_request(body, KIT.ctx(case.get("model") or case["openai"]["model"]), stream=case["stream"])
    assert body == case["openai"], "the adapter must not mutate the request (fallback reuses it)"
    assert req.method == "POST"
    assert req.url == case["url"]
    assert req.headers == {"content-type": "application/json", "x-goog-api-key": KEY}
    assert orjson.loads(req.body) == case["google"]


def test_base_url_api_version_and_safety_settings() -> None:
    safety = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
    adapter = KIT.adapter(base_url="http://127.0.0.1:9/proxy/", api_version="v1", safety_settings=safety)
    req = adapter.chat_request({"messages": [{"role": "user", "content": "hi"}]}, KIT.ctx("models/gemini-1.5-pro"), False)
    assert req.url == "http://127.0.0.1:9/proxy/v1/models/gemini-1.5-pro:generateContent"
    assert orjson.loads(req.body)["safetySettings"] == safety
    assert "key=" not in req.url  # the key travels in a header, never in the URL (logs)


def test_default_config_has_the_public_endpoint() -> None:
    spec = registry.get("google")
    config = spec.config_model.model_validate({"name": "g", "type": "google"})
    assert config.base_url == "https://generativelanguage.googleapis.com"
    req = spec.adapter(config).chat_request({"messages": [{"role": "user", "content": "x"}]}, KIT.ctx(), False)
    assert "x-goog-api-key" not in req.headers


@pytest.mark.parametrize("body, param", [
    ({"messages": [{"role": "system", "content": "only system"}]}, "messages"),
    ({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]},
     "messages[1].tool_calls[0].function.arguments"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"messages": [{"role": "user", "content": [{"type": "video", "video": {}}]}]}, "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": "x"}], "stop": ["a", "b", "c", "d", "e", "f"]}, "stop"),
    ({"messages": [{"role": "user", "content": "x"}], "logprobs": True}, "logprobs"),
    ({"messages": [{"role": "user", "content": "x"}], "tool_choice": "required"}, "tool_choice"),
    ({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}}, "response_format.type"),
    ({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema", "json_schema": {}}},
     "response_format.json_schema.schema"),
    ({"messages": [{"role": "oracle", "content": "x"}]}, "messages[0].role"),
])
def test_request_rejects(body: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as info:
        KIT.adapter().chat_request(body, KIT.ctx(), stream=False)
    assert info.value.status == 400
    assert info.value.param == param
    assert info.value.error_class == E.BAD_REQUEST


def test_input_audio_and_file_parts() -> None:
    body = {"messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "mp3"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}}]}]}
    parts = orjson.loads(KIT.adapter().chat_request(body, KIT.ctx(), False).body)["contents"][0]["parts"]
    assert parts == [{"inlineData": {"mimeType": "audio/mpeg", "data": "UklGRg=="}},
                     {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}}]


def test_legacy_function_role() -> None:
    body = {"messages": [{"role": "user", "content": "x"},
                         {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
                         {"role": "function", "name": "f", "content": "{\"ok\": true}"}]}
    contents = orjson.loads(KIT.adapter().chat_request(body, KIT.ctx(), False).body)["contents"]
    assert contents[1] == {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}},
                                                       "thoughtSignature": "skip_thought_signature_validator"}]}
    assert contents[2] == {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"ok": True}}}]}


# --- non-streamed responses ----------------------------------------------------------------------


def translate(name: str, model: str = "gemini-2.0-flash") -> dict[str, Any]:
    return KIT.completion("chat", f"{name}.json", model=model)  # what the SDK's strict parsing would accept


ERRORED = ("malformed_function_call", "prompt_blocked")


@pytest.mark.parametrize("path", [p for p in CHATS if p.stem not in ERRORED], ids=lambda p: p.stem)
def test_every_chat_fixture_is_a_valid_completion(path: Path) -> None:
    out = translate(path.stem)
    assert out["object"] == "chat.completion"
    assert out["created"] == 1700000000
    assert out["id"].startswith("chatcmpl-")
    assert out["choices"], "at least one choice"


def test_text() -> None:
    out = translate("text")
    assert out["id"] == "chatcmpl-Xw5Pa9_2Kc6mz7IP8qfK4Ak"  # Gemini's responseId
    assert out["model"] == "gemini-2.0-flash"
    choice = out["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "The capital of France is Paris.", "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert out["usage"] == {"prompt_tokens": 9, "completion_tokens": 8, "total_tokens": 17,
                            "prompt_tokens_details": {"cached_tokens": 0},
                            "completion_tokens_details": {"reasoning_tokens": 0}}


def test_tool_call_with_thought_signature() -> None:
    out = translate("tool_call")
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["id"].startswith("call_") and len(call["id"]) == 29
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris","unit":"celsius"}'}
    assert call["extra_content"]["google"]["thought_signature"].startswith("CiQBcsjafE5J")
    # reasoning tokens count inside completion tokens, as OpenAI counts them
    assert out["usage"]["completion_tokens"] == 21 + 48
    assert out["usage"]["completion_tokens_details"] == {"reasoning_tokens": 48}
    # ids are stable: the same request id gives the same ids
    assert translate("tool_call")["choices"][0]["message"]["tool_calls"][0]["id"] == call["id"]


def test_parallel_tool_calls() -> None:
    msg = translate("parallel_tools")["choices"][0]["message"]
    assert msg["content"] == "I'll check both cities."
    calls = msg["tool_calls"]
    assert [orjson.loads(c["function"]["arguments"])["city"] for c in calls] == ["Paris", "Tokyo"]
    assert len({c["id"] for c in calls}) == 2
    assert "extra_content" in calls[0] and "extra_content" not in calls[1]


def test_usage_details_and_thought_parts() -> None:
    out = translate("usage_details")
    assert out["choices"][0]["message"]["content"] == "42."  # the thought part is not content
    assert out["choices"][0]["message"]["reasoning_content"].startswith("**Weighing the options**")
    assert out["model"] == "gemini-2.5-pro"
    assert out["usage"] == {"prompt_tokens": 4120, "completion_tokens": 190, "total_tokens": 4310,
                            "prompt_tokens_details": {"cached_tokens": 4096},
                            "completion_tokens_details": {"reasoning_tokens": 187}}


def test_safety_block_is_content_filter() -> None:
    choice = translate("safety")["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] is None


def test_prompt_block_is_the_clients_refusal() -> None:
    with pytest.raises(UpstreamError) as info:
        translate("prompt_blocked")
    err = info.value
    assert (err.status, err.code, err.error_class, err.type) == (400, "content_filter", E.CONTENT_FILTER,
                                                                 "invalid_request_error")
    assert "blockReason SAFETY: HARM_CATEGORY_HATE_SPEECH" in err.message and not err.retryable


def test_max_tokens_and_n() -> None:
    assert translate("max_tokens")["choices"][0]["finish_reason"] == "length"
    choices = translate("n2")["choices"]
    assert [(c["index"], c["message"]["content"]) for c in choices] == [(0, "Red."), (1, "Blue.")]


def test_json_mode_content_is_json() -> None:
    content = translate("json_mode")["choices"][0]["message"]["content"]
    assert orjson.loads(content)["born"] == 1815


def test_malformed_function_call_is_an_error_not_stop() -> None:
    with pytest.raises(UpstreamError) as info:
        translate("malformed_function_call")
    assert info.value.status == 502
    assert info.value.code == "upstream_bad_response"
    assert info.value.retryable


def test_non_json_and_empty_bodies() -> None:
    with pytest.raises(UpstreamError) as info:
        KIT.adapter().chat_response(200, b"<html>", KIT.ctx())
    assert info.value.status == 502
    with pytest.raises(UpstreamError):
        KIT.adapter().chat_response(200, b'{"candidates": []}', KIT.ctx())


# --- streams -------------------------------------------------------------------------------------


def run_stream(name: str, include_usage: bool = False, piece: int = 0) -> tuple[list[dict[str, Any]], bytes]:
    out, _ = KIT.stream_fixture("stream", f"{name}.sse", include_usage=include_usage, piece=piece)
    return done_chunks(out), out


@pytest.mark.parametrize("piece", [0, 1, 7])
def test_stream_text(piece: int) -> None:
    chunks, _ = run_stream("text", piece=piece)
    acc = accumulate(chunks)
    assert acc["roles"] == ["assistant"]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert acc["text"] == "The capital of France is Paris."
    assert acc["finish"] == "stop"
    assert all(c["id"] == "chatcmpl-stream-rid-1" and c["created"] == 1700000000 for c in chunks)
    assert not any(c.get("usage") for c in chunks), "no usage chunk unless asked"


def test_stream_usage_chunk_only_when_asked() -> None:
    chunks, _ = run_stream("usage_details", include_usage=True)
    last = chunks[-1]
    assert last["choices"] == []
    assert last["usage"]["prompt_tokens_details"] == {"cached_tokens": 4096}
    assert last["usage"]["completion_tokens_details"] == {"reasoning_tokens": 187}
    assert accumulate(chunks)["text"] == "42."
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    translator = KIT.adapter().chat_stream(KIT.ctx())
    translator.feed(KIT.fixture("stream", "usage_details.sse"))
    assert translator.usage["completion_tokens"] == 190  # kept for accounting even when not sent


@pytest.mark.parametrize("piece", [0, 5])
def test_stream_tool_call(piece: int) -> None:
    chunks, _ = run_stream("tool_call", piece=piece)
    acc = accumulate(chunks)
    assert acc["finish"] == "tool_calls"
    assert acc["calls"][0]["name"] == "get_weather"
    assert orjson.loads(acc["calls"][0]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    # the same id as the non-streamed translation of the same call
    assert acc["calls"][0]["id"] == translate("tool_call")["choices"][0]["message"]["tool_calls"][0]["id"]
    head = next(c for c in chunks if (c["choices"][0]["delta"].get("tool_calls") or [{}])[0].get("id"))
    assert head["choices"][0]["delta"]["tool_calls"][0]["extra_content"]["google"]["thought_signature"]


def test_stream_parallel_tool_calls() -> None:
    acc = accumulate(run_stream("parallel_tools")[0])
    assert acc["text"] == "I'll check both cities."
    assert sorted(acc["calls"]) == [0, 1]
    assert [orjson.loads(acc["calls"][i]["arguments"])["city"] for i in (0, 1)] == ["Paris", "Tokyo"]
    assert acc["finish"] == "tool_calls"


def test_stream_json_and_safety_and_prompt_block() -> None:
    assert orjson.loads(accumulate(run_stream("json_mode")[0])["text"])["born"] == 1815
    acc = accumulate(run_stream("safety")[0])
    assert acc["text"] == "Here is how you" and acc["finish"] == "content_filter"
    translator = KIT.adapter().chat_stream(KIT.ctx())
    with pytest.raises(UpstreamError) as info:  # raised on the first event: before any byte is sent
        translator.feed(KIT.fixture("stream", "prompt_blocked.sse"))
    assert info.value.code == "content_filter" and "PROHIBITED_CONTENT" in info.value.message


def test_stream_cut_raises_in_finish() -> None:
    translator = KIT.adapter().chat_stream(KIT.ctx())
    out = translator.feed(KIT.fixture("stream", "cut.sse"))
    assert b"The capital" in out and b"[DONE]" not in out
    with pytest.raises(UpstreamError) as info:
        translator.finish()
    assert info.value.error_class == E.STREAM_CUT and info.value.status == 502


def test_stream_empty_is_a_cut() -> None:
    with pytest.raises(UpstreamError) as info:
        KIT.adapter().chat_stream(KIT.ctx()).finish()
    assert info.value.error_class == E.STREAM_CUT


def test_stream_malformed_function_call_raises() -> None:
    translator = KIT.adapter().chat_stream(KIT.ctx())
    out = translator.feed(KIT.fixture("stream", "malformed_function_call.sse"))
    assert b"Let me call" in out  # what came before the failure is delivered first
    with pytest.raises(UpstreamError) as info:
        translator.finish()
    assert info.value.code == "upstream_bad_response"


def test_stream_error_event_midstream() -> None:
    data = KIT.fixture("stream", "error_midstream.sse")
    translator = KIT.adapter().chat_stream(KIT.ctx())
    assert b"The capital" in translator.feed(data)
    with pytest.raises(UpstreamError) as info:
        translator.finish()
    assert info.value.status == 503 and info.value.error_class == E.OVERLOADED
    # the error alone in a chunk raises at once; later calls keep raising it
    translator = KIT.adapter().chat_stream(KIT.ctx())
    first, second = data.split(b"\r\n\r\n", 1)
    translator.feed(first + b"\r\n\r\n")
    with pytest.raises(UpstreamError):
        translator.feed(second)


@pytest.mark.parametrize("piece", [0, 9])
def test_stream_bare_error_object_after_data_fails(piece: int) -> None:
    # two data events, then Gemini's error object as bare JSON (no `data:`), pretty-printed
    translator = KIT.adapter().chat_stream(KIT.ctx())
    data = KIT.fixture("stream", "cancelled_bare.sse")
    step = piece or len(data)
    sent = b""
    with pytest.raises(UpstreamError) as info:
        for i in range(0, len(data), step):
            sent += translator.feed(data[i:i + step])
        translator.finish()
    assert b"The capital" in sent and b" of France is" in sent and b"[DONE]" not in sent
    assert (info.value.status, info.value.code, info.value.error_class) == (502, "cancelled", E.SERVER)


def test_stream_thought_parts_are_reasoning_deltas() -> None:
    chunks, _ = run_stream("thinking")
    deltas = [c["choices"][0]["delta"] for c in chunks]
    reasoning = "".join(d.get("reasoning_content") or "" for d in deltas)
    assert reasoning.startswith("**Multiplying**") and accumulate(chunks)["text"] == "6 times 7 is 42."
    assert not any("reasoning_content" in d and d.get("content") for d in deltas)


def test_stream_garbage_line_is_a_bad_response() -> None:
    translator = KIT.adapter().chat_stream(KIT.ctx())
    with pytest.raises(UpstreamError) as info:
        translator.feed(b"<html><body>502 Bad Gateway</body></html>\r\n\r\n")
    assert info.value.code == "upstream_bad_response"


def test_stream_lf_separators_and_unterminated_last_event() -> None:
    data = KIT.fixture("stream", "text.sse").replace(b"\r\n", b"\n").rstrip(b"\n")
    translator = KIT.adapter().chat_stream(KIT.ctx())
    out = translator.feed(data) + translator.finish()
    assert b"Paris." in out and out.endswith(b"data: [DONE]\n\n")


# --- errors --------------------------------------------------------------------------------------

EXPECTED_ERRORS = {
    # fixture: (client status, error class, code)
    "invalid_api_key_400": (502, E.AUTH, "upstream_auth_error"),
    "missing_api_key_403": (502, E.AUTH, "upstream_auth_error"),
    "rate_limit_429": (429, E.RATE_LIMITED, "resource_exhausted"),
    "overloaded_503": (503, E.OVERLOADED, "unavailable"),
    "internal_500": (500, E.SERVER, "internal"),
    "deadline_504": (504, E.TIMEOUT, "deadline_exceeded"),
    "not_found_404": (404, E.NOT_FOUND, "not_found"),
    "context_length_400": (400, E.CONTEXT_LENGTH, "context_length_exceeded"),
    "invalid_argument_400": (400, E.BAD_REQUEST, "invalid_argument"),
    "location_400": (400, E.BAD_REQUEST, "failed_precondition"),
}


def test_every_error_fixture_has_an_expectation() -> None:
    assert_error_fixtures_covered(ERRORS, EXPECTED_ERRORS)


@pytest.mark.parametrize("name", sorted(EXPECTED_ERRORS))
def test_error_mapping(name: str) -> None:
    case, err = KIT.error(name)
    status, cls, code = EXPECTED_ERRORS[name]
    assert (err.status, err.error_class, err.code) == (status, cls, code)
    assert err.provider == "gemini"
    if cls == E.AUTH:
        assert "API key" not in err.message  # never echo the provider's text about credentials
    else:
        assert case["body"]["error"]["message"][:30] in err.message


def test_rate_limit_retry_delay_becomes_retry_after() -> None:
    case = orjson.loads(KIT.fixture("errors", "rate_limit_429.json"))
    err = KIT.adapter().error(429, {}, orjson.dumps(case["body"]), KIT.ctx())
    assert err.retry_after == 37
    assert err.response_headers()["retry-after"] == "37"
    err = KIT.adapter().error(429, {"Retry-After": "5"}, orjson.dumps(case["body"]), KIT.ctx())
    assert err.retry_after == 5  # a real header wins


def test_error_body_as_array_and_garbage() -> None:
    body = orjson.dumps([{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}])
    assert KIT.adapter().error(503, {}, body, KIT.ctx()).error_class == E.OVERLOADED
    err = KIT.adapter().error(502, {}, b"<html>bad gateway</html>", KIT.ctx())
    assert err.status == 502 and err.error_class == E.SERVER


# --- embeddings ----------------------------------------------------------------------------------


def test_embeddings_single_request_and_response() -> None:
    adapter = KIT.adapter(embedding_task_type="RETRIEVAL_DOCUMENT")
    c = KIT.ctx("text-embedding-004")
    req = adapter.embeddings_request({"model": "e", "input": "hello", "dimensions": 8}, c)
    assert req.url == "https://generativelanguage.googleapis.com/v1beta/models/text-embedding-004:embedContent"
    assert req.headers["x-goog-api-key"] == KEY
    assert orjson.loads(req.body) == {"content": {"parts": [{"text": "hello"}]}, "taskType": "RETRIEVAL_DOCUMENT",
                                      "outputDimensionality": 8}
    out = orjson.loads(adapter.embeddings_response(200, KIT.fixture("embeddings", "single.json"), c))
    CreateEmbeddingResponse.model_validate(out)
    assert out["data"][0]["embedding"][:2] == [0.0131, -0.0087]
    assert out["model"] == "text-embedding-004"


def test_embeddings_batch_base64() -> None:
    adapter = KIT.adapter()
    c = KIT.ctx("gemini-embedding-001")
    req = adapter.embeddings_request({"input": ["a", "b"], "encoding_format": "base64"}, c)
    assert req.url.endswith("/models/gemini-embedding-001:batchEmbedContents")
    assert orjson.loads(req.body) == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}}]}
    out = orjson.loads(adapter.embeddings_response(200, KIT.fixture("embeddings", "batch.json"), c))
    assert [d["index"] for d in out["data"]] == [0, 1]
    raw = base64.b64decode(out["data"][1]["embedding"])
    values = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert values[1] == pytest.approx(0.0402, rel=1e-6)
    # another call without base64 on a fresh context gets floats
    plain = orjson.loads(adapter.embeddings_response(200, KIT.fixture("embeddings", "batch.json"), KIT.ctx("m")))
    assert isinstance(plain["data"][0]["embedding"], list)


@pytest.mark.parametrize("body, param", [
    ({"input": [1, 2, 3]}, "input[0]"),
    ({"input": []}, "input"),
    ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
])
def test_embeddings_rejects(body: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as info:
        KIT.adapter().embeddings_request(body, KIT.ctx("text-embedding-004"))
    assert info.value.status == 400 and info.value.param == param

"""`ollama` adapter (native /api/chat + /api/embed, and api: openai): goldens, NDJSON stream, errors."""

from __future__ import annotations

import base64
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion

from serve_app import errors as E
from serve_app.errors import GatewayError, UpstreamError
from tests.support.mockservers.ollama import check_chat
from tests.support.mockservers.openai_like import assemble, parse_sse
from tests.support.providers import ProviderKit, strict_chunks

KIT = ProviderKit("ollama", name="local", model="llama3.2")
REQUESTS = KIT.paths("requests/*.json")

completion = KIT.completion


# --- requests ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", REQUESTS, ids=[p.stem for p in REQUESTS])
def test_request_golden(path: Path) -> None:
    case, req = KIT.check_request_golden(path)
    sent = orjson.loads(req.body)
    assert sent == case["upstream"]
    assert check_chat(sent) is None  # what Ollama's own decoding accepts


@pytest.mark.parametrize("body, code", [
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]}]},
     "unsupported_image_url"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]},
     "unsupported_content"),
    ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "unsupported_parameter"),
])
def test_clear_400s(body: dict[str, Any], code: str) -> None:
    with pytest.raises(GatewayError) as exc:
        KIT.adapter().chat_request(body, KIT.ctx(), False)
    assert exc.value.status == 400 and exc.value.code == code


def test_named_tool_choice_sends_only_that_tool_and_reasoning_effort_sets_think() -> None:
    tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}} for n in ("a", "b")]
    sent = orjson.loads(KIT.adapter(api_key="proxy-token").chat_request(
        {"messages": [{"role": "user", "content": "x"}], "tools": tools, "reasoning_effort": "high",
         "tool_choice": {"type": "function", "function": {"name": "b"}}}, KIT.ctx(), True).body)
    assert [t["function"]["name"] for t in sent["tools"]] == ["b"]
    assert sent["think"] == "high"


def test_auth_header_only_with_key() -> None:
    assert "authorization" not in KIT.adapter().chat_request({"messages": []}, KIT.ctx(), False).headers
    assert KIT.adapter(api_key="tok").chat_request({"messages": []}, KIT.ctx(), False).headers["authorization"] == "Bearer tok"


# --- responses -----------------------------------------------------------------------------------

def test_chat() -> None:
    out = completion("chat.json")
    assert out["id"] == "chatcmpl-req-1" and out["created"] == 1700000000 and out["model"] == "llama3.2"
    assert out["choices"][0]["message"]["content"] == "The capital of France is Paris."
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"] == {"prompt_tokens": 26, "completion_tokens": 8, "total_tokens": 34}


def test_tool_call_arguments_object_to_string() -> None:
    out = completion("tools.json")
    call = out["choices"][0]["message"]["tool_calls"][0]
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    assert out["choices"][0]["message"]["content"] is None
    assert orjson.loads(call["function"]["arguments"]) == {"location": "Paris, France", "unit": "celsius"}
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert completion("tools.json")["choices"][0]["message"]["tool_calls"][0]["id"] == call["id"]  # stable


def test_parallel_tool_calls_keep_ollama_ids_and_thinking() -> None:
    msg = completion("parallel_tools.json")["choices"][0]["message"]
    assert [(c["id"], c["function"]["name"]) for c in msg["tool_calls"]] == [("call_w3l9x2", "get_weather"), ("call_t8q1v5", "get_time")]
    assert msg["reasoning_content"] == "I need the weather and the time."


def test_json_mode_and_length() -> None:
    assert orjson.loads(completion("json_mode.json")["choices"][0]["message"]["content"]) == {"city": "Paris", "country": "France"}
    assert completion("length.json")["choices"][0]["finish_reason"] == "length"


def test_embeddings_native() -> None:
    c = KIT.ctx("all-minilm")
    req = KIT.adapter(keep_alive=0).embeddings_request({"model": "all-minilm", "input": "hello", "dimensions": 4}, c)
    assert req.url == "http://127.0.0.1:11434/api/embed"
    assert orjson.loads(req.body) == {"model": "all-minilm", "input": ["hello"], "dimensions": 4, "keep_alive": 0}
    out = CreateEmbeddingResponse.model_validate(orjson.loads(
        KIT.adapter().embeddings_response(200, (KIT.fix / "embeddings.json").read_bytes(), c)))
    assert [d.index for d in out.data] == [0, 1] and out.usage.prompt_tokens == 8
    assert out.data[0].embedding[0] == pytest.approx(0.010071029)
    c64 = KIT.ctx("all-minilm")
    KIT.adapter().embeddings_request({"model": "all-minilm", "input": ["a", "b"], "encoding_format": "base64"}, c64)
    b64 = orjson.loads(KIT.adapter().embeddings_response(200, (KIT.fix / "embeddings.json").read_bytes(), c64))
    assert struct.unpack("<4f", base64.b64decode(b64["data"][1]["embedding"]))[1] == pytest.approx(0.06042469)
    with pytest.raises(GatewayError):
        KIT.adapter().embeddings_request({"model": "m", "input": [[1, 2, 3]]}, c)


# --- streams -------------------------------------------------------------------------------------

@pytest.mark.parametrize("piece", [1, 13, 0])
def test_stream_ndjson(piece: int) -> None:
    out, tr = KIT.stream((KIT.fix / "chat_stream.ndjson").read_bytes(), include_usage=True, piece=piece)
    chunks = strict_chunks(out)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    merged = assemble(chunks)
    assert merged["content"] == "The capital of France is Paris." and merged["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {"prompt_tokens": 26, "completion_tokens": 8, "total_tokens": 34}
    assert tr.usage["total_tokens"] == 34


def test_stream_no_usage_chunk_unless_asked() -> None:
    out, tr = KIT.stream((KIT.fix / "chat_stream.ndjson").read_bytes())
    assert not any(c.get("usage") for c in strict_chunks(out)) and tr.usage["prompt_tokens"] == 26


def test_stream_tool_calls() -> None:
    merged = assemble(strict_chunks(KIT.stream((KIT.fix / "tools_stream.ndjson").read_bytes())[0]))
    assert [c["name"] for c in merged["tool_calls"]] == ["get_weather"]
    assert merged["finish_reason"] == "tool_calls"


def test_stream_parallel_tool_calls_indexed_in_order() -> None:
    chunks = strict_chunks(KIT.stream((KIT.fix / "parallel_tools_stream.ndjson").read_bytes(), piece=7)[0])
    merged = assemble(chunks)
    assert [(c["id"], c["name"]) for c in merged["tool_calls"]] == [("call_w3l9x2", "get_weather"), ("call_t8q1v5", "get_time")]
    assert chunks[0]["choices"][0]["delta"]["reasoning_content"] == "I need the weather"


def test_stream_json_mode() -> None:
    assert orjson.loads(assemble(strict_chunks(KIT.stream((KIT.fix / "json_mode_stream.ndjson").read_bytes())[0]))["content"])["city"] == "Paris"


def test_stream_last_line_without_newline() -> None:
    data = (KIT.fix / "chat_stream.ndjson").read_bytes().rstrip(b"\n")
    assert assemble(strict_chunks(KIT.stream(data)[0]))["finish_reason"] == "stop"


def test_stream_error_line() -> None:
    out, tr = KIT.stream((KIT.fix / "stream_error.ndjson").read_bytes())
    events, done = parse_sse(out)
    assert not done and "unexpected EOF" in events[-1]["error"]["message"]
    assert tr.errored


def test_stream_cut() -> None:
    with pytest.raises(UpstreamError) as exc:
        KIT.stream((KIT.fix / "stream_cut.ndjson").read_bytes())
    assert exc.value.error_class == E.STREAM_CUT


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, status, error_class, code", [
    ("not_found", 404, E.NOT_FOUND, "model_not_found"),
    ("bad_request", 400, E.BAD_REQUEST, None),
    ("server", 500, E.SERVER, None),
])
def test_errors(name: str, status: int, error_class: str, code: str | None) -> None:
    case = orjson.loads((KIT.fix / "errors" / f"{name}.json").read_bytes())
    err = KIT.adapter().error(case["status"], {}, orjson.dumps(case["body"]), KIT.ctx())
    assert (err.status, err.error_class, err.code) == (status, error_class, code)
    assert case["body"]["error"] in err.message


# --- api: openai -----------------------------------------------------------------------------------

def test_openai_api_mode() -> None:
    adapter = KIT.adapter(api="openai", base_url="http://10.0.0.5:11434/")
    req = adapter.chat_request({"messages": [{"role": "user", "content": "hi"}]}, KIT.ctx(), True)
    assert req.url == "http://10.0.0.5:11434/v1/chat/completions"
    assert orjson.loads(req.body)["stream_options"] == {"include_usage": True}
    assert adapter.embeddings_request({"model": "m", "input": "x"}, KIT.ctx("m")).url == "http://10.0.0.5:11434/v1/embeddings"
    out = ChatCompletion.model_validate(orjson.loads(adapter.chat_response(200, (KIT.fix / "openai" / "chat.json").read_bytes(), KIT.ctx())))
    assert out.choices[0].message.content == "The capital of France is Paris."
    merged = assemble(strict_chunks(KIT.stream((KIT.fix / "openai" / "tools_stream.sse").read_bytes(), include_usage=True, api="openai")[0]))
    assert merged["tool_calls"][0]["name"] == "get_weather" and merged["usage"]["total_tokens"] == 155

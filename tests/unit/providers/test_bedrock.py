"""`bedrock` (Converse) adapter: request goldens, SigV4 signing, event-stream decoding, response /
stream / error / embeddings fixtures. No network, no Ray."""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import hashlib
import hmac
import re
import struct
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from openai.types import CreateEmbeddingResponse

from deployments.providers import eventstream, registry
from serve_app import errors as E
from serve_app.errors import GatewayError, UpstreamError
from tests.support.mockservers.bedrock import encode_transcript
from tests.support.providers import ProviderKit, accumulate, assert_error_fixtures_covered, done_chunks

AK, SK = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NOW = dt.datetime(2024, 5, 6, 7, 8, 9)
SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"
KIT = ProviderKit("bedrock", name="aws", model=SONNET,
                  config={"region": "us-east-1", "access_key_id": AK, "secret_access_key": SK})
REQUESTS = KIT.paths("requests/*.json")
CHATS = KIT.paths("chat/*.json")
STREAMS = KIT.paths("stream/*.json")
ERRORS = KIT.paths("errors/*.json")


def make_adapter(**extra: Any):
    adapter = KIT.adapter(**extra)
    adapter.clock = lambda: NOW  # fixed signing time
    return adapter


# --- requests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", REQUESTS, ids=[p.stem for p in REQUESTS])
def test_request_golden(path: Path) -> None:
    case = orjson.loads(path.read_bytes())
    body = copy.deepcopy(case["openai"])
    req = make_adapter(**case.get("config", {})).chat_request(body, KIT.ctx(case["model"]), stream=case["stream"])
    assert body == case["openai"], "the adapter must not mutate the request (fallback reuses it)"
    assert req.method == "POST"
    assert req.url == case["url"]
    assert orjson.loads(req.body) == case["bedrock"]
    assert req.headers["content-type"] == "application/json"
    assert req.headers["accept"] == ("application/vnd.amazon.eventstream" if case["stream"] else "application/json")


@pytest.mark.parametrize("body, param", [
    ({"n": 2, "messages": [{"role": "user", "content": "hi"}]}, "n"),
    ({"logprobs": True, "messages": [{"role": "user", "content": "hi"}]}, "logprobs"),
    ({"messages": [{"role": "system", "content": "only system"}]}, "messages"),
    ({"messages": [{"role": "user", "content": ""}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "s3://b/k.tiff"}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]},
     "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]},
     "messages[1].tool_calls[0].function.arguments"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "user", "content": "x"}], "tool_choice": "required"}, "tool_choice"),
    ({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "yaml"}}, "response_format.type"),
])
def test_request_rejects(body: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as info:
        make_adapter().chat_request(body, KIT.ctx(), stream=False)
    assert info.value.status == 400
    assert info.value.param == param


def test_http_image_url_message_is_explicit() -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}]}
    with pytest.raises(GatewayError) as info:
        make_adapter().chat_request(body, KIT.ctx(), stream=False)
    assert info.value.code == "unsupported_image_url"
    assert "base64 data URL" in info.value.message and "does not fetch" in info.value.message


def test_model_segment_encoding() -> None:
    from deployments.providers.bedrock import model_segment

    assert model_segment("anthropic.claude-3-haiku-20240307-v1:0") == "anthropic.claude-3-haiku-20240307-v1%3A0"
    assert model_segment("arn:aws:bedrock:eu-west-1:1:inference-profile/eu.x") == \
        "arn%3Aaws%3Abedrock%3Aeu-west-1%3A1%3Ainference-profile%2Feu.x"
    # the same bytes botocore's serializer puts in `{modelId}`
    from botocore.utils import percent_encode

    for model in ("us.meta.llama3-1-70b-instruct-v1:0", "arn:aws:bedrock:us-east-1:123:custom-model/a.b/xyz"):
        assert model_segment(model) == percent_encode(model)


# --- SigV4 ---------------------------------------------------------------------------------------

AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240506/us-east-1/bedrock/aws4_request, "
                  r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


def reference_signature(method: str, url: str, headers: dict[str, str], body: bytes, secret: str,
                        region: str = "us-east-1") -> tuple[str, str]:
    """SigV4 written out from the AWS reference (independent of botocore): (signed headers, signature)."""
    scheme_host, path = url.split("://", 1)[1].split("/", 1)
    host = scheme_host
    # non-S3 services: every path segment is URI-encoded again (the wire form is already encoded once)
    canonical_path = "/" + "/".join(quote(seg, safe="-_.~") for seg in path.split("/"))
    signed = {k.lower(): v.strip() for k, v in headers.items() if k.lower() != "authorization"}
    signed["host"] = host
    names = sorted(signed)
    canonical = "\n".join([method, canonical_path, "", "".join(f"{n}:{signed[n]}\n" for n in names), ";".join(names),
                           hashlib.sha256(body).hexdigest()])
    stamp = signed["x-amz-date"]
    scope = f"{stamp[:8]}/{region}/bedrock/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (stamp[:8], region, "bedrock", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return ";".join(names), hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_sigv4_header_shape_and_signature() -> None:
    req = make_adapter().chat_request({"messages": [{"role": "user", "content": "hi"}]}, KIT.ctx(), stream=False)
    assert req.headers["X-Amz-Date"] == "20240506T070809Z"
    m = AUTH.match(req.headers["Authorization"])
    assert m, req.headers["Authorization"]
    assert m.group(1) == "accept;content-type;host;x-amz-date"
    signed, signature = reference_signature("POST", req.url, req.headers, req.body, SK)
    assert (m.group(1), m.group(2)) == (signed, signature)
    assert "%3A0/converse" in req.url  # and the canonical path double-encodes it: %253A0


def test_sigv4_matches_plain_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = make_adapter().chat_request({"messages": [{"role": "user", "content": "hi"}]}, KIT.ctx(), stream=True)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: NOW)
    plain = AWSRequest(method="POST", url=req.url, data=req.body,
                       headers={"content-type": "application/json", "accept": "application/vnd.amazon.eventstream"})
    SigV4Auth(Credentials(AK, SK), "bedrock", "us-east-1").add_auth(plain)
    assert plain.headers["Authorization"] == req.headers["Authorization"]


def test_sigv4_session_token_is_signed() -> None:
    adapter = make_adapter(session_token="FQoGZXIvYXdzEXAMPLETOKEN")
    req = adapter.chat_request({"messages": [{"role": "user", "content": "hi"}]}, KIT.ctx(), stream=False)
    assert req.headers["X-Amz-Security-Token"] == "FQoGZXIvYXdzEXAMPLETOKEN"
    m = AUTH.match(req.headers["Authorization"])
    assert m and m.group(1) == "accept;content-type;host;x-amz-date;x-amz-security-token"
    assert reference_signature("POST", req.url, req.headers, req.body, SK)[1] == m.group(2)


def test_sigv4_changes_with_clock_and_body() -> None:
    adapter = make_adapter()
    one = adapter.chat_request({"messages": [{"role": "user", "content": "hi"}]}, KIT.ctx(), False).headers["Authorization"]
    two = adapter.chat_request({"messages": [{"role": "user", "content": "ho"}]}, KIT.ctx(), False).headers["Authorization"]
    adapter.clock = lambda: NOW + dt.timedelta(seconds=1)
    three = adapter.chat_request({"messages": [{"role": "user", "content": "hi"}]}, KIT.ctx(), False).headers["Authorization"]
    assert len({one, two, three}) == 3


def test_bearer_api_key_instead_of_sigv4() -> None:
    spec = registry.get("bedrock")
    adapter = spec.adapter(spec.config_model.model_validate({"name": "aws", "type": "bedrock", "region": "eu-west-3",
                                                             "api_key": "ABSKexample"}))
    req = adapter.chat_request({"messages": [{"role": "user", "content": "hi"}]}, KIT.ctx(), False)
    assert req.url.startswith("https://bedrock-runtime.eu-west-3.amazonaws.com/model/")
    assert req.headers["authorization"] == "Bearer ABSKexample"
    assert "X-Amz-Date" not in req.headers


def test_standard_credential_chain_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SK)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    spec = registry.get("bedrock")
    adapter = spec.adapter(spec.config_model.model_validate({"name": "aws", "type": "bedrock"}))
    adapter.clock = lambda: NOW
    asyncio.run(adapter.ready())  # the chain is resolved in a thread, awaited by the stage before signing
    req = adapter.chat_request({"messages": [{"role": "user", "content": "hi"}]}, KIT.ctx(), False)
    assert req.url.startswith("https://bedrock-runtime.ap-south-1.amazonaws.com/")
    assert "Credential=AKIDFROMENV/20240506/ap-south-1/bedrock/aws4_request" in req.headers["Authorization"]


def test_no_credentials_is_an_auth_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    spec = registry.get("bedrock")
    adapter = spec.adapter(spec.config_model.model_validate({"name": "aws", "type": "bedrock", "region": "us-east-1"}))
    with pytest.raises(UpstreamError) as info:
        asyncio.run(adapter.ready())
    assert info.value.status == 502 and info.value.error_class == E.AUTH and info.value.code == "upstream_auth_error"
    assert "has no AWS credentials" in info.value.message
    with pytest.raises(UpstreamError) as info:  # signing without resolved credentials is refused too
        adapter.chat_request({"messages": [{"role": "user", "content": "hi"}]}, KIT.ctx(), False)
    assert info.value.code == "upstream_auth_error"


def test_config_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    from serve_app.config import ConfigError, parse_config

    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(ConfigError, match="providers.aws: .*region is required"):
        parse_config({"providers": {"aws": {"type": "bedrock"}}})
    with pytest.raises(ConfigError, match="go together"):
        parse_config({"providers": {"aws": {"type": "bedrock", "region": "us-east-1", "access_key_id": "AK"}}})
    cfg = parse_config({"providers": {"aws": {"type": "bedrock", "region": "us-west-2", "model": SONNET,
                                              "access_key_id": AK, "secret_access_key": SK}}})
    assert SK not in repr(cfg.providers["aws"]) and AK not in repr(cfg.providers["aws"])


# --- non-streamed responses ----------------------------------------------------------------------


def translate(name: str) -> dict[str, Any]:
    return KIT.completion("chat", f"{name}.json")


@pytest.mark.parametrize("path", [p for p in CHATS if p.stem not in ("malformed_tool_use", "guardrail")],
                         ids=lambda p: p.stem)
def test_every_chat_fixture_is_a_valid_completion(path: Path) -> None:
    out = translate(path.stem)
    assert (out["object"], out["created"], out["model"], out["id"]) == \
        ("chat.completion", 1700000000, SONNET, "chatcmpl-req-1")


def test_text_and_usage() -> None:
    out = translate("text")
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "The capital of France is Paris.",
                                            "refusal": None}
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"] == {"prompt_tokens": 14, "completion_tokens": 8, "total_tokens": 22,
                            "prompt_tokens_details": {"cached_tokens": 0}}


def test_tool_use() -> None:
    choice = translate("tool_use")["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "I'll look up the weather in Paris."
    assert choice["message"]["tool_calls"] == [{"id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city":"Paris","unit":"celsius"}'}}]


def test_parallel_tool_calls() -> None:
    msg = translate("parallel_tools")["choices"][0]["message"]
    assert msg["content"] is None
    assert [c["id"] for c in msg["tool_calls"]] == ["tooluse_Paris01", "tooluse_Tokyo02"]


def test_cached_usage() -> None:
    assert translate("cached_usage")["usage"] == {"prompt_tokens": 20 + 2048 + 1028, "completion_tokens": 9,
                                                  "total_tokens": 3105, "prompt_tokens_details": {"cached_tokens": 2048}}


def test_reasoning_block_is_reasoning_content_not_content() -> None:
    message = translate("reasoning")["choices"][0]["message"]
    assert message["content"] == "42"
    assert message["reasoning_content"] == "The user asks 6*7. That is 42."
    assert message["thinking_blocks"] == [{"type": "thinking", "thinking": "The user asks 6*7. That is 42.",
                                           "signature": "EqQBCkgIARABGAIiQL0"}]


def test_request_thinking_blocks_become_reasoning_content_first() -> None:
    body = {"messages": [{"role": "user", "content": "q"},
                         {"role": "assistant", "content": "42", "thinking_blocks": [
                             {"type": "thinking", "thinking": "6*7", "signature": "sig"},
                             {"type": "redacted_thinking", "data": "AAEC"}]},
                         {"role": "user", "content": "again"}],
            "thinking": {"type": "enabled", "budget_tokens": 1024}}
    sent = orjson.loads(make_adapter().chat_request(body, KIT.ctx(), False).body)
    assert sent["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "6*7", "signature": "sig"}}},
        {"reasoningContent": {"redactedContent": "AAEC"}}, {"text": "42"}]
    assert sent["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 1024}}


def test_guardrail_blocking_the_prompt_is_the_clients_refusal() -> None:
    with pytest.raises(UpstreamError) as info:
        translate("guardrail")
    err = info.value
    assert (err.status, err.code, err.error_class) == (400, "content_filter", E.CONTENT_FILTER)
    assert "guardrail_intervened: VIOLENCE" in err.message and "cannot answer" in err.message


@pytest.mark.parametrize("name, reason", [("guardrail_output", "content_filter"),
                                          ("content_filtered", "content_filter"),
                                          ("max_tokens", "length"), ("context_window", "length"),
                                          ("json_schema", "stop"), ("vision", "stop")])
def test_stop_reasons(name: str, reason: str) -> None:
    assert translate(name)["choices"][0]["finish_reason"] == reason


def test_malformed_tool_use_is_an_error() -> None:
    with pytest.raises(UpstreamError) as info:
        translate("malformed_tool_use")
    assert info.value.status == 502 and info.value.code == "upstream_bad_response" and info.value.retryable


# --- event stream --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.stem)
def test_binary_transcripts_match_their_json(path: Path) -> None:
    spec = orjson.loads(path.read_bytes())
    data = path.with_suffix(".bin").read_bytes()
    assert data == encode_transcript(spec), "regenerate with: python -m tests.support.mockservers.bedrock"
    if spec.get("truncate"):
        return
    # botocore's own decoder (an independent implementation) reads the same messages, CRCs included
    from botocore.eventstream import EventStreamBuffer

    buf = EventStreamBuffer()
    buf.add_data(data)
    theirs = [(m.headers, m.payload) for m in buf]
    ours = [(m.headers, m.payload) for m in eventstream.Decoder().feed(data)]
    assert ours == theirs and len(ours) == len(spec["messages"])


def test_decoder_incremental_and_crc_checks() -> None:
    msg = eventstream.encode_message({"flag": True, "off": False, "n": -7, "raw": b"\x00\x01", "s": "é"}, b'{"a":1}')
    dec = eventstream.Decoder()
    got = []
    for b in msg + msg:
        got += dec.feed(bytes([b]))
    assert len(got) == 2 and dec.pending == 0
    assert got[0].headers == {"flag": True, "off": False, "n": -7, "raw": b"\x00\x01", "s": "é"}
    assert got[0].payload == b'{"a":1}'
    bad = bytearray(msg)
    bad[-1] ^= 0xFF
    with pytest.raises(eventstream.EventStreamError, match="message CRC"):
        eventstream.Decoder().feed(bytes(bad))
    bad = bytearray(msg)
    bad[3] ^= 0x01
    with pytest.raises(eventstream.EventStreamError, match="prelude CRC"):
        eventstream.Decoder().feed(bytes(bad))


def run_stream(name: str, include_usage: bool = False, piece: int = 0) -> list[dict[str, Any]]:
    out, _ = KIT.stream_fixture("stream", f"{name}.bin", include_usage=include_usage, piece=piece)
    return done_chunks(out)


@pytest.mark.parametrize("piece", [0, 1, 13])
def test_stream_text(piece: int) -> None:
    chunks = run_stream("text", piece=piece)
    acc = accumulate(chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert acc["roles"] == ["assistant"] and acc["text"] == "The capital of France is Paris." and acc["finish"] == "stop"
    assert all(c["id"] == "chatcmpl-req-1" and c["model"] == SONNET for c in chunks)
    assert not any("usage" in c for c in chunks)


@pytest.mark.parametrize("piece", [0, 7])
def test_stream_tool_use(piece: int) -> None:
    acc = accumulate(run_stream("tool_use", piece=piece))
    assert acc["text"] == "I'll look up the weather."
    assert acc["calls"] == {0: {"id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "get_weather",
                                "arguments": '{"city": "Paris", "unit": "celsius"}'}}
    assert acc["finish"] == "tool_calls"


def test_stream_parallel_tools_keyed_by_index() -> None:
    acc = accumulate(run_stream("parallel_tools"))
    assert [acc["calls"][i]["id"] for i in (0, 1)] == ["tooluse_Paris01", "tooluse_Tokyo02"]
    assert [orjson.loads(acc["calls"][i]["arguments"]) for i in (0, 1)] == [{"city": "Paris"}, {"city": "Tokyo"}]


def test_stream_usage_chunk_only_when_asked() -> None:
    chunks = run_stream("cached_usage", include_usage=True)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 2048}
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    translator = make_adapter().chat_stream(KIT.ctx())
    out = translator.feed(KIT.fixture("stream", "cached_usage.bin"))
    assert b'"usage"' not in out and translator.usage["prompt_tokens"] == 3096


def test_stream_reasoning_guardrail_json() -> None:
    chunks = run_stream("reasoning")
    assert accumulate(chunks)["text"] == "42"
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "6*7 is 42."
    assert [d["thinking_blocks"] for d in deltas if "thinking_blocks" in d] == [
        [{"type": "thinking", "thinking": "6*7 is 42.", "signature": "EqQBCkgIARABGAIiQL0"}]]
    acc = accumulate(run_stream("guardrail"))
    assert acc["finish"] == "content_filter"
    assert orjson.loads(accumulate(run_stream("json_schema"))["text"])["born"] == 1815


@pytest.mark.parametrize("name", ["cut", "cut_midframe"])
def test_stream_cut(name: str) -> None:
    translator = make_adapter().chat_stream(KIT.ctx())
    out = translator.feed(KIT.fixture("stream", f"{name}.bin"))
    assert b"The capital" in out and b"[DONE]" not in out
    with pytest.raises(UpstreamError) as info:
        translator.finish()
    assert info.value.error_class == E.STREAM_CUT


@pytest.mark.parametrize("name, status, cls", [("exception_throttling", 429, E.RATE_LIMITED),
                                               ("exception_model", 502, E.SERVER)])
def test_stream_exceptions(name: str, status: int, cls: str) -> None:
    translator = make_adapter().chat_stream(KIT.ctx())
    out = translator.feed(KIT.fixture("stream", f"{name}.bin"))
    assert b'"content":"The' in out  # the deltas before the exception are delivered first
    with pytest.raises(UpstreamError) as info:
        translator.finish()
    assert (info.value.status, info.value.error_class) == (status, cls)
    with pytest.raises(UpstreamError):
        translator.feed(b"")  # and it stays failed
    # an exception alone in a chunk raises at once
    data = KIT.fixture("stream", f"{name}.bin")
    messages = eventstream.Decoder().feed(data)
    head = sum(len(eventstream.encode_message(m.headers, m.payload)) for m in messages[:-1])
    translator = make_adapter().chat_stream(KIT.ctx())
    translator.feed(data[:head])
    with pytest.raises(UpstreamError) as info:
        translator.feed(data[head:])
    assert info.value.status == status


def test_stream_garbage_is_a_cut() -> None:
    with pytest.raises(UpstreamError) as info:
        make_adapter().chat_stream(KIT.ctx()).feed(b"data: {}\n\n" * 4)
    assert info.value.error_class == E.STREAM_CUT


# --- errors --------------------------------------------------------------------------------------

EXPECTED_ERRORS = {
    "validation_400": (400, E.BAD_REQUEST, "ValidationException"),
    "context_length_400": (400, E.CONTEXT_LENGTH, "context_length_exceeded"),
    "body_type_only_400": (400, E.CONTEXT_LENGTH, "context_length_exceeded"),
    "quota_400": (429, E.RATE_LIMITED, "quota_exceeded"),
    "access_denied_403": (502, E.AUTH, "upstream_auth_error"),
    "unrecognized_client_403": (502, E.AUTH, "upstream_auth_error"),
    "invalid_signature_403": (502, E.AUTH, "upstream_auth_error"),
    "not_found_404": (404, E.NOT_FOUND, "model_not_found"),
    "throttling_429": (429, E.RATE_LIMITED, "rate_limit_exceeded"),
    "model_not_ready_429": (503, E.OVERLOADED, "model_not_ready"),
    "model_timeout_408": (504, E.TIMEOUT, "upstream_timeout"),
    "model_error_424": (502, E.SERVER, "model_error"),
    "internal_500": (500, E.SERVER, "internal_error"),
    "unavailable_503": (503, E.OVERLOADED, "upstream_overloaded"),
}


def test_every_error_fixture_has_an_expectation() -> None:
    assert_error_fixtures_covered(ERRORS, EXPECTED_ERRORS)


@pytest.mark.parametrize("name", sorted(EXPECTED_ERRORS))
def test_error_mapping(name: str) -> None:
    case, err = KIT.error(name)
    assert (err.status, err.error_class, err.code) == EXPECTED_ERRORS[name]
    message = case["body"].get("message") or case["body"].get("Message")
    if err.error_class == E.AUTH:
        assert message not in err.message
    else:
        assert message in err.message


def test_throttling_retry_after_header_is_kept() -> None:
    _, err = KIT.error("throttling_429", **{"Retry-After": "3"})
    assert err.retry_after == 3 and err.retryable


# --- embeddings ----------------------------------------------------------------------------------


def test_titan_embeddings() -> None:
    adapter = make_adapter()
    c = KIT.ctx("amazon.titan-embed-text-v2:0")
    req = adapter.embeddings_request({"input": "hello world", "dimensions": 256}, c)
    assert req.url == "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.titan-embed-text-v2%3A0/invoke"
    assert orjson.loads(req.body) == {"inputText": "hello world", "dimensions": 256}
    assert AUTH.match(req.headers["Authorization"])
    out = orjson.loads(adapter.embeddings_response(200, KIT.fixture("embeddings", "titan.json"), c))
    CreateEmbeddingResponse.model_validate(out)
    assert out["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
    assert out["data"][0]["embedding"][0] == 0.0131


@pytest.mark.parametrize("name", ["cohere", "cohere_by_type"])
def test_cohere_embeddings_base64(name: str) -> None:
    adapter = make_adapter(embedding_input_type="search_query")
    c = KIT.ctx("cohere.embed-english-v3")
    req = adapter.embeddings_request({"input": ["hello world", "goodbye"], "encoding_format": "base64"}, c)
    assert orjson.loads(req.body) == {"texts": ["hello world", "goodbye"], "input_type": "search_query"}
    out = orjson.loads(adapter.embeddings_response(200, KIT.fixture("embeddings", f"{name}.json"), c))
    raw = base64.b64decode(out["data"][1]["embedding"])
    assert struct.unpack("<8f", raw)[1] == pytest.approx(0.0402, rel=1e-6)


@pytest.mark.parametrize("model, body, param", [
    ("amazon.titan-embed-text-v2:0", {"input": ["a", "b"]}, "input"),
    ("amazon.titan-embed-text-v2:0", {"input": [[1, 2]]}, "input"),
    ("meta.llama3-8b-instruct-v1:0", {"input": "a"}, "model"),
])
def test_embeddings_rejects(model: str, body: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as info:
        make_adapter().embeddings_request(body, KIT.ctx(model))
    assert info.value.status == 400 and info.value.param == param

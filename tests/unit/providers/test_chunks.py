"""The shared SSE reader (chunks.read_event) and the streams that use it without a provider of their
own: the `openai` relay and the OpenAI-like translator (one provider type stands for them all)."""

from __future__ import annotations

import orjson
import pytest

from deployments.providers.chunks import DONE_DATA, error_status, read_event
from serve_app.errors import UpstreamError
from tests.support.providers import ProviderKit, feed

CHUNK = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {"content": "an error-free answer"}, "finish_reason": None}]}
ERROR = {"error": {"message": "boom", "type": "server_error", "param": None, "code": None}}


@pytest.mark.parametrize("raw, expected", [
    (b"data: " + orjson.dumps(CHUNK), (None, CHUNK, None)),
    (b'event: message_start\ndata:{"type":"message_start"}',
     (b"message_start", {"type": "message_start"}, None)),
    (b": keep-alive", (None, None, None)),
    (b"data: [DONE]", (None, DONE_DATA, None)),
    (b"id: 7\nretry: 100\ndata: " + orjson.dumps(CHUNK), (None, CHUNK, None)),
    (b"data: " + orjson.dumps(ERROR), (None, None, ERROR)),
    (b"data: [" + orjson.dumps(ERROR) + b"]", (None, None, ERROR)),
    (b'event: error\ndata: {"message": "overloaded"}',
     (b"error", None, {"error": {"message": "overloaded"}})),
    (b"event: error\ndata: overloaded", (b"error", None, {"error": {"message": "overloaded"}})),
    (b'{\n  "error": {\n    "code": 499,\n    "status": "CANCELLED"\n  }\n}',
     (None, None, {"error": {"code": 499, "status": "CANCELLED"}})),
    (b'{"detail": "upstream timeout"}', (None, None, {"error": {"detail": "upstream timeout"}})),
])
def test_read_event(raw: bytes, expected: tuple) -> None:
    assert read_event(raw, "p") == expected


@pytest.mark.parametrize("raw", [b"data: {not json", b"<html><body>502 Bad Gateway</body></html>"])
def test_read_event_rejects_what_no_client_could_read(raw: bytes) -> None:
    with pytest.raises(UpstreamError) as info:
        read_event(raw, "p")
    assert info.value.code == "upstream_bad_response" and info.value.status == 502


@pytest.mark.parametrize("err, status", [
    ({"error": {"code": 429}}, 429), ({"error": {"status_code": 503}}, 503), ({"error": {"code": 99}}, 500),
    ({"error": {"type": "rate_limit_error"}}, 429), ({"error": {"type": "invalid_request_error"}}, 400),
    ({"error": {"type": "overloaded_error"}}, 503), ({"error": "text"}, 500),
])
def test_error_status(err: dict, status: int) -> None:
    assert error_status(err) == status


def _events(out: bytes) -> list[bytes]:
    return [e for e in out.replace(b"\r\n", b"\n").split(b"\n\n") if e]


OPENAI = ProviderKit("openai", "oai", "gpt-4.1", {"api_key": "k"})
COMPAT = ProviderKit("together", "tg", "m", {"api_key": "k"})


@pytest.mark.parametrize("kit", [OPENAI, COMPAT], ids=["openai-relay", "openai-compat"])
@pytest.mark.parametrize("failure, code", [
    (b"data: " + orjson.dumps(ERROR), None),
    (b'event: error\ndata: {"error": {"message": "slow down", "type": "rate_limit_error", '
     b'"code": "rate_limit"}}', "rate_limit"),
    (b'{"error": {"message": "bare", "code": 503}}', None),
])
@pytest.mark.parametrize("piece", [0, 5])
def test_one_error_event_and_nothing_after_it(kit: ProviderKit, failure: bytes, code: str | None,
                                              piece: int) -> None:
    event = b"data: " + orjson.dumps(CHUNK) + b"\n\n"
    data = event + failure + b"\n\n" + event + b"data: [DONE]\n\n"
    out, _ = kit.stream(data, piece=piece)
    events = _events(out)
    assert b"[DONE]" not in out and b"an error-free answer" in events[0]
    assert len(events) == 2, events
    err = orjson.loads(events[1][6:])["error"]
    assert err["code"] == code and err["message"]


def test_compat_stream_rejects_any_line_that_is_no_sse_event() -> None:
    # the relay's fast path only reads events that mention an error; the OpenAI-like types read all
    data = b"data: " + orjson.dumps(CHUNK) + b"\n\n<html>502</html>\n\ndata: [DONE]\n\n"
    events = _events(COMPAT.stream(data)[0])
    assert len(events) == 2 and orjson.loads(events[1][6:])["error"]["code"] == "upstream_bad_response"


def test_relay_fast_path_keeps_bytes_that_mention_no_error() -> None:
    data = b"data: " + orjson.dumps(CHUNK) + b"\n\n: ping\n\ndata: [DONE]\n\n"
    translator = OPENAI.adapter().chat_stream(OPENAI.ctx())
    assert feed(translator, data) == data

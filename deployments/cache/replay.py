"""Stored completion -> what the client asked for: a JSON body with a new id, or an SSE stream.

A hit on a streamed request is replayed from the ingress as a proper OpenAI stream: a role chunk,
content chunks (a few words each), tool-call chunks, the finish chunk, the usage chunk when the
client asked for `stream_options.include_usage`, then `data: [DONE]`.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import orjson

_PIECE = re.compile(r"\S*\s*")
PIECE_CHARS = 32


def new_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def hit_body(completion: dict[str, Any], response_id: str, created: int) -> bytes:
    """The stored completion as a fresh response: new id and creation time, original usage."""
    return orjson.dumps({**completion, "id": response_id, "created": created})


def split_text(text: str, size: int = PIECE_CHARS) -> list[str]:
    """Split into pieces of about `size` characters at word boundaries (concatenation == text)."""
    if len(text) <= size:
        return [text]
    pieces: list[str] = []
    cur = ""
    for word in _PIECE.findall(text):
        if not word:
            continue
        cur += word
        if len(cur) >= size:
            pieces.append(cur)
            cur = ""
    if cur:
        pieces.append(cur)
    return pieces


def _event(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def replay_stream(completion: dict[str, Any], response_id: str, created: int | None = None,
                  include_usage: bool = False) -> bytes:
    """All SSE events of a replayed completion, ready to send (one write)."""
    created = int(time.time()) if created is None else created
    base: dict[str, Any] = {"id": response_id, "object": "chat.completion.chunk", "created": created,
                            "model": completion.get("model", "")}
    if completion.get("system_fingerprint") is not None:
        base["system_fingerprint"] = completion["system_fingerprint"]
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    out = [_event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                        "logprobs": None, "finish_reason": None}]})]
    content = message.get("content")
    if isinstance(content, str) and content:
        for piece in split_text(content):
            out.append(_event({**base, "choices": [{"index": 0, "delta": {"content": piece},
                                                    "logprobs": None, "finish_reason": None}]}))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        out.append(_event({**base, "choices": [{"index": 0, "delta": {"refusal": refusal},
                                                "logprobs": None, "finish_reason": None}]}))
    for i, call in enumerate(message.get("tool_calls") or []):
        delta_call = {"index": i, "id": call.get("id"), "type": call.get("type", "function"),
                      "function": call.get("function") or {}}
        out.append(_event({**base, "choices": [{"index": 0, "delta": {"tool_calls": [delta_call]},
                                                "logprobs": None, "finish_reason": None}]}))
    out.append(_event({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None,
                                            "finish_reason": choice.get("finish_reason") or "stop"}]}))
    if include_usage and completion.get("usage") is not None:
        out.append(_event({**base, "choices": [], "usage": completion["usage"]}))
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)

"""Which responses may be cached, and rebuilding a completion from a relayed SSE stream.

Cached: a successful completion with exactly one choice that finished normally (`stop`,
`tool_calls`, `function_call`). Not cached: errors, `length`-truncated or `content_filter`ed
answers, several choices, streams that failed or were cut, and responses over `max_entry_bytes`.
"""

from __future__ import annotations

from typing import Any

import orjson

GOOD_FINISH = frozenset({"stop", "tool_calls", "function_call"})
_DONE = b"data: [DONE]"


def storable(completion: Any) -> bool:
    if not isinstance(completion, dict) or "error" in completion:
        return False
    choices = completion.get("choices")
    if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
        return False
    choice = choices[0]
    return choice.get("finish_reason") in GOOD_FINISH and isinstance(choice.get("message"), dict)


class StreamCollector:
    """Keeps the bytes of a relayed stream (cheap per chunk) and rebuilds the completion at the end."""

    __slots__ = ("parts", "size", "limit", "overflow")

    def __init__(self, limit: int) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.overflow = False

    def feed(self, chunk: bytes) -> bool:
        """Add a relayed chunk; True when it completes the stream (`data: [DONE]`)."""
        if not self.overflow:
            self.size += len(chunk)
            if self.size > self.limit:
                self.overflow = True
                self.parts = []
            else:
                self.parts.append(chunk)
        return _DONE in chunk

    def completion(self, usage: dict[str, Any] | None = None) -> dict[str, Any] | None:
        if self.overflow:
            return None
        return rebuild(b"".join(self.parts), usage)


def rebuild(data: bytes, usage: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A chat.completion from OpenAI SSE bytes, or None when the stream is not cacheable."""
    sep = b"\r\n\r\n" if b"\r\n\r\n" in data[:2048] else b"\n\n"
    head: dict[str, Any] | None = None
    content: list[str] = []
    refusal: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    done = False
    for event in data.split(sep):
        event = event.strip()
        if not event.startswith(b"data:"):
            continue
        payload = event[5:].strip()
        if payload == b"[DONE]":
            done = True
            continue
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(obj, dict) or "error" in obj:
            return None
        if head is None:
            head = obj
        if isinstance(obj.get("usage"), dict):
            usage = obj["usage"]
        for choice in obj.get("choices") or []:
            if choice.get("index", 0) != 0 or choice.get("logprobs"):
                return None
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                content.append(delta["content"])
            if isinstance(delta.get("refusal"), str):
                refusal.append(delta["refusal"])
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(call.get("index", 0), {"id": None, "type": "function",
                                                               "function": {"name": "", "arguments": ""}})
                if call.get("id"):
                    slot["id"] = call["id"]
                if call.get("type"):
                    slot["type"] = call["type"]
                fn = call.get("function") or {}
                if fn.get("name"):
                    slot["function"]["name"] += fn["name"]
                if fn.get("arguments"):
                    slot["function"]["arguments"] += fn["arguments"]
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
    if not done or head is None or finish not in GOOD_FINISH:
        return None
    message: dict[str, Any] = {"role": "assistant", "content": "".join(content) if content or not calls else None,
                               "refusal": "".join(refusal) if refusal else None}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    completion: dict[str, Any] = {
        "id": head.get("id"), "object": "chat.completion", "created": head.get("created"),
        "model": head.get("model"),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage,
    }
    if head.get("system_fingerprint") is not None:
        completion["system_fingerprint"] = head["system_fingerprint"]
    return completion

"""What a cached answer depends on: the exact key and the semantic scope of a chat request.

Everything that can change the answer is part of the scope: the gateway key (unless entries are
shared across keys), the resolved provider and upstream model, every message before the last user
turn (system/developer prompts, earlier turns, tool results), tools, tool_choice, response_format,
the sampling parameters and any other field we do not know to be harmless. Fields that only change
the *form* of the answer or its bookkeeping (`stream`, `stream_options`, `user`, `metadata`,
`store`) are left out, so a streamed request can hit an entry stored from a non-streamed one.

- exact key: a hash of the whole normalised request (scope + last user turn, verbatim after
  trimming surrounding whitespace);
- semantic scope: the same hash without the last user turn; the last user turn's text is what
  gets embedded, and vectors are searched only within their scope. A request whose last message is
  not a plain-text user turn (a tool result, an image) has no semantic scope: exact only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

# Request fields that do not change the answer's content.
FORM_ONLY = frozenset({"stream", "stream_options", "user", "metadata", "store", "model"})


@dataclass(slots=True)
class CacheScope:
    exact_key: str
    semantic_scope: str | None  # None: the request cannot be matched semantically
    text: str | None  # the last user turn (embedded and verified in semantic mode)
    prompt: str  # all message text, for invalidation by pattern
    provider: str
    model: str


def _digest(parts: Any) -> str:
    return hashlib.blake2b(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def _norm_content(content: Any) -> Any:
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                out.append({**part, "text": part["text"].strip()})
            else:
                out.append(part)
        return out
    return content


def _norm_message(msg: Any) -> Any:
    if isinstance(msg, dict) and "content" in msg:
        return {**msg, "content": _norm_content(msg["content"])}
    return msg


def content_text(content: Any) -> str | None:
    """Plain text of a message's content, or None when it holds anything but text."""
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                return None
            texts.append(part["text"].strip())
        return "\n".join(texts)
    return None


def prompt_text(messages: list[Any]) -> str:
    out = []
    for msg in messages:
        if isinstance(msg, dict):
            content = msg.get("content")
            if isinstance(content, str):
                out.append(content)
            elif isinstance(content, list):
                out.extend(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return "\n".join(out)


def build_scope(body: dict[str, Any], provider: str, model: str, key_scope: str,
                override_params: dict[str, Any] | None = None) -> CacheScope:
    """Key and scope of a chat request routed to `provider`/`model` (cheap: one orjson dump per hash)."""
    params = {k: v for k, v in body.items() if k not in FORM_ONLY and k != "messages"}
    if override_params:
        params.update(override_params)
    if params.get("n") == 1:
        del params["n"]
    messages = body.get("messages") or []
    normalised = [_norm_message(m) for m in messages]
    head = {"k": key_scope, "p": provider, "m": model, "params": params}
    exact_key = _digest({**head, "messages": normalised})
    text = None
    semantic_scope = None
    last = messages[-1] if messages else None
    if isinstance(last, dict) and last.get("role") == "user" and set(last) <= {"role", "content", "name"}:
        text = content_text(last.get("content"))
        if text:
            semantic_scope = _digest({**head, "history": normalised[:-1], "name": last.get("name")})
        else:
            text = None
    return CacheScope(exact_key, semantic_scope, text, prompt_text(messages), provider, model)


def key_scope(key_id: str | None, share_across_keys: bool) -> str:
    if share_across_keys:
        return "*"
    return key_id or "-"

"""What a request reserves against a tokens-per-minute limit before it is sent: an estimate.

No tokenizer on the request path: the prompt is counted as characters / 4 (OpenAI's rule of
thumb for English) plus a few tokens per message, and the output as the request's
`max_completion_tokens` / `max_tokens` times `n`, or `reserve_output_tokens` when it sets none.
The estimate only has to be close: each request is settled to its actual usage when it ends.
"""

from __future__ import annotations

from typing import Any

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 3


def _text_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):  # content parts; only text counts (an image's tokens are unknown here)
        return sum(len(p["text"]) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return 0


def _input_chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        if value and isinstance(value[0], int):  # already tokens
            return len(value) * CHARS_PER_TOKEN
        return sum(_input_chars(v) for v in value)
    return 0


def estimate_tokens(body: dict[str, Any], kind: str, reserve_output: int) -> int:
    if kind == "embeddings":
        return -(-_input_chars(body.get("input")) // CHARS_PER_TOKEN)
    messages = body.get("messages") or ()
    chars = 0
    for m in messages:  # a plain loop: this runs on every limited request
        if isinstance(m, dict):
            content = m.get("content")
            chars += len(content) if isinstance(content, str) else _text_chars(content)
    output = body.get("max_completion_tokens") or body.get("max_tokens") or reserve_output
    n = body.get("n") or 1
    return -(-chars // CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * len(messages) + output * n


def used_tokens(usage: dict[str, int] | None) -> int:
    """What a finished request counts: its input plus output tokens (cached and reasoning are inside them)."""
    if not usage:
        return 0
    return usage.get("input", 0) + usage.get("output", 0)


__all__ = ["estimate_tokens", "used_tokens"]

"""The text a guardrail reads: from requests and answers, and normalised for matching.

Checks see a list of plain strings (one per message part or answer choice), so masking can write
each one back where it came from. `fold` normalises text for keyword matching (NFKC, so full-width
letters become ASCII; case-folded; combining marks and zero-width characters dropped; look-alike
Cyrillic/Greek letters and leetspeak digits mapped to Latin letters) and keeps, for every folded
character, the offset of the original character it came from, so a match can be masked in the
original text. ASCII text takes a fast path (one `translate`, offsets are the identity).
"""

from __future__ import annotations

import unicodedata
from typing import Any

# leetspeak and look-alikes -> the letter they stand for (applied after NFKC + casefold)
_LOOKALIKE = {
    "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "l",
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i", "ѕ": "s", "ј": "j",
    "α": "a", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "ε": "e", "ι": "i", "κ": "k", "ν": "v",
}
_ASCII_TABLE = str.maketrans({k: v for k, v in _LOOKALIKE.items() if k.isascii()})
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad")


def fold(text: str) -> tuple[str, list[int] | None]:
    """(folded text, offsets into `text` per folded char; None when they are the identity)."""
    if text.isascii():
        return text.lower().translate(_ASCII_TABLE), None
    out: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text):
        if ch in _ZERO_WIDTH:
            continue
        for c in unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", ch).casefold()):
            if unicodedata.combining(c):
                continue
            out.append(_LOOKALIKE.get(c, c))
            offsets.append(i)
    return "".join(out), offsets


def widths(text: str) -> tuple[str, list[int] | None]:
    """NFKC only (full-width digits and letters become ASCII), with offsets as `fold` gives them."""
    if text.isascii():
        return text, None
    out: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text):
        if ch in _ZERO_WIDTH:
            continue
        for c in unicodedata.normalize("NFKC", ch):
            out.append(c)
            offsets.append(i)
    return "".join(out), offsets


def original_span(offsets: list[int] | None, start: int, end: int) -> tuple[int, int]:
    """A span of the folded text as a span of the original text."""
    if offsets is None:
        return start, end
    return offsets[start], offsets[end - 1] + 1


# -- where the text is ---------------------------------------------------------------------------

def request_texts(body: dict[str, Any]) -> list[tuple[int, int | None, str]]:
    """(message index, content part index or None, text) for every text in the request's messages."""
    out: list[tuple[int, int | None, str]] = []
    for i, msg in enumerate(body.get("messages") or ()):
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, str):
            if content:
                out.append((i, None, content))
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    out.append((i, j, part["text"]))
    return out


def write_request_texts(body: dict[str, Any], refs: list[tuple[int, int | None, str]],
                        texts: list[str]) -> None:
    messages = body["messages"]
    for (i, j, old), new in zip(refs, texts, strict=True):
        if new == old:
            continue
        msg = messages[i] = dict(messages[i])  # copies: the client's objects stay as sent
        if j is None:
            msg["content"] = new
        else:
            parts = msg["content"] = list(msg["content"])
            parts[j] = {**parts[j], "text": new}


def answer_texts(answer: dict[str, Any]) -> list[str]:
    """The text of each choice of a chat.completion (empty for tool-call-only answers)."""
    out = []
    for choice in answer.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        out.append(content if isinstance(content, str) else "")
    return out


def write_answer_texts(answer: dict[str, Any], texts: list[str]) -> None:
    for choice, text in zip(answer.get("choices") or (), texts, strict=False):
        message = choice.get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            message["content"] = text


def restore(text: str, entities: dict[str, str]) -> str:
    """PII placeholders back to the values they stand for."""
    for placeholder, original in entities.items():
        text = text.replace(placeholder, original)
    return text

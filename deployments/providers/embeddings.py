"""The OpenAI embeddings list body, and the client's `encoding_format` honoured whatever the upstream
sends back.

OpenAI's base64 embeddings are the little-endian float32 bytes of the vector, which is what the
`openai` SDKs ask for by default. Three cases, the same for every provider type:
- base64 asked, the upstream returned floats (it ignores the field, or cannot do base64 and was
  asked for floats): the gateway encodes them;
- floats asked (or nothing: OpenAI's default), the upstream returned base64 strings: decoded;
- otherwise the upstream's vectors are passed on as they are.
"""

from __future__ import annotations

import base64
import re
import struct
from typing import Any

import orjson

from .base import CallContext

# The client's `encoding_format` is needed again when the response is translated, and an adapter is
# shared by concurrent calls: it rides on the call's own context (one dict per request) under a key
# no client header can have set (the gateway copies only x-raygate-* names there).
ENCODING_KEY = ":embedding-encoding"

# Cheap scans that decide whether an OpenAI-shaped body needs re-encoding at all.
_FLOAT_VECTOR = re.compile(rb'"embedding"\s*:\s*\[')
_BASE64_VECTOR = re.compile(rb'"embedding"\s*:\s*"')


def remember_encoding(ctx: CallContext, body: dict[str, Any]) -> None:
    if body.get("encoding_format") == "base64":
        ctx.state[ENCODING_KEY] = "base64"


def wants_base64(ctx: CallContext) -> bool:
    return ctx.state.get(ENCODING_KEY) == "base64"


def floats_to_base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def base64_to_floats(text: str) -> list[float]:
    raw = base64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw[: len(raw) // 4 * 4]))


def conform_vector(vector: Any, as_base64: bool) -> Any:
    """A vector in the encoding the client asked for (anything else is left as it is)."""
    if as_base64 and isinstance(vector, list):
        return floats_to_base64(vector)
    if not as_base64 and isinstance(vector, str):
        return base64_to_floats(vector)
    return vector


def conform_list(payload: bytes, as_base64: bool) -> bytes:
    """An OpenAI embeddings body with its vectors in the asked encoding; unchanged (not even parsed)
    when they already are."""
    if not (_FLOAT_VECTOR if as_base64 else _BASE64_VECTOR).search(payload):
        return payload
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload  # not JSON: the caller's own checks report it
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return payload
    for item in items:
        if isinstance(item, dict) and "embedding" in item:
            item["embedding"] = conform_vector(item["embedding"], as_base64)
    return orjson.dumps(data)


def embedding_list(vectors: list[Any], model: str, tokens: int, as_base64: bool) -> bytes:
    """`{"object": "list", "data": [...], "model", "usage"}` for the vectors, in order."""
    items = [{"object": "embedding", "index": i, "embedding": conform_vector(v, as_base64)}
             for i, v in enumerate(vectors)]
    return orjson.dumps({"object": "list", "data": items, "model": model,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


__all__ = ["ENCODING_KEY", "base64_to_floats", "conform_list", "conform_vector", "embedding_list",
           "floats_to_base64", "remember_encoding", "wants_base64"]

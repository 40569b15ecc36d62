"""The OpenAI embeddings list body, and the client's `encoding_format` for providers that only return
floats (cohere, google, bedrock, ollama's native API, the OpenAI-like types that ignore base64).

OpenAI's base64 embeddings are the little-endian float32 bytes of the vector, which is what the
`openai` SDK asks for by default; the gateway encodes them itself from the provider's floats.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson

from .base import CallContext

# The client's `encoding_format` is needed again when the response is translated, and an adapter is
# shared by concurrent calls: it rides on the call's own context (one dict per request) under a key
# no client header can have set (the gateway copies only x-raygate-* names there).
ENCODING_KEY = ":embedding-encoding"


def remember_encoding(ctx: CallContext, body: dict[str, Any]) -> None:
    if body.get("encoding_format") == "base64":
        ctx.state[ENCODING_KEY] = "base64"


def floats_to_base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def embedding_list(vectors: list[Any], model: str, tokens: int, as_base64: bool) -> bytes:
    """`{"object": "list", "data": [...], "model", "usage"}` for the vectors, in order."""
    items = [{"object": "embedding", "index": i, "embedding": floats_to_base64(v) if as_base64 else v}
             for i, v in enumerate(vectors)]
    return orjson.dumps({"object": "list", "data": items, "model": model,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


__all__ = ["ENCODING_KEY", "embedding_list", "floats_to_base64", "remember_encoding"]

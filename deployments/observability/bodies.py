"""Request and response bodies in the log record, for the keys that have `logging.bodies` on.

A stage placed first in the chain: its `after` runs last, so it sees the request body as the input
stages left it (`ex.body`, e.g. rewritten by a masking guardrail) and the answer as the output
stages left it. A stage that masks text it cannot rewrite in place puts a callable on the exchange,
`ex.state["mask"]` (str -> str); it is applied to both bodies before they are stored. Each body is
cut at `max_body_bytes` (on a UTF-8 boundary); the fact says how big it was:

    record.facts["bodies"] = {"request":  {"text": "...", "bytes": 1234, "truncated": false},
                              "response": {"text": "...", "bytes": 98765, "truncated": true}}

A stream's response is its SSE text as the client got it (collected up to the limit). A request
that failed before it had an answer (a block, an upstream error) has no bodies stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from serve_app.lifecycle import Answer, Exchange, Reply, Stage
from serve_app.protocol import SSE_DONE

from .config import LoggingConfig

STATE = "bodies"


def clip(data: bytes, limit: int, mask: Any = None) -> dict[str, Any]:
    """A body as stored: masked, then cut at `limit` bytes without splitting a character."""
    text = data.decode("utf-8", "replace")
    if mask is not None:
        text = mask(text)
        data = text.encode()
    if len(data) <= limit:
        return {"text": text, "bytes": len(data), "truncated": False}
    return {"text": data[:limit].decode("utf-8", "ignore"), "bytes": len(data), "truncated": True}


class BodiesStage(Stage):
    name = "bodies"

    def __init__(self, cfg: LoggingConfig) -> None:
        self.cfg = cfg
        self.limit = cfg.max_body_bytes

    async def before(self, ex: Exchange) -> Answer | None:
        if self.cfg.bodies_for(ex.record.key_id):
            ex.state[STATE] = True
        return None

    async def after(self, ex: Exchange, answer: Answer) -> Answer:
        if STATE not in ex.state:
            return answer
        mask = ex.state.get("mask")
        request = clip(orjson.dumps(ex.body, default=str), self.limit, mask)
        if type(answer) is Reply:
            ex.record.fact(STATE, {"request": request, "response": clip(answer.body, self.limit, mask)})
            return answer
        ex.record.fact(STATE, {"request": request, "response": None})
        answer.chunks = self._collect(ex, request, answer.chunks, mask)  # type: ignore[union-attr]
        return answer

    async def _collect(
        self, ex: Exchange, request: dict[str, Any], chunks: AsyncIterator[bytes], mask: Any
    ) -> AsyncIterator[bytes]:
        """Relays the stream, keeping its first bytes; the fact is set before `[DONE]` leaves (the
        record is finished then), or when the stream fails."""
        kept: list[bytes] = []
        size = kept_size = 0
        cap = self.limit * 4 + 1024  # room for masking to shorten it; the stored text is cut at the limit

        def store() -> None:
            ex.record.fact(
                STATE,
                {
                    "request": request,
                    "response": {
                        **clip(b"".join(kept), self.limit, mask),
                        "bytes": size,
                        "truncated": size > self.limit,
                    },
                },
            )

        try:
            async for chunk in chunks:
                size += len(chunk)
                if kept_size < cap:
                    kept.append(chunk)
                    kept_size += len(chunk)
                if chunk.endswith(SSE_DONE):
                    store()
                yield chunk
        finally:
            store()
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()


def bodies_stage(config: Any) -> BodiesStage | None:
    """The chain's factory: absent unless some key stores bodies."""
    cfg = config.observability.logging
    return BodiesStage(cfg) if cfg.any_bodies else None


__all__ = ["BodiesStage", "bodies_stage", "clip"]

"""Cost as a lifecycle stage: every answer's `usage.estimated_cost`, and the record's `cost` fact.

`after` prices the record's normalised usage (deployments/spend/prices.py) and writes the
result twice: as the fact `cost` on the record (`{"usd", "source"}`; `usd` None when the model
has no known price) and into the answer as `usage.estimated_cost` (USD). A JSON answer gets it
spliced into its `usage` object (no re-encoding); a stream gets it in its final usage chunk,
and its fact is set before the `[DONE]` chunk leaves (so before the record is finished), or,
for a stream that fails midway, from the usage seen so far. A cache hit costs 0 and records
what it saved: `{"usd": 0.0, "saved_usd"}`, the hit's tokens at its model's price.

The stage sits above `cache` in the chain, so its `after` runs for cache hits too.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import orjson

from serve_app.lifecycle import Answer, Exchange, Reply, Stage, aclose, usage_counts
from serve_app.protocol import SSE_DONE

from .prices import PriceBook

USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')
USAGE_MARK = b'"usage":{'
UNKNOWN = "raygate_cost_unknown_total"


def splice_cost(body: bytes, usd: float | None) -> bytes:
    """`body` with `"estimated_cost": usd` as the first member of its (last) `usage` object."""
    match = None
    for match in USAGE_OBJECT.finditer(body):  # noqa: B007 - the last one is the response's own
        pass
    if match is None:
        return body
    at = match.end()
    value = b"null" if usd is None else orjson.dumps(usd)
    rest = body[at:].lstrip()
    sep = b"" if rest.startswith(b"}") else b","
    return body[:at] + b'"estimated_cost":' + value + sep + body[at:]


def _usage_of(data: bytes) -> dict[str, int] | None:
    """The normalised usage of a JSON answer or of the SSE event(s) in `data` that carry one."""
    if data.startswith(b"{"):
        try:
            return usage_counts(orjson.loads(data).get("usage"))
        except (orjson.JSONDecodeError, AttributeError):
            return None
    for line in data.split(b"\n"):
        if line.startswith(b"data: {") and USAGE_MARK in line:
            try:
                return usage_counts(orjson.loads(line[6:]).get("usage"))
            except (orjson.JSONDecodeError, AttributeError):
                return None
    return None


class CostStage(Stage):
    name = "cost"

    def __init__(self, prices: PriceBook, metrics: Any = None) -> None:
        self.prices = prices
        self.local = metrics  # the replica's LocalMetrics (chain parts["metrics"])

    async def before(self, ex: Exchange) -> Answer | None:
        return None

    def price_record(self, ex: Exchange, usage: dict[str, int] | None, hit_data: bytes | None = None) -> float | None:
        """Set the record's `cost` fact from `usage` (None: no usage reported); returns the USD cost."""
        rec = ex.record
        if rec.route == "cache":  # a hit: nothing was spent upstream; the saving is the hit's own tokens
            hit_usage = _usage_of(hit_data) if hit_data else None
            price = self.prices.get(rec.provider, rec.model)
            saved = price.cost(hit_usage) if price is not None and hit_usage is not None else None
            rec.fact("cost", {"usd": 0.0, "saved_usd": saved})
            return 0.0
        price = self.prices.get(rec.provider, rec.model)
        if usage is None or price is None:
            rec.fact("cost", {"usd": None, "source": None})
            if self.local is not None and usage is not None:
                self.local.inc(UNKNOWN, (rec.provider or "", rec.model or ""))
            return None
        usd = price.cost(usage)
        rec.fact("cost", {"usd": usd, "source": price.source})
        return usd

    async def after(self, ex: Exchange, answer: Answer) -> Answer:
        if isinstance(answer, Reply):
            usd = self.price_record(ex, ex.record.usage, answer.body)
            answer.body = splice_cost(answer.body, usd)
            return answer
        answer.chunks = self._costed(answer.chunks, ex)
        return answer

    async def _costed(self, chunks: AsyncIterator[bytes], ex: Exchange) -> AsyncIterator[bytes]:
        priced = False
        usd: float | None = None
        hit_usage_chunk: bytes | None = None
        try:
            async for chunk in chunks:
                if USAGE_MARK in chunk:
                    if ex.upstream is None:  # a replayed cache hit: its usage chunk is the saving
                        hit_usage_chunk = chunk
                    if not priced:
                        usd = self.price_record(ex, self._stream_usage(ex), hit_usage_chunk)
                        priced = True
                    chunk = splice_cost(chunk, usd)
                if not priced and chunk.endswith(SSE_DONE):
                    self.price_record(ex, self._stream_usage(ex), hit_usage_chunk)
                    priced = True
                yield chunk
        except BaseException:
            if not priced:  # failed midway: what the upstream reported so far (often nothing)
                self.price_record(ex, self._stream_usage(ex))
            raise
        finally:
            await aclose(chunks)

    @staticmethod
    def _stream_usage(ex: Exchange) -> dict[str, int] | None:
        return usage_counts(getattr(ex.upstream, "usage", None))


def cost_stage(config: Any, parts: dict[str, Any]) -> CostStage | None:
    """The chain's factory: always on when the replica has spend parts (every answer carries its cost)."""
    spend = parts.get("spend")
    return CostStage(spend.prices, parts.get("metrics")) if spend is not None else None


__all__ = ["CostStage", "cost_stage", "splice_cost"]

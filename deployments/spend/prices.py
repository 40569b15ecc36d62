"""Prices per token and the cost of one request's usage.

Prices come from `genai-prices` (pinned; its bundled data, no download at run time), looked up by
the provider's type and the upstream model, and are overridden or extended by the config's
`pricing:` section (by provider name or by provider type; model `"*"` covers every model of a
self-hosted provider). A price is resolved once per (provider, model) into plain floats, so
the request path does a dict lookup and a few multiplications (genai-prices' own calculator takes
~0.12 ms per call). A model no source knows has no price: its cost is None, never 0.

Usage is the record's normalised usage, which follows OpenAI's convention for every provider
(the adapters translate to it): `input` (prompt_tokens) includes the cached input and the cache
writes, `output` (completion_tokens) includes the reasoning tokens. So each token is priced
once: the uncached rest of the input at the input price, cached reads and cache writes at
theirs, the non-reasoning rest of the output at the output price, reasoning at its own.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

log = logging.getLogger("raygate.spend")

PER_MTOK = 1e-6
RESOLVE_TTL_S = 3600.0  # genai-prices has dated price changes: a resolved price is re-checked hourly

# provider type (deployments/providers/registry.py) -> genai-prices provider id; types not listed
# (mock, ollama, vllm, ray-serve, lmstudio, llamacpp, ...) are priced only by the config.
GENAI_PROVIDER_IDS: dict[str, str] = {
    "openai": "openai", "azure-openai": "azure", "anthropic": "anthropic", "google": "google",
    "bedrock": "aws", "mistral": "mistral", "groq": "groq", "together": "together", "cohere": "cohere",
    "deepseek": "deepseek", "xai": "x-ai", "perplexity": "perplexity", "fireworks": "fireworks",
    "openrouter": "openrouter", "cerebras": "cerebras",
}


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token; `tiers` are (input tokens above which, Price) — the whole request pays that tier."""

    input: float
    output: float
    cached_input: float
    cache_write: float
    reasoning: float
    source: str  # "config" | "genai-prices"
    tiers: tuple[tuple[int, Price], ...] = ()

    def cost(self, usage: dict[str, int]) -> float:
        """USD for one request's normalised usage (serve_app.lifecycle.usage_counts)."""
        inp, cached, write = usage["input"], usage["cached_input"], usage["cache_write"]
        out, reasoning = usage["output"], usage["reasoning"]
        p = self
        for start, tier in reversed(self.tiers):
            if inp > start:
                p = tier
                break
        fresh = inp - cached - write
        plain = out - reasoning
        usd = ((fresh if fresh > 0 else 0) * p.input + cached * p.cached_input + write * p.cache_write
               + (plain if plain > 0 else 0) * p.output + reasoning * p.reasoning)
        return round(usd, 10)

    def worst_case(self, input_tokens: int, output_tokens: int) -> float:
        """An upper bound for a request of that size: every input token uncached, every output token at the
        dearer of the output and reasoning prices, at the tier the input reaches."""
        p = self
        for start, tier in reversed(self.tiers):
            if input_tokens > start:
                p = tier
                break
        return input_tokens * max(p.input, p.cache_write) + output_tokens * max(p.output, p.reasoning)


def price_from_config(entry: Any) -> Price:
    """A Price from a `pricing:` entry (USD per million tokens)."""
    inp, out = entry.input * PER_MTOK, entry.output * PER_MTOK
    return Price(
        inp, out,
        inp if entry.cached_input is None else entry.cached_input * PER_MTOK,
        inp if entry.cache_write is None else entry.cache_write * PER_MTOK,
        out if entry.reasoning is None else entry.reasoning * PER_MTOK,
        "config",
    )


def _mtok(value: Any, tier_start: int | None = None) -> float | None:
    """Per-token float of one genai-prices price (Decimal or TieredPrices) at the tier above `tier_start`."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value) * PER_MTOK
    price = value.base
    if tier_start is not None:
        for tier in value.tiers:
            if tier.start <= tier_start:
                price = tier.price
    return float(price) * PER_MTOK


def _genai_price(model_price: Any, tier_start: int | None = None) -> Price | None:
    inp = _mtok(model_price.input_mtok, tier_start)
    out = _mtok(model_price.output_mtok, tier_start)
    if inp is None and out is None:
        return None  # priced per request, image or second only: not a token price
    inp, out = inp or 0.0, out or 0.0
    cached = _mtok(model_price.cache_read_mtok, tier_start)
    write = _mtok(model_price.cache_write_mtok, tier_start)
    reasoning = _mtok(model_price.output_reasoning_mtok, tier_start)
    return Price(inp, out, inp if cached is None else cached, inp if write is None else write,
                 out if reasoning is None else reasoning, "genai-prices")


def genai_price(provider_type: str, model: str, now: datetime | None = None) -> Price | None:
    """The bundled genai-prices price of `model` at `provider_type`, or None if it has none."""
    provider_id = GENAI_PROVIDER_IDS.get(provider_type)
    if provider_id is None or not model:
        return None
    from genai_prices import data_snapshot

    try:
        _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None
    model_price = info.get_prices(now or datetime.now(UTC))
    base = _genai_price(model_price)
    if base is None:
        return None
    starts = sorted({t.start for key in ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")
                     if hasattr(v := getattr(model_price, key), "tiers") for t in v.tiers})
    tiers = tuple((s, p) for s in starts if (p := _genai_price(model_price, s)) is not None)
    return Price(base.input, base.output, base.cached_input, base.cache_write, base.reasoning, base.source, tiers)


class PriceBook:
    """Resolves (provider name, upstream model) to a Price: config by name, config by type, genai-prices."""

    def __init__(self, pricing: dict[str, dict[str, Any]], provider_types: dict[str, str]) -> None:
        self.configured = {p: {m: price_from_config(e) for m, e in models.items()} for p, models in pricing.items()}
        self.provider_types = provider_types  # provider name -> type
        self._resolved: dict[tuple[str, str], tuple[float, Price | None]] = {}

    def get(self, provider: str | None, model: str | None) -> Price | None:
        key = (provider or "", model or "")
        hit = self._resolved.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < RESOLVE_TTL_S:
            return hit[1]
        price = self._resolve(*key)
        self._resolved[key] = (now, price)
        return price

    def _resolve(self, provider: str, model: str) -> Price | None:
        ptype = self.provider_types.get(provider, provider)
        for name in (provider, ptype):
            models = self.configured.get(name)
            if models is not None:
                found = models.get(model) or models.get("*")
                if found is not None:
                    return found
        try:
            return genai_price(ptype, model)
        except Exception:  # noqa: BLE001 - a price-data surprise leaves the cost unknown, never fails a request
            log.exception("genai-prices lookup failed for %s/%s", ptype, model)
            return None


def build_price_book(config: Any) -> PriceBook:
    return PriceBook(config.pricing, {name: p.type for name, p in config.providers.items()})


__all__ = ["GENAI_PROVIDER_IDS", "Price", "PriceBook", "build_price_book", "genai_price", "price_from_config"]

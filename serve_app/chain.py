"""Where the stage chain is assembled, and in what order: the one place a new stage is added.

    before, in this order ─▶ upstream call ─▶ after, in reverse order

    route   router.plan(): the Plan (ordered attempts) for this request       deployments/router
    guardrails  input checks · output checks of cache hits                    deployments/guardrails
    cache   exact/semantic lookup (answers hits) · store / record the stream  deployments/cache
    guardrails_output  output checks before the cache stores an answer        deployments/guardrails

A stage whose factory returns None (nothing configured) is not in the chain and costs nothing.
Stages that run before routing (rate limits, budgets, prompt rendering, input guardrails) go
above `route`; ones that must see the plan, below it. Each factory gets the config and the
replica's already-built parts (router, cache, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deployments.cache.cache_stage import CacheStage
from deployments.guardrails.stage import guardrail_output_stage, guardrail_stage
from deployments.router.route_stage import RouteStage

from .lifecycle import Chain, Stage

StageFactory = Callable[[Any, dict[str, Any]], Stage | None]

ORDER: list[tuple[str, StageFactory]] = [
    ("route", lambda config, parts: RouteStage(parts["router"])),
    # after route (a strategy's sets apply), before the cache (its hits are checked too)
    ("guardrails", guardrail_stage),
    # clients may opt in per request (body `cache`, x-raygate-cache), so the cache is always a stage
    ("cache", lambda config, parts: CacheStage(parts["cache"]) if parts.get("cache") is not None else None),
    ("guardrails_output", guardrail_output_stage),  # below the cache: blocked answers are never stored
]


def build_chain(config: Any, parts: dict[str, Any]) -> Chain:
    stages = [stage for _, factory in ORDER if (stage := factory(config, parts)) is not None]
    return Chain(stages)

"""What the router hands the executor: a Plan of ordered Attempts (serializable, plain data).

Attempts built from strategies are compiled once at start-up and shared by every request that
takes that route, so planning a fallback chain allocates nothing but the Plan; nobody mutates
them. `Backoff` and `CircuitPolicy` ride along so the executor (which may run in another
process than the router) needs no config lookups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Backoff:
    base: float = 0.5  # seconds before the first retry; doubles per retry, with jitter
    cap: float = 8.0
    retry_after_cap: float = 30.0  # longest Retry-After honoured; 0 ignores Retry-After


DEFAULT_BACKOFF = Backoff()


@dataclass(slots=True)
class Attempt:
    """One target to call: provider, upstream model and the per-target knobs."""

    provider: str
    model: str | None
    route: str  # where it came from, e.g. "models.fast" or "production-fallback.targets[1]"
    timeout: float | None = None  # per attempt; streams: time to first byte
    retry: int = 0  # extra attempts on this target
    override_params: dict[str, Any] | None = None
    on_status_codes: frozenset[int] | None = None  # None: retryable error classes
    idle_timeout: float | None = None  # streams: longest gap between chunks (None: provider's)
    backoff: Backoff | None = None
    circuit: Any = None  # a circuit.CircuitPolicy, or None (no breaker: plain requests)
    key: str = ""  # circuit/stats key of the target ("provider" or "provider/model")
    cache: Any = None  # the `cache` setting in force for this target (strategy or target level)


@dataclass(slots=True)
class Plan:
    attempts: list[Attempt]
    strategy: str | None = None  # None: a plain request (single attempt, no retries, no breaker)
    cache: Any = None  # the first attempt's `cache` setting, if any (read by the cache stage)
    model: str | None = None  # the request's model, for attempts that name none


@dataclass(slots=True)
class RouteRequest:
    """What routing reads (serializable, so the router can live in its own deployment)."""

    model: str | None
    provider: str | None = None
    config: Any = None
    metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)


__all__ = ["Attempt", "Backoff", "DEFAULT_BACKOFF", "Plan", "RouteRequest"]

"""The rate-limit stage: admit or refuse before routing; the settle sink; the x-ratelimit-* headers.

`before` matches the request to its buckets (scope.py), takes one request and the token estimate
(estimate.py) from each — locally in the common case, from the bucket actors when a replica's
allowance runs short (lease.py) — and refuses with 429 `rate_limit_exceeded`, `Retry-After` and
the x-ratelimit-* headers when a bucket is empty. The decision is the record's `rate_limit` fact.
`after` puts the same headers on the answer. As a sink, the stage settles each admitted
request's token reservation to its actual usage once its record is finished — on every path,
errors and cache hits included (a hit used no upstream tokens: its reservation comes back).

Remaining counts are as this replica last saw them (the bucket's level at its last sync plus its
own allowance): exact enough for a client to pace itself, not a cluster-wide snapshot.
"""

from __future__ import annotations

import time
from typing import Any

from serve_app.errors import RATE_LIMITED, GatewayError
from serve_app.lifecycle import Answer, Exchange, Stage

from .config import RateLimits
from .estimate import estimate_tokens, used_tokens
from .lease import UNCHECKED, Allowance, LeaseClient, Refusal
from .scope import Limit, Rules

METRIC = "raygate_rate_limited_total"


HEADER_NAMES = {kind: (f"x-ratelimit-limit-{kind}", f"x-ratelimit-remaining-{kind}")
                for kind in ("requests", "tokens")}


def _headers(counted: list[tuple[Allowance, str, Limit]]) -> dict[str, str]:
    """x-ratelimit-{limit,remaining}-{requests,tokens} of the tightest bucket of each kind."""
    out: dict[str, str] = {}
    least: dict[str, int] = {}
    for a, kind, _ in counted:
        left = a.remaining()
        if kind not in least or left < least[kind]:
            least[kind] = left
            limit_name, remaining_name = HEADER_NAMES[kind]
            out[limit_name] = str(int(a.capacity))
            out[remaining_name] = str(left)
    return out


class RateLimitStage(Stage):
    name = "rate_limit"

    def __init__(self, settings: RateLimits, client: LeaseClient, metrics: Any) -> None:
        self.rules = Rules(settings)
        self.client = client
        self.metrics = metrics  # serve_app.metrics.LocalMetrics
        self.reserve_output = settings.reserve_output_tokens
        self.pending: dict[int, tuple[Any, list[Allowance], int]] = {}  # id(record) -> reservation to settle

    async def before(self, ex: Exchange) -> Answer | None:
        rec = ex.record
        hits = self.rules.match(rec, ex.body)
        if not hits:
            return None
        tokens = estimate_tokens(ex.body, ex.kind, self.reserve_output) if self.rules.counts_tokens else 0
        needs: list[tuple[Allowance, float]] = []
        counted: list[tuple[Allowance, str, Limit]] = []
        client = self.client
        for limit, value in hits:
            if limit.requests:
                a = client.allowance(limit.prefix + value + ":r", limit.requests, limit.requests_lease)
                needs.append((a, 1.0))
                counted.append((a, "requests", limit))
            if limit.tokens:
                a = client.allowance(limit.prefix + value + ":t", limit.tokens, limit.tokens_lease)
                needs.append((a, float(tokens)))
                counted.append((a, "tokens", limit))
        outcome = None if client.take_local(needs) else await client.acquire(needs)
        headers = _headers(counted)
        if isinstance(outcome, Refusal):
            self._refuse(rec, outcome, counted, headers, tokens)
        ex.state["rate_limit"] = headers
        decision = "allow" if outcome is None else UNCHECKED
        token_buckets = [a for a, kind, _ in counted if kind == "tokens"]
        if token_buckets and outcome is None:
            self.pending[id(rec)] = (rec, token_buckets, tokens)
            rec.fact("rate_limit", {"decision": decision, "tokens_reserved": tokens})
        else:
            rec.fact("rate_limit", {"decision": decision})
        return None

    def _refuse(self, rec: Any, refusal: Refusal, counted: list[tuple[Allowance, str, Limit]],
                headers: dict[str, str], tokens: int) -> None:
        a = refusal.allowance
        kind, limit = next((k, lim) for b, k, lim in counted if b is a)
        self.metrics.inc(METRIC, (limit.label,))
        fact: dict[str, Any] = {"decision": "refuse", "scope": limit.label, "limit": kind}
        if refusal.retry_after is None:
            message = (f"this request needs about {tokens} tokens; the {limit.label} limit is "
                       f"{int(a.capacity)} tokens per minute")
        else:
            fact["retry_after"] = round(refusal.retry_after, 3)
            message = (f"rate limit reached for this {limit.label}: {int(a.capacity)} {kind} per minute; "
                       f"retry in {refusal.retry_after:.1f}s")
        headers[f"x-ratelimit-remaining-{kind}"] = "0"
        rec.fact("rate_limit", fact)
        raise GatewayError(429, message, code="rate_limit_exceeded", error_class=RATE_LIMITED,
                           retry_after=refusal.retry_after, headers=headers)

    async def after(self, ex: Exchange, answer: Answer) -> Answer:
        headers = ex.state.get("rate_limit")
        if headers:
            answer.headers.update(headers)
        return answer

    # -- the settle sink -------------------------------------------------------------------------
    def submit(self, rec: Any) -> None:
        entry = self.pending.pop(id(rec), None)
        if entry is None or entry[0] is not rec:
            return
        _, buckets, reserved = entry
        delta = used_tokens(rec.usage) - reserved
        if delta:
            for a in buckets:
                self.client.settle(a, float(delta))


def build_rate_limit_stage(config: Any, parts: dict[str, Any]) -> RateLimitStage | None:
    """The chain factory: None without rules (the stage is then absent and costs nothing)."""
    settings: RateLimits = config.rate_limits
    if not settings.rules:
        return None
    if parts.get("use_ray"):
        from .actor import rate_limit_actors

        board: Any = rate_limit_actors(settings.shards)
    else:
        from .actor import LocalBoard

        board = LocalBoard()
    client = LeaseClient(board, settings.lease_ttl_s, settings.sync_interval_s, time.monotonic)
    stage = RateLimitStage(settings, client, parts["metrics"])  # the replica's LocalMetrics
    if stage.rules.counts_tokens:
        parts["sinks"].append(stage)
    return stage


__all__ = ["RateLimitStage", "build_rate_limit_stage"]

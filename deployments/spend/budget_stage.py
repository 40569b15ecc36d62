"""Budgets as a lifecycle stage: reserve the worst case at admission, refuse what would exceed a budget.

Below `route` (the worst case depends on the plan's models) and `cache` (a hit spends nothing
and is never refused). For a request that counts toward at least one `action: block` budget,
`before` makes ONE call to the ledger, which admits it only if spent + reserved + its worst
case stays within every such budget, and holds the reservation; otherwise the request is
refused with 429 `budget_exceeded`, before any upstream call. The request's spend report
(deployments/spend/sink.py) settles it: the reservation becomes the actual cost, or 0 if the
request failed. A request no block budget counts pays one scope check per budget, no call.

Worst case = prompt tokens (estimated at 3 characters per token, which over-counts English
text and code) x the dearest input price among the plan's targets + the request's
max_completion_tokens / max_tokens (else the budget's `max_output_tokens`) x n x the dearest
output price. A model with no known price reserves 0 (its cost is unknown; see docs/spend.md).
"""

from __future__ import annotations

from typing import Any

import orjson

from serve_app.errors import GatewayError
from serve_app.lifecycle import Answer, Exchange, Stage

from .periods import parse_period
from .prices import PriceBook

CHARS_PER_TOKEN = 3
TOKENS_PER_MESSAGE = 4


def _text_chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        total = 0
        for part in value:
            if isinstance(part, dict):
                text = part.get("text")
                total += len(text) if isinstance(text, str) else 1000  # an image or file part: a flat allowance
            else:
                total += _text_chars(part)
        return total
    return 0


def estimate_prompt_tokens(body: dict[str, Any], kind: str) -> int:
    if kind == "embeddings":
        return _text_chars(body.get("input")) // CHARS_PER_TOKEN + 1
    chars, messages = 0, body.get("messages") or ()
    for m in messages:
        if isinstance(m, dict):
            chars += _text_chars(m.get("content"))
            if m.get("tool_calls"):
                chars += len(orjson.dumps(m["tool_calls"]))
    if body.get("tools"):
        chars += len(orjson.dumps(body["tools"]))
    return chars // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE * len(messages) + 1


def max_output_tokens(body: dict[str, Any], kind: str, default: int) -> int:
    if kind == "embeddings":
        return 0
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    n = body.get("n")
    limit = limit if isinstance(limit, int) and limit > 0 else default
    return limit * (n if isinstance(n, int) and n > 0 else 1)


class BudgetStage(Stage):
    name = "budget"

    def __init__(self, budgets: list[Any], prices: PriceBook, ledger: Any) -> None:
        # index in config order: the ledger's meters are the budgets, in the same order
        self.block = [(i, b) for i, b in enumerate(budgets) if b.action == "block"]
        self.periods = {i: parse_period(b.period) for i, b in self.block}
        self.prices = prices
        self.ledger = ledger

    def applicable(self, key: str | None, providers: set[str], metadata: dict[str, Any]) -> list[int]:
        out = []
        for i, b in self.block:
            scope = b.scope
            if scope.matches(key, scope.provider if scope.provider in providers else None, metadata):
                out.append(i)
        return out

    def worst_case(self, ex: Exchange, meters: list[int]) -> float:
        plan = ex.plan
        default = max(b.max_output_tokens for i, b in self.block if i in meters)
        inp = estimate_prompt_tokens(ex.body, ex.kind)
        out = max_output_tokens(ex.body, ex.kind, default)
        worst = 0.0
        for attempt in plan.attempts:
            price = self.prices.get(attempt.provider, attempt.model or plan.model or ex.body.get("model"))
            if price is not None:
                worst = max(worst, price.worst_case(inp, out))
        return round(worst, 10)

    async def before(self, ex: Exchange) -> Answer | None:
        rec = ex.record
        meters = self.applicable(rec.key_id, {a.provider for a in ex.plan.attempts}, rec.metadata)
        if not meters:
            return None
        amount = self.worst_case(ex, meters)
        try:
            refused = await self.ledger.reserve(rec.request_id, rec.received_at, meters, amount)
        except GatewayError:
            raise
        except Exception as exc:  # the ledger is away (restarting): a budget that can't be checked refuses
            raise GatewayError(503, "the spend ledger is unavailable; budgets cannot be checked right now",
                               code="budget_unavailable", retry_after=1) from exc
        names = [b.name for i, b in self.block if i in meters]
        if refused is not None:
            rec.fact("budget", {"refused": refused})
            raise self._refusal(refused, rec.received_at)
        rec.fact("budget", {"reserved_usd": amount, "budgets": names})
        return None

    def _refusal(self, name: str, now: float) -> GatewayError:
        for i, b in self.block:
            if b.name == name:
                period = self.periods[i]
                end = period.end(now)
                retry = None if end == float("inf") else max(1, int(end - now))
                return GatewayError(
                    429, f"budget {name!r} (scope {b.scope.label()}, {b.limit:g} USD {b.period}) is exhausted "
                         "for the current period", code="budget_exceeded", param=None, retry_after=retry)
        return GatewayError(429, f"budget {name!r} is exhausted", code="budget_exceeded")


def budget_stage(config: Any, parts: dict[str, Any]) -> BudgetStage | None:
    """The chain's factory: None (not in the chain) unless a budget with action block is configured."""
    spend = parts.get("spend")
    if spend is None or not any(b.action == "block" for b in config.budgets):
        return None
    return BudgetStage(config.budgets, spend.prices, spend.ledger)


__all__ = ["BudgetStage", "budget_stage", "estimate_prompt_tokens", "max_output_tokens"]

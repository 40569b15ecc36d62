"""Spend: cost per request, the spend ledger, budgets and alerts (docs/spend.md).

    config.py        pricing / budgets / alerts / smtp sections
    prices.py        genai-prices + config overrides -> per-token prices; the cost of a usage
    cost_stage.py    the `cost` stage: usage.estimated_cost on every answer, the record's cost fact
    budget_stage.py  the `budget` stage: reserve the worst case at admission, refuse past a limit
    ledger.py        the counters (plain Python): budgets, budget alerts, anomaly windows, reservations
    service.py       the ledger with storage, rebuild and alert delivery; the actor and its stand-in
    sink.py          each replica's batched spend reports (settlement)
    store.py         SQL over request_log and spend_alerts
    channels.py      webhook / email / PagerDuty delivery
    admin.py         GET /v1/admin/analytics/spend, /v1/admin/budgets, /v1/admin/alerts
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .admin import SpendAdmin
from .prices import PriceBook, build_price_book
from .sink import SpendSink


@dataclass
class SpendParts:
    prices: PriceBook
    ledger: Any  # SpendService in-process, or ActorLedger to the ledger actor
    sink: SpendSink | None  # None: no budget or alert counts anything


def attach_spend(gateway: Any, config: Any, ledger: Any = None) -> SpendParts:
    """A replica's spend parts: the price book, the ledger (in-process unless given), its admin routes,
    and the spend sink when a budget or an alert needs the counters."""
    if ledger is None:
        from .service import SpendService

        ledger = SpendService(config)
    gateway.admin_routes.update(SpendAdmin(ledger).routes())
    sink = None
    if config.budgets or config.alerts:
        keys: set[str] = set()
        for scoped in [*config.budgets, *config.alerts.values()]:
            keys |= scoped.scope.metadata_keys()
        sink = SpendSink(ledger, keys)
        gateway.sinks.append(sink)
        gateway.closers.append(sink.close)
    gateway.closers.append(ledger.close)
    return SpendParts(build_price_book(config), ledger, sink)


__all__ = ["SpendParts", "attach_spend"]

"""The spend ledger service: the counters (ledger.py) plus storage, alert delivery and rebuild-on-start.

`SpendService` is plain async Python; under Ray it is the body of one named actor per gateway
config (`raygate-spend-<hash>`, detached, restarted by Ray), which every ingress replica reaches
through `ActorLedger` (same interface). Without Ray (tests, plain uvicorn) it runs in-process.

Start-up (first call, also after Ray restarted the actor): the counters are rebuilt from
`request_log` (every priced request since the earliest period start any budget or alert needs),
alerts already fired in those periods are read from `spend_alerts`, and requests that finished
in the last DEDUPE_HORIZON_S are remembered, so reports replicas send again are not counted
twice. Records that reach storage only after the rebuild (their report had been counted by the
actor that died; the spool writes them a moment later) are picked up by catch-up scans at
CATCH_UP_S after the rebuild.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from typing import Any

import orjson

from serve_app.errors import GatewayError

from . import channels
from .ledger import DEDUPE_HORIZON_S, Alert, Entry, Ledger
from .store import SpendStore

log = logging.getLogger("raygate.spend")

NAMESPACE = "raygate"
CATCH_UP_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # after a rebuild, delays between scans for late-stored records
MAX_TICK_S = 30.0
ALERTS_IN_MEMORY = 1000


class SpendService:
    def __init__(self, config: Any, clock: Any = time.time) -> None:
        self.config = config
        self.clock = clock
        self.ledger = Ledger(config.budgets, config.alerts, config.serve.request_timeout_s + 60.0, clock)
        self.store: SpendStore | None = None
        if config.storage.enabled:
            from serve_app.storage import Storage

            self.store = SpendStore(Storage(config.storage))
        self.smtp = config.smtp
        self.rebuilt_at: float | None = None
        self.fired_rows: list[dict[str, Any]] = []  # without storage: what GET /v1/admin/alerts lists
        self._ready = False
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._catch_up_task: asyncio.Task[None] | None = None

    # -- start-up --------------------------------------------------------------------------------
    async def ready(self) -> bool:
        if not self._ready:
            async with self._lock:
                if not self._ready:
                    if self.store is not None:
                        await self.store.storage.start()
                        await self._rebuild()
                    self._ready = True
                    self._start_ticker()
        return True

    async def _rebuild(self) -> None:
        assert self.store is not None
        now = self.clock()
        since = self.ledger.lookback_start(now)
        self.ledger.fired |= await self.store.fired_since(since)
        rows = await self.store.spent_since(since)
        recent = now - DEDUPE_HORIZON_S
        old = [e for e, done in rows if done < recent]
        new = [e for e, done in rows if done >= recent]
        self.ledger.history_start = min((e[1] for e, _ in rows), default=now)
        self._fire(self.ledger.apply(old, remember=False) + self.ledger.apply(new))
        self.rebuilt_at = now
        if rows:
            log.info("spend ledger rebuilt from storage: %d priced requests since %.0f", len(rows), since)
        self._catch_up_task = asyncio.get_running_loop().create_task(self._catch_up(now))

    async def _catch_up(self, rebuilt_at: float) -> None:
        """Count records stored after the rebuild whose reports went to the actor that died."""
        assert self.store is not None
        since = rebuilt_at - DEDUPE_HORIZON_S
        for delay in CATCH_UP_S:
            await asyncio.sleep(delay)
            try:
                rows = await self.store.spent_since(since - self.config.serve.request_timeout_s, done_from=since)
            except Exception:  # noqa: BLE001 - the database is away; the next scan tries again
                log.warning("spend ledger catch-up scan failed", exc_info=True)
                continue
            seen = self.ledger.seen
            late = [e for e, _ in rows if (e[0], e[1]) not in seen]
            if late:
                self._fire(self.ledger.apply(late))

    def _start_ticker(self) -> None:
        if self.ledger.anomalies and self._ticker is None:
            period = min(MAX_TICK_S, *(a.bucket_s for a in self.ledger.anomalies))
            self._ticker = asyncio.get_running_loop().create_task(self._tick_loop(period))

    async def _tick_loop(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            await self.tick()

    async def tick(self) -> int:
        """Check the anomaly alerts now; returns how many fired."""
        alerts = self.ledger.check_anomalies()
        self._fire(alerts)
        return len(alerts)

    # -- the replicas' calls -----------------------------------------------------------------------
    async def reserve(self, request_id: str, received_at: float, meters: list[int], amount: float) -> str | None:
        await self.ready()
        return self.ledger.reserve((request_id, received_at), meters, amount)

    async def report(self, entries: list[Entry]) -> int:
        await self.ready()
        self._fire(self.ledger.apply(entries))
        return len(entries)

    async def budgets(self) -> list[dict[str, Any]]:
        await self.ready()
        return self.ledger.budgets()

    async def alerts(self, limit: int = 100, name: str | None = None) -> list[dict[str, Any]]:
        await self.ready()
        if self.store is None:
            rows = [r for r in reversed(self.fired_rows) if name is None or r["name"] == name]
            return rows[:limit]
        return await self.store.alerts(limit, name)

    async def spend_report(self, start: float, end: float, group_by: str) -> tuple[dict[str, Any], list[Any]]:
        if self.store is None:
            raise GatewayError(503, "spend analytics need storage (storage.enabled is false)", code="storage_disabled")
        await self.ready()
        return await self.store.report(start, end, group_by)

    async def counters(self) -> dict[str, Any]:
        """What the ledger counted (tests, debugging): spend per meter and period, counts."""
        await self.ready()
        return {"meters": {m.name: dict(m.spent) for m in self.ledger.meters}, "counted": self.ledger.counted,
                "duplicates": self.ledger.duplicates, "reservations": len(self.ledger.reservations)}

    async def drain(self) -> None:
        """Wait for alert deliveries in progress (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for loop_task in (self._ticker, self._catch_up_task):
            if loop_task is not None:
                loop_task.cancel()
        self._ticker = self._catch_up_task = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self.store is not None:
            await self.store.storage.close()
        self._ready = False

    def pid(self) -> int:
        return os.getpid()

    # -- alerts ----------------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _fire(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self._spawn(self._send(alert))

    async def _send(self, alert: Alert) -> None:
        """Store the alert (once per name, period and level, also across restarts), then deliver it."""
        row = alert.row()
        alert_id: int | None = None
        if self.store is not None:
            try:
                alert_id = await self.store.store_alert(row)
            except Exception:  # noqa: BLE001 - storage down: deliver anyway (twice beats never)
                log.warning("alert %s could not be stored; delivering it anyway", alert.name, exc_info=True)
            else:
                if alert_id is None:
                    return  # stored before: fired in this period already (before a restart)
        else:
            self.fired_rows = (self.fired_rows + [{**row, "id": len(self.fired_rows) + 1}])[-ALERTS_IN_MEMORY:]
        log.warning("alert fired: %s", alert.message)
        try:
            deliveries = await channels.deliver(alert, alert.channels, self.smtp)
        except Exception:  # noqa: BLE001 - a delivery bug must not take the ledger down
            log.exception("alert %s: delivery failed", alert.name)
            deliveries = [{"channel": "*", "ok": False, "error": "internal"}]
        if alert_id is not None:
            try:
                await self.store.set_deliveries(alert_id, deliveries)  # type: ignore[union-attr]
            except Exception:  # noqa: BLE001
                log.warning("alert %s: could not store its delivery outcome", alert.name, exc_info=True)
        elif self.store is None:
            self.fired_rows[-1]["deliveries"] = deliveries


def actor_name(config: Any) -> str:
    """One ledger per storage and spend config (a changed budget or channel gets a new actor)."""
    parts = {"storage": config.storage.key, "budgets": [b.model_dump(mode="json") for b in config.budgets],
             "alerts": {n: a.model_dump(mode="json") for n, a in config.alerts.items()},
             "secrets": [c.model_dump_json() + _secret_text(c) for a in config.alerts.values() for c in a.channels]}
    digest = hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]
    return f"raygate-spend-{digest}"


def _secret_text(channel: Any) -> str:
    secret = getattr(channel, "url", None) if channel.type == "webhook" else getattr(channel, "integration_key", None)
    return secret.get_secret_value() if hasattr(secret, "get_secret_value") else ""


def spend_actor(config: Any) -> Any:
    """Get or create the config's ledger actor (call inside a Ray process, never at import)."""
    import ray

    options: dict[str, Any] = {"name": actor_name(config), "namespace": NAMESPACE, "lifetime": "detached",
                               "get_if_exists": True, "max_restarts": -1, "max_task_retries": 0, "num_cpus": 0}
    if config.storage.enabled and config.storage.sqlite_path:  # next to the SQLite file, like the record writer
        options["resources"] = {"node:__internal_head__": 0.001}
    return ray.remote(SpendService).options(**options).remote(config)


class ActorLedger:
    """A replica's stand-in for the ledger actor (the same async interface as SpendService)."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self._actor: Any = None

    def _handle(self) -> Any:
        if self._actor is None:
            self._actor = spend_actor(self.config)
        return self._actor

    async def _call(self, method: str, *args: Any) -> Any:
        try:
            return await getattr(self._handle(), method).remote(*args)
        except Exception:
            self._actor = None  # look it up again next time (Ray restarts it; get_if_exists finds it)
            raise

    async def reserve(self, request_id: str, received_at: float, meters: list[int], amount: float) -> str | None:
        return await self._call("reserve", request_id, received_at, meters, amount)

    async def report(self, entries: list[Entry]) -> int:
        return await self._call("report", entries)

    async def budgets(self) -> list[dict[str, Any]]:
        return await self._call("budgets")

    async def alerts(self, limit: int = 100, name: str | None = None) -> list[dict[str, Any]]:
        return await self._call("alerts", limit, name)

    async def spend_report(self, start: float, end: float, group_by: str) -> tuple[dict[str, Any], list[Any]]:
        return await self._call("spend_report", start, end, group_by)

    async def counters(self) -> dict[str, Any]:
        return await self._call("counters")

    async def close(self) -> None:  # the actor is shared by every replica; it stays
        self._actor = None


__all__ = ["ActorLedger", "SpendService", "actor_name", "spend_actor"]

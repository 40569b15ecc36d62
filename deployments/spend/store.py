"""The spend ledger's SQL: spend read back from `request_log`, the analytics report, the alerts table.

Spend lives in the records the lifecycle already stores (request_log; the cost is the record's
`facts.cost.usd`, tokens its `usage`, user_id its `metadata`), read through SQLAlchemy's
dialect-neutral JSON paths, so the same statements run on SQLite (json_extract) and PostgreSQL
(JSONB #>>). The one expression that differs, the UTC day of an epoch time, is declared per
backend in DAY. Ranges filter on the indexed `received_at`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from serve_app.storage import Storage, schema

from .ledger import Entry

T = schema.request_log
COST = T.c.record[("facts", "cost", "usd")].as_float()
INPUT_TOKENS = T.c.record[("usage", "input")].as_integer()
OUTPUT_TOKENS = T.c.record[("usage", "output")].as_integer()
METADATA = T.c.record["metadata"]

DAY: dict[str, Callable[[Any], Any]] = {
    "sqlite": lambda ts: sa.func.strftime("%Y-%m-%d", ts, "unixepoch"),
    "postgresql": lambda ts: sa.func.to_char(sa.func.timezone("UTC", sa.func.to_timestamp(ts)), "YYYY-MM-DD"),
}
GROUPS: dict[str, Callable[[str], Any]] = {
    "provider": lambda backend: T.c.provider,
    "model": lambda backend: T.c.model,
    "key": lambda backend: T.c.key_id,
    "user_id": lambda backend: T.c.record[("metadata", "user_id")].as_string(),
    "day": lambda backend: DAY[backend](T.c.received_at),
}


def group_expression(group_by: str, backend: str) -> Any:
    """The SQL expression a group key is (`metadata.<k>`: that metadata value); KeyError if unknown."""
    if group_by.startswith("metadata."):
        return T.c.record[("metadata", group_by[len("metadata."):])].as_string()
    return GROUPS[group_by](backend)


class SpendStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.backend = storage.config.backend
        stmt = storage.backend.insert(schema.spend_alerts).on_conflict_do_nothing(
            index_elements=["name", "period_start", "level"])
        self._insert_alert = stmt.returning(schema.spend_alerts.c.id)

    async def spent_since(self, received_from: float, done_from: float | None = None) -> list[tuple[Entry, float]]:
        """(Entry, done_at) of every priced request received since `received_from` (and done since `done_from`)."""
        query = (sa.select(T.c.request_id, T.c.received_at, COST, T.c.key_id, T.c.provider, METADATA, T.c.done_at)
                 .where(T.c.received_at >= received_from, COST.is_not(None), COST > 0))
        if done_from is not None:
            query = query.where(T.c.done_at >= done_from)
        out: list[tuple[Entry, float]] = []
        async with self.storage.engine.connect() as conn:
            result = await conn.stream(query.execution_options(yield_per=5000))
            async for rid, received, usd, key, provider, md, done in result:
                out.append(((rid, received or 0.0, float(usd), key, provider, md if isinstance(md, dict) else {}),
                            done or received or 0.0))
        return out

    async def report(self, start: float, end: float, group_by: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Totals and per-group sums of requests received in [start, end)."""
        sums = (sa.func.count().label("requests"),
                sa.func.coalesce(sa.func.sum(INPUT_TOKENS), 0).label("input_tokens"),
                sa.func.coalesce(sa.func.sum(OUTPUT_TOKENS), 0).label("output_tokens"),
                sa.func.coalesce(sa.func.sum(COST), 0.0).label("cost"))
        where = (T.c.received_at >= start, T.c.received_at < end)
        key = group_expression(group_by, self.backend).label("key")
        async with self.storage.engine.connect() as conn:
            total = (await conn.execute(sa.select(*sums).where(*where))).one()
            rows = (await conn.execute(sa.select(key, *sums).where(*where).group_by(key))).all()
        groups = [_sums(r, key=r.key) for r in rows]
        groups.sort(key=lambda g: (-g["cost"], -g["requests"], "" if g["key"] is None else str(g["key"])))
        return _sums(total), groups

    # -- alerts ----------------------------------------------------------------------------------
    async def store_alert(self, row: dict[str, Any]) -> int | None:
        """Insert a fired alert; None if that (name, period, level) was stored before (already fired)."""
        async with self.storage.engine.begin() as conn:
            return (await conn.execute(self._insert_alert, [row])).scalar()

    async def set_deliveries(self, alert_id: int, deliveries: list[dict[str, Any]]) -> None:
        t = schema.spend_alerts
        async with self.storage.engine.begin() as conn:
            await conn.execute(sa.update(t).where(t.c.id == alert_id).values(deliveries=deliveries))

    async def fired_since(self, since: float) -> set[tuple[str, float, float]]:
        t = schema.spend_alerts
        async with self.storage.engine.connect() as conn:
            rows = await conn.execute(sa.select(t.c.name, t.c.period_start, t.c.level).where(t.c.period_start >= since))
            return {(r.name, r.period_start, r.level) for r in rows}

    async def alerts(self, limit: int, name: str | None = None) -> list[dict[str, Any]]:
        t = schema.spend_alerts
        query = sa.select(t).order_by(t.c.fired_at.desc(), t.c.id.desc()).limit(limit)
        if name is not None:
            query = query.where(t.c.name == name)
        async with self.storage.engine.connect() as conn:
            return [{str(k): v for k, v in r._mapping.items()} for r in await conn.execute(query)]


def _sums(row: Any, **extra: Any) -> dict[str, Any]:
    return {**extra, "requests": int(row.requests), "input_tokens": int(row.input_tokens or 0),
            "output_tokens": int(row.output_tokens or 0), "cost": round(float(row.cost or 0.0), 8)}


__all__ = ["DAY", "GROUPS", "SpendStore", "group_expression"]

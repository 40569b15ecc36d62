"""Request-log retention: rows older than `max_age_days`, and beyond the newest `max_rows`, are deleted.

The deleting runs in the record writer (`RecordWriter.call`), off the request path, in short
transactions of DELETE_BATCH rows so writers are never held up for long. Each ingress replica's
`RetentionService` asks for it every `interval_s`; the writer runs it at most once per interval
however many replicas ask. The audit log is append-only and is never pruned here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import sqlalchemy as sa

from serve_app.storage import schema

from .config import RetentionConfig

log = logging.getLogger("raygate.retention")

DELETE_BATCH = 5000
_last_run: dict[int, float] = {}  # id(storage) -> monotonic time of its last run (in the writer's process)
_running: dict[int, asyncio.Lock] = {}


async def enforce_retention(
    storage: Any, policy: RetentionConfig, now: float | None = None, force: bool = False
) -> dict[str, int]:
    """Delete what the policy no longer keeps; {"by_age": n, "by_rows": n} (skipped: both 0)."""
    key = id(storage)
    lock = _running.setdefault(key, asyncio.Lock())
    async with lock:
        if not force and time.monotonic() - _last_run.get(key, -1e18) < policy.interval_s * 0.9:
            return {"by_age": 0, "by_rows": 0}
        _last_run[key] = time.monotonic()
        t = schema.request_log
        by_age = by_rows = 0
        if policy.max_age_days is not None:
            cutoff = (now if now is not None else time.time()) - policy.max_age_days * 86400
            by_age = await _delete_before(storage, t.c.received_at < cutoff)
        if policy.max_rows is not None:
            boundary_q = (
                sa.select(t.c.received_at, t.c.request_id)
                .order_by(t.c.received_at.desc(), t.c.request_id.desc())
                .offset(policy.max_rows - 1)
                .limit(1)
            )
            async with storage.engine.connect() as conn:
                boundary = (await conn.execute(boundary_q)).first()
            if boundary is not None:  # keep the newest max_rows: delete everything older than the last kept
                at, request_id = boundary
                older = sa.or_(
                    sa.tuple_(t.c.received_at, t.c.request_id) < sa.tuple_(at, request_id),
                    t.c.received_at.is_(None),
                )
                by_rows = await _delete_before(storage, older)
        if by_age or by_rows:
            log.info("retention: deleted %d request_log rows by age, %d by row count", by_age, by_rows)
        return {"by_age": by_age, "by_rows": by_rows}


async def _delete_before(storage: Any, condition: Any) -> int:
    t = schema.request_log
    total = 0
    while True:
        chunk = sa.select(t.c.request_id).where(condition).limit(DELETE_BATCH)
        async with storage.engine.begin() as conn:
            deleted = (await conn.execute(sa.delete(t).where(t.c.request_id.in_(chunk)))).rowcount
        total += deleted
        if deleted < DELETE_BATCH:
            return total
        await asyncio.sleep(0)  # let the writer's inserts in between


class RetentionService:
    """A replica's background loop asking the writer to enforce retention every `interval_s`."""

    def __init__(self, gateway: Any, policy: RetentionConfig, first_delay_s: float = 30.0) -> None:
        self.gateway = gateway
        self.policy = policy
        self.first_delay_s = min(first_delay_s, policy.interval_s)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        await asyncio.sleep(self.first_delay_s)
        while True:
            records = self.gateway.records
            if records is not None:
                try:
                    await records.writer.call(enforce_retention, self.policy)
                except Exception:  # noqa: BLE001 - the database may be down; try again next interval
                    log.warning(
                        "retention run failed; retrying in %g s", self.policy.interval_s, exc_info=True
                    )
            await asyncio.sleep(self.policy.interval_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

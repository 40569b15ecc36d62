"""The stored audit log: every admin action and denied admin call, append-only, with secrets masked.

`Gateway.audit(...)` hands each event to `gateway.auditors`; `AuditSink` is the stored one. On the
request path it only masks the event and queues it; its background task writes queued events
through the record writer (`RecordWriter.call(insert_audit, ...)`) and keeps them, retrying, while
the writer is down (bounded: beyond MAX_QUEUE events are dropped and logged). The API only reads
(`GET /v1/admin/audit`); nothing updates or deletes a row.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from serve_app.storage import schema

from . import params as P

log = logging.getLogger("raygate.audit")

MASK = "***"
MAX_QUEUE = 10_000
# field names whose values are secrets whatever they look like
_SECRET_NAME = re.compile(
    r"((^|[_-])key$|api[-_]?key|secret|passw|token$|authorization|credential|private[_-]?key)", re.I
)
# values that look like a credential wherever they appear
_SECRET_VALUE = re.compile(
    r"(sk-[A-Za-z0-9_\-]{6,}|(?:pk|rk|sk)_(?:live|test)_[A-Za-z0-9]{6,}|gh[pousr]_[A-Za-z0-9]{10,}"
    r"|xox[abpr]-[A-Za-z0-9\-]{6,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_\-]{20,}|(?i:bearer)\s+\S+"
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@))"
)


def mask_secrets(value: Any, name: str = "") -> Any:
    """A copy of `value` with secret-named fields and secret-looking strings replaced by `***`."""
    if isinstance(value, dict):
        return {
            k: MASK
            if isinstance(k, str) and _SECRET_NAME.search(k) and v is not None
            else mask_secrets(v, str(k))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secrets(v, name) for v in value]
    if isinstance(value, str):
        return _SECRET_VALUE.sub(MASK, value)
    return value


def audit_row(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": float(event.get("at") or 0.0),
        "actor": event.get("actor"),
        "action": str(event.get("action")),
        "outcome": str(event.get("outcome")),
        "client_ip": event.get("client_ip"),
        "event": event,
    }


async def insert_audit(storage: Any, events: list[dict[str, Any]]) -> int:
    """Append events (in the writer, one transaction)."""
    if not events:
        return 0
    async with storage.engine.begin() as conn:
        await conn.execute(sa.insert(schema.audit_log), [audit_row(e) for e in events])
    return len(events)


class AuditSink:
    """Masks and queues audit events; a background task stores them (a `gateway.background` service)."""

    def __init__(self, gateway: Any, interval_s: float = 0.2, max_backoff_s: float = 5.0) -> None:
        self.gateway = gateway
        self.interval_s = interval_s
        self.max_backoff_s = max_backoff_s
        self.queue: deque[dict[str, Any]] = deque()
        self.dropped = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def submit(self, event: dict[str, Any]) -> None:
        if len(self.queue) >= MAX_QUEUE:
            self.dropped += 1
            log.error(
                "audit queue full (%d events; storage unreachable?): dropped %s %s, %d so far",
                MAX_QUEUE,
                event.get("action"),
                event.get("outcome"),
                self.dropped,
            )
            return
        self.queue.append(mask_secrets(event))
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        backoff = self.interval_s
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            except TimeoutError:
                pass
            self._wake.clear()
            if await self.flush_once():
                backoff = self.interval_s
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)

    async def flush_once(self) -> bool:
        """Store what is queued; False (events kept) if the writer failed."""
        records = self.gateway.records
        if not self.queue or records is None:
            return True
        batch = list(self.queue)
        try:
            await records.writer.call(insert_audit, batch)
        except Exception as exc:  # noqa: BLE001 - kept and retried
            log.warning("audit write failed (%s); %d events kept", type(exc).__name__, len(self.queue))
            return False
        for _ in batch:
            self.queue.popleft()
        return True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if not await self.flush_once() and self.queue:
            log.error("audit sink closing with %d events unstored", len(self.queue))


# -- GET /v1/admin/audit ----------------------------------------------------------------------------
ALLOWED = ("limit", "actor", "action", "outcome", "since", "until", "cursor")
OUTCOMES = ("ok", "error", "denied")


@dataclass(frozen=True)
class AuditQuery:
    limit: int = 100
    actor: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: float | None = None
    until: float | None = None
    before_id: int | None = None


def parse_audit_query(params: dict[str, str] | None) -> AuditQuery:
    params = params or {}
    P.check_names(params, ALLOWED)
    cursor = P.decode_cursor(params, (int,))
    since, until = P.timestamp(params, "since"), P.timestamp(params, "until")
    if since is not None and until is not None and since > until:
        raise P.invalid("until", "is before since")
    return AuditQuery(
        P.limit(params),
        P.text(params, "actor"),
        P.text(params, "action"),
        P.choice(params, "outcome", OUTCOMES),
        since,
        until,
        cursor[0] if cursor is not None else None,
    )


async def select_audit(storage: Any, q: AuditQuery) -> dict[str, Any]:
    """Newest first: {"object": "list", "data": [events with their id], "has_more", "next_cursor"}."""
    t = schema.audit_log
    where = []
    if q.actor is not None:
        where.append(t.c.actor == q.actor)
    if q.action is not None:
        where.append(t.c.action == q.action)
    if q.outcome is not None:  # "ok", "error 404", "denied 401": by the word
        where.append(sa.or_(t.c.outcome == q.outcome, t.c.outcome.like(q.outcome + " %")))
    if q.since is not None:
        where.append(t.c.at >= q.since)
    if q.until is not None:
        where.append(t.c.at < q.until)
    if q.before_id is not None:
        where.append(t.c.id < q.before_id)
    stmt = sa.select(t.c.id, t.c.event).where(*where).order_by(t.c.id.desc()).limit(q.limit + 1)
    async with storage.engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    return {
        "object": "list",
        "data": [{"id": r.id, **r.event} for r in rows],
        "has_more": more,
        "next_cursor": P.encode_cursor([rows[-1].id]) if more else None,
    }

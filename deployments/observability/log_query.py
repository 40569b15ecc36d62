"""`GET /v1/admin/logs`: the stored request records, filtered, newest first, with cursor pagination.

    ?limit=100&status=error|success&provider=&model=&user_id=&key=&trace_id=&session_id=
     &since=&until=&cursor=

`parse_log_query` checks the parameters (a 400 names the bad one); `select_logs` runs in the record
writer (next to the database, `RecordWriter.call`). Every filter has an index that ends in
(received_at, request_id), the sort key, so a page is an index range scan whatever the table's size
(bench/logs_query.py measures it on a million rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from serve_app.storage import schema

from . import params as P

# query parameter -> request_log column
FILTERS = {
    "provider": "provider",
    "model": "model",
    "user_id": "user_id",
    "key": "key_id",
    "trace_id": "trace_id",
    "session_id": "session_id",
}
ALLOWED = ("limit", "status", *FILTERS, "since", "until", "cursor")


@dataclass(frozen=True)
class LogQuery:
    limit: int = 100
    status: str | None = None  # success | error
    filters: tuple[tuple[str, str], ...] = ()  # (column, value)
    since: float | None = None
    until: float | None = None
    after: tuple[float, str] | None = None  # the cursor: the last row of the previous page


def parse_log_query(params: dict[str, str] | None) -> LogQuery:
    params = params or {}
    P.check_names(params, ALLOWED)
    filters = tuple(
        (column, value) for name, column in FILTERS.items() if (value := P.text(params, name)) is not None
    )
    since, until = P.timestamp(params, "since"), P.timestamp(params, "until")
    if since is not None and until is not None and since > until:
        raise P.invalid("until", "is before since")
    cursor = P.decode_cursor(params, (int | float, str))
    return LogQuery(
        P.limit(params),
        P.choice(params, "status", ("success", "error")),
        filters,
        since,
        until,
        (float(cursor[0]), cursor[1]) if cursor is not None else None,
    )


def log_statement(q: LogQuery) -> sa.Select:
    t = schema.request_log
    where = [t.c.received_at.is_not(None)]
    if q.status is not None:
        where.append(t.c.outcome == q.status)
    where += [t.c[column] == value for column, value in q.filters]
    if q.since is not None:
        where.append(t.c.received_at >= q.since)
    if q.until is not None:
        where.append(t.c.received_at < q.until)
    if (
        q.after is not None
    ):  # a row value: both databases seek the index to it (an OR of two ranges they don't)
        where.append(sa.tuple_(t.c.received_at, t.c.request_id) < sa.tuple_(*q.after))
    return (
        sa.select(t.c.received_at, t.c.request_id, t.c.record)
        .where(*where)
        .order_by(t.c.received_at.desc(), t.c.request_id.desc())
        .limit(q.limit + 1)
    )


async def select_logs(storage: Any, q: LogQuery) -> dict[str, Any]:
    """One page: {"object": "list", "data": [records], "has_more", "next_cursor"}."""
    async with storage.engine.connect() as conn:
        rows = (await conn.execute(log_statement(q))).all()
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    cursor = P.encode_cursor([rows[-1].received_at, rows[-1].request_id]) if more else None
    return {"object": "list", "data": [r.record for r in rows], "has_more": more, "next_cursor": cursor}

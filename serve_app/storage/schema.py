"""The database schema: current table definitions and the ordered list of migrations that build them.

Migrations are our own small versioned list rather than Alembic: the schema is append-only and
small, it must be created and upgraded at start-up from inside the gateway (no alembic.ini, no
script directory, no CLI step), and every step is SQLAlchemy Core DDL, so one step runs on SQLite
and PostgreSQL alike. The version lives in `raygate_schema_version` (one row). All pending steps
run in the start-up transaction, so a failed upgrade leaves the previous version in place.

To add a table (spend ledger, prompts, alerts, audit...): define it with `_table(...)` on
`metadata` below and append `Migration(<next version>, "what", create(<table>))` to MIGRATIONS.
Never change what a released step does: to change an existing table, append a step that alters
it, update its definition here, and give the step that created it a frozen copy of the original
definition (`create()` builds tables as they are defined now).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

metadata = sa.MetaData()

# JSON on SQLite (TEXT), JSONB on PostgreSQL.
JsonDoc = sa.JSON().with_variant(JSONB(), "postgresql")

schema_version = sa.Table(
    "raygate_schema_version", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer, nullable=False),
)


def _request_log_v1_columns() -> list[sa.Column]:
    """request_log's columns as migration 1 created them (frozen: that step must keep building these)."""
    return [
        sa.Column("request_id", sa.Text, primary_key=True),
        sa.Column("received_at", sa.Double, index=True),
        sa.Column("done_at", sa.Double),
        sa.Column("kind", sa.Text),
        sa.Column("key_id", sa.Text, index=True),
        sa.Column("client_ip", sa.Text),
        sa.Column("requested_model", sa.Text),
        sa.Column("provider", sa.Text),
        sa.Column("model", sa.Text),
        sa.Column("status", sa.Integer, index=True),
        sa.Column("cache", sa.Text),
        sa.Column("latency_ms", sa.Double),
        sa.Column("ttft_ms", sa.Double),
        sa.Column("error_type", sa.Text),
        sa.Column("record", JsonDoc, nullable=False),
    ]


def _request_log_v1(meta: sa.MetaData) -> sa.Table:
    return sa.Table("request_log", meta, *_request_log_v1_columns())


# One row per finished request; `record` is the whole record, the columns are what queries filter on.
request_log = sa.Table(
    "request_log", metadata,
    *_request_log_v1_columns(),
    # version 2 (the logs query API): filter columns taken from the record, and their indexes
    sa.Column("user_id", sa.Text),
    sa.Column("trace_id", sa.Text),
    sa.Column("session_id", sa.Text),
    sa.Column("outcome", sa.Text),  # success (status < 400) | error
)
# newest first with request_id as the tie-breaker: the logs API's stable order, per filter
LOG_QUERY_INDEXES = [
    sa.Index(f"ix_request_log_{name}_time", *cols, request_log.c.received_at, request_log.c.request_id)
    for name, cols in (("all", ()), ("outcome", (request_log.c.outcome,)),
                       ("provider", (request_log.c.provider,)), ("model", (request_log.c.model,)),
                       ("key", (request_log.c.key_id,)), ("user", (request_log.c.user_id,)),
                       ("trace", (request_log.c.trace_id,)), ("session", (request_log.c.session_id,)))
]

# Append-only audit events (admin actions, denied admin authentication); `event` is the masked event.
audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("actor", sa.Text),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("client_ip", sa.Text),
    sa.Column("event", JsonDoc, nullable=False),
    sa.Index("ix_audit_log_at", "at"),
    sa.Index("ix_audit_log_actor", "actor", "id"),
)


def _metadata_field(name: str) -> Callable[[dict], object]:
    def read(record: dict) -> object:
        metadata = record.get("metadata")
        value = metadata.get(name) if isinstance(metadata, dict) else None
        return None if value is None or isinstance(value, dict | list) else str(value)[:256]
    return read


def _outcome(record: dict) -> str:
    status = record.get("status")
    return "success" if isinstance(status, int) and 100 <= status < 400 else "error"


# request_log columns computed from the record (not a top-level key of it)
DERIVED_COLUMNS: dict[str, Callable[[dict], object]] = {
    "user_id": _metadata_field("user_id"), "trace_id": _metadata_field("trace_id"),
    "session_id": _metadata_field("session_id"), "outcome": _outcome,
}

# Prompt management (deployments/prompts): one row per prompt name, whose `revision` every write to
# that prompt bumps (replicas compare it to refresh their cached copy); versions are immutable.
prompt = sa.Table(
    "prompt", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)
prompt_version = sa.Table(
    "prompt_version", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("version", sa.Text, primary_key=True),
    sa.Column("digest", sa.Text, nullable=False),  # sha256 of the content: a redeploy must match it
    sa.Column("content", JsonDoc, nullable=False),  # messages, model, parameters, provider, config, description
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("created_by", sa.Text),
)
prompt_label = sa.Table(
    "prompt_label", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("label", sa.Text, primary_key=True),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("updated_by", sa.Text),
)
prompt_test = sa.Table(
    "prompt_test", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("test", sa.Text, primary_key=True),
    sa.Column("weights", JsonDoc, nullable=False),  # version -> weight
    sa.Column("sticky_key", sa.Text),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("created_by", sa.Text),
)

# Every alert the spend ledger fired (deployments/spend): one row per (alert, period, level), which is
# what makes an alert fire once per period across restarts; `deliveries` is each channel's outcome.
spend_alerts = sa.Table(
    "spend_alerts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("period_start", sa.Double, nullable=False),
    sa.Column("level", sa.Double, nullable=False),
    sa.Column("fired_at", sa.Double, nullable=False, index=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("details", JsonDoc),
    sa.Column("deliveries", JsonDoc),
    sa.UniqueConstraint("name", "period_start", "level", name="uq_spend_alerts_once"),
)

# record key -> column converter; keys absent from a record are stored as NULL.
REQUEST_LOG_COLUMNS: dict[str, Callable[[object], object]] = {}


def _as_float(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _as_int(v: object) -> int | None:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else None


def _as_text(v: object) -> str | None:
    return None if v is None else str(v)


for _col in request_log.columns:
    if _col.name != "record" and _col.name not in DERIVED_COLUMNS:
        _conv = {sa.Double: _as_float, sa.Integer: _as_int}.get(type(_col.type), _as_text)
        REQUEST_LOG_COLUMNS[_col.name] = _conv


def request_log_row(record: dict) -> dict:
    """The request_log row for one record dict (columns coerced so one odd value can't fail a batch)."""
    row = {name: conv(record.get(name)) for name, conv in REQUEST_LOG_COLUMNS.items()}
    for name, derive in DERIVED_COLUMNS.items():
        row[name] = derive(record)
    row["record"] = record
    return row


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def create(*tables: sa.Table) -> Callable[[Connection], None]:
    """A step that creates tables (and their indexes) as defined above."""
    def step(conn: Connection) -> None:
        for table in tables:
            table.create(conn)
    return step


def _v1_request_log(conn: Connection) -> None:
    _request_log_v1(sa.MetaData()).create(conn)


def _log_query_columns(conn: Connection) -> None:
    """request_log's filter columns (filled from the stored records) and indexes; the audit_log table."""
    t = request_log
    for name in DERIVED_COLUMNS:
        column_type = t.c[name].type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE request_log ADD COLUMN {name} {column_type}")
    fields = {name: t.c.record[("metadata", name)].as_string()
              for name in ("user_id", "trace_id", "session_id")}
    ok = sa.and_(t.c.status >= 100, t.c.status < 400)
    conn.execute(sa.update(t).values(**fields, outcome=sa.case((ok, "success"), else_="error")))
    for index in LOG_QUERY_INDEXES:
        index.create(conn)
    audit_log.create(conn)


MIGRATIONS: list[Migration] = [
    Migration(1, "request_log", _v1_request_log),
    Migration(2, "prompts", create(prompt, prompt_version, prompt_label, prompt_test)),
    Migration(3, "spend_alerts", create(spend_alerts)),
    Migration(4, "request_log filter columns and indexes (logs API); audit_log", _log_query_columns),
]
LATEST = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    """0 for an empty database."""
    schema_version.create(conn, checkfirst=True)
    found = conn.execute(sa.select(schema_version.c.version).where(schema_version.c.id == 1)).scalar()
    return int(found or 0)


def upgrade(conn: Connection, from_version: int) -> int:
    """Apply every step after `from_version` (inside the caller's transaction); returns the new version."""
    for step in MIGRATIONS:
        if step.version > from_version:
            step.apply(conn)
    if from_version == 0:
        conn.execute(sa.insert(schema_version).values(id=1, version=LATEST))
    elif LATEST > from_version:
        conn.execute(sa.update(schema_version).where(schema_version.c.id == 1).values(version=LATEST))
    return LATEST

"""The logs query, the schema upgrade that serves it, retention and audit rows, on SQLite (PostgreSQL:
tests/integration/test_observability_postgres.py runs the same checks there)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from deployments.observability.audit import (
    AuditSink,
    insert_audit,
    mask_secrets,
    parse_audit_query,
    select_audit,
)
from deployments.observability.config import RetentionConfig
from deployments.observability.log_query import parse_log_query, select_logs
from deployments.observability.retention import enforce_retention
from deployments.records import RecordWriter
from serve_app.errors import GatewayError
from serve_app.storage import Storage, StorageConfig, schema
from tests.support.records import record


def sample(i: int) -> dict[str, Any]:
    """Records with known filter values: i % 3 -> provider, i % 4 == 0 -> error, user u{i % 5}."""
    return record(
        i,
        provider=["openai", "anthropic", "mock"][i % 3],
        model=f"m{i % 2}",
        status=500 if i % 4 == 0 else 200,
        key_id=f"k{i % 2}",
        metadata={"user_id": f"u{i % 5}", "session_id": f"s{i // 10}", "trace_id": f"t{i}"},
    )


async def check_queries(storage: Storage) -> None:
    """Shared by the SQLite and PostgreSQL tests: filters, order and cursor pagination."""
    await storage.write_records([sample(i) for i in range(40)])
    # ties on received_at are broken by request_id: two records at the same instant, both returned once
    await storage.write_records(
        [record(100, received_at=1700000100.0), record(101, received_at=1700000100.0)]
    )

    async def ids(**params: Any) -> list[str]:
        page = await select_logs(storage, parse_log_query({k: str(v) for k, v in params.items()}))
        return [r["request_id"] for r in page["data"]]

    everything = await ids(limit=1000)
    assert everything[:2] == ["req-101", "req-100"] and len(everything) == 42
    assert set(await ids(limit=1000, status="error")) == {f"req-{i}" for i in range(0, 40, 4)}
    assert set(await ids(limit=1000, provider="anthropic", status="success")) == {
        f"req-{i}" for i in range(40) if i % 3 == 1 and i % 4
    }
    assert set(await ids(limit=1000, user_id="u3", model="m1")) == {
        f"req-{i}" for i in range(40) if i % 5 == 3 and i % 2 == 1
    }
    assert await ids(trace_id="t7") == ["req-7"]
    assert set(await ids(limit=1000, session_id="s2", key="k0")) == {
        "req-20",
        "req-22",
        "req-24",
        "req-26",
        "req-28",
    }
    assert await ids(limit=1000, since=1700000010, until=1700000013) == ["req-12", "req-11", "req-10"]
    pages, cursor = [], None
    while True:
        params = {"limit": "5", **({"cursor": cursor} if cursor else {})}
        page = await select_logs(storage, parse_log_query(params))
        pages += [r["request_id"] for r in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        await storage.write_records([record(1000 + len(pages))])  # newer rows arriving do not shift pages
    assert pages == everything


async def check_upgrade_from_v1(config: StorageConfig) -> None:
    """A version-1 database with records: the upgrade fills the new columns from the stored JSON."""
    storage = Storage(config)
    await build_v1(storage)
    await storage.start()
    try:
        assert storage.version == schema.LATEST
        page = await select_logs(storage, parse_log_query({"user_id": "u-old"}))
        assert [r["request_id"] for r in page["data"]] == ["req-1"]
        errors = await select_logs(storage, parse_log_query({"status": "error"}))
        assert [r["request_id"] for r in errors["data"]] == ["req-2"]
        await storage.write_records([record(3, metadata={"user_id": "u-old"})])  # new rows fill them too
        page = await select_logs(storage, parse_log_query({"user_id": "u-old"}))
        assert [r["request_id"] for r in page["data"]] == ["req-3", "req-1"]
    finally:
        await storage.close()


async def build_v1(storage: Storage) -> None:
    """The version-1 schema with two records in it, as raygate of that version left it."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from serve_app.storage.store import _dump_json

    engine = create_async_engine(storage._url, json_serializer=_dump_json)
    v1 = schema._request_log_v1(sa.MetaData())
    try:
        async with engine.begin() as conn:
            await conn.run_sync(schema.schema_version.create)
            await conn.run_sync(v1.create)
            await conn.execute(sa.insert(schema.schema_version).values(id=1, version=1))
            rows = [record(1, metadata={"user_id": "u-old"}), record(2, status=502)]
            await conn.execute(
                sa.insert(v1),
                [{k: v for k, v in schema.request_log_row(r).items() if k in v1.c} for r in rows],
            )
    finally:
        await engine.dispose()


@pytest.fixture
async def storage(sqlite_config: StorageConfig) -> Any:
    s = Storage(sqlite_config)
    await s.start()
    yield s
    await s.close()


@pytest.fixture
def sqlite_config(tmp_path: Path) -> StorageConfig:
    return StorageConfig(url=f"sqlite:///{tmp_path}/raygate.db", spool_dir=str(tmp_path / "spool"))


async def test_queries_on_sqlite(storage: Storage) -> None:
    await check_queries(storage)


async def test_the_query_uses_an_index_not_a_scan(storage: Storage) -> None:
    from deployments.observability.log_query import log_statement
    from deployments.observability.params import encode_cursor

    await storage.write_records([sample(i) for i in range(200)])
    async with storage.engine.begin() as conn:
        await conn.exec_driver_sql("ANALYZE")
    cursor = encode_cursor([1700000100.0, "req-100"])
    for params in (
        {},
        {"status": "error"},
        {"provider": "x"},
        {"user_id": "u"},
        {"session_id": "s"},
        {"key": "k"},
        {"trace_id": "t"},
        {"model": "m"},
        {"since": "1700000010", "until": "1700000090"},
    ):
        for page in ({}, {"cursor": cursor}):  # with bound parameters, as the query runs
            compiled = log_statement(parse_log_query({**params, **page})).compile(
                dialect=storage.engine.dialect
            )
            values = tuple(compiled.params[k] for k in compiled.positiontup)
            async with storage.engine.connect() as conn:
                rows = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", values)).all()
            plan = " ".join(str(r[-1]) for r in rows)
            assert "USING INDEX ix_request_log_" in plan and "TEMP B-TREE" not in plan, (params, page, plan)
            assert "MULTI-INDEX" not in plan, plan


async def test_upgrade_from_version_1(sqlite_config: StorageConfig) -> None:
    await check_upgrade_from_v1(sqlite_config)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": "1001"}, "limit"),
        ({"status": "ok"}, "status"),
        ({"until": "soon"}, "until"),
        ({"cursor": "eyJ4IjoxfQ"}, "cursor"),
        ({"user": "u1"}, "user"),
        ({"trace_id": "x" * 300}, "trace_id"),
    ],
)
def test_bad_parameters_name_themselves(params: dict[str, str], param: str) -> None:
    with pytest.raises(GatewayError) as err:
        parse_log_query(params)
    assert err.value.status == 400 and err.value.param == param


def test_iso_times_are_accepted() -> None:
    q = parse_log_query({"since": "2025-01-01T00:00:00Z", "until": "2025-01-01T01:00:00"})
    assert (q.since, q.until) == (1735689600.0, 1735693200.0)


# -- retention -----------------------------------------------------------------------------------------------
async def test_retention_by_age_and_by_rows(storage: Storage) -> None:
    await storage.write_records([record(i) for i in range(30)])  # received_at 1700000000 + i
    policy = RetentionConfig(max_age_days=1, max_rows=None, interval_s=300)
    now = 1700000000 + 86400 + 10  # rows 0..9 are older than a day
    assert await enforce_retention(storage, policy, now=now, force=True) == {"by_age": 10, "by_rows": 0}
    assert await enforce_retention(storage, policy, now=now) == {
        "by_age": 0,
        "by_rows": 0,
    }  # ran this interval
    by_rows = RetentionConfig(max_age_days=None, max_rows=7, interval_s=300)
    assert await enforce_retention(storage, by_rows, force=True) == {"by_age": 0, "by_rows": 13}
    left = await select_logs(storage, parse_log_query({"limit": "100"}))
    assert [r["request_id"] for r in left["data"]] == [f"req-{i}" for i in range(29, 22, -1)]  # the newest 7


async def test_retention_deletes_in_batches(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    import deployments.observability.retention as retention

    monkeypatch.setattr(retention, "DELETE_BATCH", 4)
    await storage.write_records([record(i) for i in range(11)])
    policy = RetentionConfig(max_age_days=None, max_rows=1, interval_s=300)
    assert (await enforce_retention(storage, policy, force=True))["by_rows"] == 10
    assert await storage.count_records() == 1


async def test_retention_runs_in_the_writer(sqlite_config: StorageConfig) -> None:
    writer = RecordWriter(Storage(sqlite_config))
    try:
        await writer.ready()
        await writer.storage.write_records([record(i) for i in range(5)])
        policy = RetentionConfig(max_age_days=None, max_rows=2, interval_s=300)
        assert (await writer.call(enforce_retention, policy))["by_rows"] == 3
        assert await writer.count() == 2
    finally:
        await writer.close()


# -- the audit log -------------------------------------------------------------------------------------------
def test_secrets_are_masked_in_audit_events() -> None:
    event = {
        "actor": "ops",
        "body": {
            "api_key": "anything",
            "key": "gw-123",
            "key_id": "team-a",
            "password": "hunter2",
            "max_tokens": 5,
            "note": "use sk-abcdefgh1234 here",
            "url": "postgresql://raygate:s3cret@db/raygate",
            "headers": {"Authorization": "Bearer xyz"},
            "list": ["Bearer abc.def"],
        },
    }
    masked = mask_secrets(event)
    assert masked["body"] == {
        "api_key": "***",
        "key": "***",
        "key_id": "team-a",
        "password": "***",
        "max_tokens": 5,
        "note": "use *** here",
        "url": "postgresql://***@db/raygate",
        "headers": {"Authorization": "***"},
        "list": ["***"],
    }
    assert event["body"]["api_key"] == "anything"  # the caller's event is not changed


class _Writer:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.down = False

    async def call(self, op: Any, *args: Any) -> Any:
        if self.down:
            raise ConnectionError("writer restarting")
        return await op(self.storage, *args)


class _Gateway:
    def __init__(self, writer: _Writer) -> None:
        self.records = type("Records", (), {"writer": writer})()


async def test_the_audit_sink_stores_masked_events_and_keeps_them_while_storage_is_down(
    storage: Storage,
) -> None:
    writer = _Writer(storage)
    sink = AuditSink(_Gateway(writer))
    writer.down = True
    sink.submit(
        {
            "at": 1.0,
            "actor": "ops",
            "action": "POST /v1/admin/keys",
            "outcome": "ok",
            "body": {"key": "gw-new-key-value"},
        }
    )
    sink.submit(
        {
            "at": 2.0,
            "actor": None,
            "action": "GET /v1/admin/logs",
            "outcome": "denied 401",
            "client_ip": "10.0.0.9",
        }
    )
    assert await sink.flush_once() is False and len(sink.queue) == 2
    writer.down = False
    assert await sink.flush_once() is True and not sink.queue
    page = await select_audit(storage, parse_audit_query(None))
    assert [e["action"] for e in page["data"]] == ["GET /v1/admin/logs", "POST /v1/admin/keys"]
    assert page["data"][1]["body"] == {"key": "***"}
    denied = await select_audit(storage, parse_audit_query({"outcome": "denied"}))
    assert [e["client_ip"] for e in denied["data"]] == ["10.0.0.9"]


async def test_audit_pagination(storage: Storage) -> None:
    await insert_audit(
        storage, [{"at": float(i), "actor": "ops", "action": f"a{i}", "outcome": "ok"} for i in range(7)]
    )
    seen, cursor = [], None
    while True:
        page = await select_audit(
            storage, parse_audit_query({"limit": "3", **({"cursor": cursor} if cursor else {})})
        )
        seen += [e["action"] for e in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"a{i}" for i in range(6, -1, -1)]
    since = await select_audit(storage, parse_audit_query({"since": "4", "actor": "ops"}))
    assert [e["action"] for e in since["data"]] == ["a6", "a5", "a4"]

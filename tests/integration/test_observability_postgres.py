"""The logs query, the version-1 upgrade, retention and audit rows on the real PostgreSQL (JSONB)."""

from __future__ import annotations

from deployments.observability.audit import insert_audit, parse_audit_query, select_audit
from deployments.observability.config import RetentionConfig
from deployments.observability.log_query import parse_log_query, select_logs
from deployments.observability.retention import enforce_retention
from serve_app.storage import Storage, StorageConfig
from tests.support.records import record
from tests.unit.observability.test_log_storage import check_queries, check_upgrade_from_v1


async def test_queries_on_postgres(postgres_url: str) -> None:
    storage = Storage(StorageConfig(url=postgres_url))
    await storage.start()
    try:
        await check_queries(storage)
    finally:
        await storage.close()


async def test_upgrade_from_version_1_on_postgres(postgres_url: str) -> None:
    await check_upgrade_from_v1(StorageConfig(url=postgres_url))


async def test_retention_and_audit_on_postgres(postgres_url: str) -> None:
    storage = Storage(StorageConfig(url=postgres_url))
    await storage.start()
    try:
        await storage.write_records([record(i) for i in range(12)])
        policy = RetentionConfig(max_age_days=None, max_rows=5, interval_s=300)
        assert (await enforce_retention(storage, policy, force=True))["by_rows"] == 7
        left = await select_logs(storage, parse_log_query(None))
        assert [r["request_id"] for r in left["data"]] == [f"req-{i}" for i in range(11, 6, -1)]
        await insert_audit(
            storage,
            [
                {
                    "at": 1.0,
                    "actor": "ops",
                    "action": "POST /v1/admin/x",
                    "outcome": "ok",
                    "body": {"nested": [1, 2]},
                }
            ],
        )
        page = await select_audit(storage, parse_audit_query({"actor": "ops"}))
        assert page["data"][0]["body"] == {"nested": [1, 2]} and isinstance(page["data"][0]["id"], int)
    finally:
        await storage.close()

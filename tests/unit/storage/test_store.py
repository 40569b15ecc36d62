"""Storage on SQLite: schema at start, idempotent writes, reads, and the start-up errors."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from serve_app.storage import Storage, StorageConfig, StorageError, prepare_storage, schema
from tests.support.records import record


async def test_schema_created_and_writes_are_idempotent(sqlite_config: StorageConfig) -> None:
    storage = Storage(sqlite_config)
    await storage.start()  # creates the parent directory and the schema
    try:
        assert storage.version == schema.LATEST
        assert await storage.write_records([record(1), record(2), record(1)]) == 2
        assert await storage.write_records([record(2), record(3)]) == 1  # a replay adds only what is new
        assert await storage.count_records() == 3
        assert await storage.get_record("req-2") == record(2)
        assert await storage.get_record("nope") is None
    finally:
        await storage.close()
    again = Storage(sqlite_config)  # a second start on an up-to-date database changes nothing
    await again.start()
    try:
        assert await again.count_records() == 3
    finally:
        await again.close()


async def test_columns_come_from_the_record_and_odd_values_become_null(sqlite_config: StorageConfig) -> None:
    storage = Storage(sqlite_config)
    await storage.start()
    try:
        odd = record(1, status="200", latency_ms=True, ttft_ms=40)
        await storage.write_records([odd, {"request_id": "bare"}])
        t = schema.request_log
        async with storage.engine.connect() as conn:
            rows = {r.request_id: r for r in await conn.execute(sa.select(t))}
        full, bare = rows["req-1"], rows["bare"]
        assert (full.kind, full.key_id, full.provider, full.model, full.cache) == (
            "chat", "team-a", "openai", "gpt-x-1", "miss")
        assert (full.status, full.latency_ms, full.ttft_ms) == (None, None, 40.0)
        assert full.received_at == 1700000001.0 and full.record == odd
        assert bare.received_at is None and bare.status is None and bare.record == {"request_id": "bare"}
    finally:
        await storage.close()


async def test_a_database_newer_than_the_code_stops_start_up(sqlite_config: StorageConfig) -> None:
    storage = Storage(sqlite_config)
    await storage.start()
    async with storage.engine.begin() as conn:
        await conn.execute(sa.update(schema.schema_version).values(version=schema.LATEST + 6))
    await storage.close()
    with pytest.raises(StorageError) as err:
        await Storage(sqlite_config).start()
    newer, ours = schema.LATEST + 6, schema.LATEST
    assert f"schema version {newer} is newer than this raygate ({ours}); upgrade raygate" in str(err.value)
    assert str(err.value).startswith("storage.url (sqlite:///")


async def test_unreachable_database_error_masks_the_password() -> None:
    cfg = StorageConfig(url="postgresql://u:s3cret@127.0.0.1:1/x", connect_timeout_s=5)
    with pytest.raises(StorageError) as err:
        await Storage(cfg).start()
    msg = str(err.value)
    assert msg.startswith("storage.url (postgresql://u:***@127.0.0.1:1/x): cannot connect: ")
    assert "s3cret" not in msg
    assert isinstance(err.value, ValueError)


async def test_unwritable_sqlite_location_is_a_storage_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StorageError) as err:
        await Storage(StorageConfig(url=f"sqlite:///{blocker}/x.db")).start()
    assert "cannot create the database directory" in str(err.value)


def test_prepare_storage_for_synchronous_callers(sqlite_config: StorageConfig) -> None:
    assert prepare_storage(sqlite_config) == schema.LATEST
    assert prepare_storage(sqlite_config) == schema.LATEST  # idempotent

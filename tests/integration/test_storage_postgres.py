"""Storage on the real PostgreSQL: schema creation and upgrade, idempotent JSONB writes, refused data."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import sqlalchemy as sa

from deployments.records import RecordWriter
from serve_app.storage import Storage, StorageConfig, StorageError, schema
from tests.support.records import record


async def test_schema_writes_and_reads(postgres_url: str) -> None:
    cfg = StorageConfig(url=postgres_url)
    first, second = Storage(cfg), Storage(cfg)
    await asyncio.gather(first.start(), second.start())  # concurrent start-ups: one creates, one waits
    try:
        assert first.version == second.version == schema.LATEST
        assert await first.write_records([record(1), record(2, metadata={"nested": {"a": [1, 2]}})]) == 2
        assert await second.write_records([record(2), record(3)]) == 1
        assert await first.count_records() == 3
        assert await second.get_record("req-2") == record(2, metadata={"nested": {"a": [1, 2]}})
        async with first.engine.connect() as conn:
            kind = (await conn.execute(sa.text(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = 'request_log' AND column_name = 'record'"))).scalar()
            assert kind == "jsonb"
            await conn.execute(sa.update(schema.schema_version).values(version=schema.LATEST + 1))
            await conn.commit()
    finally:
        await first.close()
        await second.close()
    with pytest.raises(StorageError) as err:
        await Storage(cfg).start()
    assert f"schema version {schema.LATEST + 1} is newer than this raygate" in str(err.value)


async def test_a_record_the_database_refuses_does_not_block_the_batch(postgres_url: str) -> None:
    writer = RecordWriter(Storage(StorageConfig(url=postgres_url)))
    try:
        lines = [orjson.dumps(record(1)), orjson.dumps(record(2, metadata={"x": "nul\u0000byte"})),
                 orjson.dumps(record(3))]
        assert await writer.write(lines) == 2  # JSONB has no \u0000: that one record is refused and logged
        assert await writer.count() == 2 and await writer.get("req-2") is None
    finally:
        await writer.close()


async def test_wrong_password_names_the_url_masked(postgres_url: str) -> None:
    url = postgres_url.replace("postgres@", "nobody_raygate:s3cret@")
    with pytest.raises(StorageError) as err:
        await Storage(StorageConfig(url=url)).start()
    msg = str(err.value)
    assert "nobody_raygate:***@127.0.0.1" in msg and "cannot connect" in msg and "s3cret" not in msg

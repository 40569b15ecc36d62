"""StorageSink with an in-process RecordWriter: flushes, metrics, retries without loss or duplicates."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from deployments.records import RecordWriter, StorageSink, build_storage_sink
from deployments.records.spool import Spool
from serve_app.metrics import InProcessSink, Metrics
from serve_app.storage import Storage, StorageConfig, schema
from tests.support.records import record


class FlakyWriter:
    """Fails its first `failures` writes; with `commit_then_fail`, a failing write has committed first
    (the answer was lost, as when the writer dies after the commit)."""

    def __init__(self, writer: RecordWriter, failures: int, commit_then_fail: bool = False) -> None:
        self.writer, self.failures, self.commit_then_fail = writer, failures, commit_then_fail
        self.calls = 0

    async def write(self, lines: list[bytes]) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            if self.commit_then_fail:
                await self.writer.write(lines)
            raise ConnectionError("writer unavailable")
        return await self.writer.write(lines)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.writer, name)


def metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_records_reach_the_database_in_batches(sqlite_config: StorageConfig) -> None:
    metrics = Metrics(InProcessSink())
    sink = build_storage_sink(sqlite_config, metrics, use_ray=False)
    assert await sink.ready() == schema.LATEST
    for i in range(120):
        sink.submit(record(i))
    assert sink.spool.pending == 120
    await sink.flush()
    assert await sink.writer.count() == 120
    assert await sink.get("req-7") == record(7)
    await sink.close()
    text = await metrics.render()
    assert metric(text, "raygate_records_written_total") == 120
    assert metric(text, "raygate_record_write_seconds_count") == 3  # batch_size 50
    assert metric(text, "raygate_record_queue_depth") == 0
    assert metric(text, "raygate_records_dropped_total") == 0


async def test_the_background_loop_flushes_on_its_own(sqlite_config: StorageConfig) -> None:
    sink = build_storage_sink(sqlite_config, use_ray=False)
    for i in range(10):
        sink.submit(record(i))  # starts the loop (a running loop exists here)
    for _ in range(500):
        if sink.spool.pending == 0:
            break
        await asyncio.sleep(0.01)
    assert await sink.writer.count() == 10
    await sink.close()


async def test_writer_failures_are_retried_without_loss_or_duplicates(sqlite_config: StorageConfig) -> None:
    for commit_then_fail in (False, True):
        storage = Storage(sqlite_config)
        writer = FlakyWriter(RecordWriter(storage), failures=3, commit_then_fail=commit_then_fail)
        metrics = Metrics(InProcessSink())
        sink = StorageSink(Spool(sqlite_config.spool_dir), writer, metrics, batch_size=50,
                           flush_interval_s=0.01, max_backoff_s=0.02)
        base = 1000 if commit_then_fail else 0
        for i in range(base, base + 100):
            sink.submit(record(i))
        assert await sink.flush(timeout_s=10)
        assert sink.failures == 3
        text = await metrics.render()
        assert metric(text, "raygate_records_spilled_total") == 100  # all waited on disk during the outage
        assert metric(text, "raygate_records_written_total") == 100
        assert metric(text, "raygate_records_dropped_total") == 0  # a replay is not a conflict
        await sink.close()
    check = Storage(sqlite_config)
    await check.start()
    assert await check.count_records() == 200
    await check.close()


async def test_drops_are_counted_by_reason(sqlite_config: StorageConfig) -> None:
    metrics = Metrics(InProcessSink())
    spool = Spool(sqlite_config.spool_dir, max_bytes=2000)
    sink = StorageSink(spool, RecordWriter(Storage(sqlite_config)), metrics)
    sink.submit({"no_request_id": True})  # the writer refuses it
    sink.submit({"request_id": "big", "n": 1 << 70})  # orjson can't encode it
    for i in range(10):
        sink.submit(record(i))  # ~500 bytes each: the spool fills after 3
    await sink.flush()
    assert await sink.writer.count() == 3
    await sink.close()
    text = await metrics.render()
    assert 'raygate_records_dropped_total{reason="refused"} 1' in text
    assert 'raygate_records_dropped_total{reason="unserializable"} 1' in text
    assert 'raygate_records_dropped_total{reason="spool_full"} 7' in text


async def test_concurrent_writes_share_transactions(sqlite_config: StorageConfig) -> None:
    storage = Storage(sqlite_config)
    writer = RecordWriter(storage)
    await writer.ready()
    transactions = []
    real = storage.write_records

    async def counting(records: list[dict]) -> int:
        transactions.append(len(records))
        return await real(records)

    storage.write_records = counting  # type: ignore[method-assign]
    batches = [[orjson.dumps(record(i * 10 + j)) for j in range(10)] for i in range(8)]
    assert await asyncio.gather(*(writer.write(b) for b in batches)) == [10] * 8
    assert sum(transactions) == 80 and len(transactions) < 8
    assert await writer.count() == 80
    await writer.close()


async def test_a_request_record_is_stored_as_its_dict(sqlite_config: StorageConfig) -> None:
    from serve_app.lifecycle import RequestRecord

    rec = RequestRecord("rec-1", kind="chat", via="handle", headers={"authorization": "Bearer sk-secret"})
    rec.metadata = {"team": "a"}
    rec.close(200)
    sink = build_storage_sink(sqlite_config, use_ray=False)
    sink.submit(rec)
    await sink.flush()
    stored = await sink.get("rec-1")
    await sink.close()
    assert stored == orjson.loads(orjson.dumps(rec.to_dict()))
    assert "sk-secret" not in orjson.dumps(stored).decode()  # headers are never stored


async def test_a_successor_writes_what_a_dead_replica_left_without_a_request_of_its_own(
        sqlite_config: StorageConfig) -> None:
    dead = build_storage_sink(sqlite_config, use_ray=False)
    for i in range(30):
        dead.submit(record(i))
    dead.spool.close()  # its process is gone: the segment is unlocked, nothing was flushed
    successor = build_storage_sink(sqlite_config, use_ray=False)
    assert successor.spool.pending == 30
    successor.start()  # replica start-up (the gateway's lifespan hook); no submit follows
    for _ in range(200):
        if await successor.writer.count() == 30:
            break
        await asyncio.sleep(0.02)
    assert await successor.writer.count() == 30
    await successor.close()

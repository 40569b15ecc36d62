"""`StorageSink`: where an ingress replica hands finished records; they reach the database from here.

`submit(record)` (synchronous, a few µs) appends the record to this replica's spool and returns.
A background task reads unacknowledged lines back in batches, sends each batch to the writer
(the actor, or an in-process RecordWriter) and acknowledges it in the spool once the writer has
committed it. When the writer or the database is down the batch is retried with backoff and new
records wait on disk (counted as spilled); when the spool is full they are dropped, counted and
logged. What survives what: docs/storage.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson

from serve_app.lifecycle import start_background
from serve_app.storage import Storage, StorageConfig

from .spool import Spool
from .writer import ActorWriter, RecordWriter

log = logging.getLogger("raygate.records")

QUEUE_DEPTH = "raygate_record_queue_depth"
WRITE_SECONDS = "raygate_record_write_seconds"
WRITTEN = "raygate_records_written_total"
SPILLED = "raygate_records_spilled_total"
DROPPED = "raygate_records_dropped_total"
NO_LABELS: tuple[str, ...] = ()
DUMP_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
DROP_LOG_EVERY_S = 10.0


class _NoMetrics:
    def inc(self, name: str, labels: tuple[str, ...], value: float = 1.0) -> None: ...
    def observe(self, name: str, labels: tuple[str, ...], seconds: float) -> None: ...
    def set(self, name: str, labels: tuple[str, ...], value: float) -> None: ...


class StorageSink:
    def __init__(self, spool: Spool, writer: Any, metrics: Any = None, batch_size: int = 500,
                 flush_interval_s: float = 0.2, write_timeout_s: float = 30.0, max_backoff_s: float = 5.0,
                 rescan_s: float = 30.0) -> None:
        self.spool = spool
        self.writer = writer
        self.local = metrics.local if metrics is not None else _NoMetrics()
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.write_timeout_s = write_timeout_s
        self.max_backoff_s = max_backoff_s
        self.rescan_s = rescan_s
        self.failures = 0  # failed writes (each retried)
        self.outage = False  # the last write failed: new records wait on disk
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()  # one batch in flight per replica (the loop, or flush/close)
        self._drops_unlogged = 0
        self._drop_logged_at = 0.0

    # -- request path ---------------------------------------------------------------------------
    def submit(self, record: Any) -> None:
        """Spool one finished record: a RequestRecord (serve_app/lifecycle.py) or its `to_dict()`.
        Returns once it is on the spool; never raises."""
        try:
            line = orjson.dumps(record if type(record) is dict else record.to_dict(), default=str,
                                option=DUMP_OPTIONS)
        except TypeError:  # e.g. an integer beyond 64 bits somewhere in the record
            self._drop("unserializable", 1)
            return
        if not self.spool.append(line):
            self._drop("spool_full", 1)
            return
        if self.outage:
            self.local.inc(SPILLED, NO_LABELS)
        if self._task is None:
            self.start()
        if self.spool.pending >= self.batch_size:
            self._wake.set()

    def _drop(self, reason: str, n: int) -> None:
        self.local.inc(DROPPED, (reason,), n)
        self._drops_unlogged += n
        now = time.monotonic()
        if now - self._drop_logged_at >= DROP_LOG_EVERY_S:
            spool = self.spool
            log.error("records dropped (%s): %d since the last report; spool %s holds %d bytes (limit %d)",
                      reason, self._drops_unlogged, spool.directory, spool.bytes, spool.max_bytes)
            self._drops_unlogged, self._drop_logged_at = 0, now

    # -- flush side -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the flush loop on the running loop (no-op without one; `flush` still works)."""
        if self._task is None:
            self._task = start_background(self._run)

    async def _run(self) -> None:
        backoff = self.flush_interval_s
        rescan_at = time.monotonic() + self.rescan_s
        while True:
            if self.spool.pending < self.batch_size:
                try:  # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow close()'s cancel
                    async with asyncio.timeout(self.flush_interval_s):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                self._wake.clear()
            try:
                ok = await self.flush_once()
            except Exception:  # e.g. the spool's disk failed; keep the loop alive and say so
                log.exception("record sink: flush failed")
                ok = False
            self.local.set(QUEUE_DEPTH, NO_LABELS, self.spool.pending)
            if not ok:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            backoff = self.flush_interval_s
            if time.monotonic() >= rescan_at:  # segments of a replica that died since we started
                self.spool.claim_orphans()
                rescan_at = time.monotonic() + self.rescan_s

    async def flush_once(self) -> bool:
        """Write one batch. False if the writer failed (the batch stays on the spool)."""
        async with self._flushing:
            return await self._flush_batch()

    async def _flush_batch(self) -> bool:
        batch = self.spool.read_batch(self.batch_size)
        if batch is None:
            return True
        if batch.torn:
            self._drop("torn", batch.torn)
        if batch.lines:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self.write_timeout_s):
                    stored = await self.writer.write(batch.lines)
            except Exception as exc:
                self._write_failed(exc)
                return False
            self.local.observe(WRITE_SECONDS, NO_LABELS, time.perf_counter() - started)
            self.local.inc(WRITTEN, NO_LABELS, stored)
            if stored < len(batch.lines):
                self._drop("refused", len(batch.lines) - stored)
        self.spool.ack(batch)
        if self.outage:
            self.outage = False
            log.warning("record writer reachable again; %d records still spooled", self.spool.pending)
        return True

    def _write_failed(self, exc: BaseException) -> None:
        self.failures += 1
        if not self.outage:
            self.outage = True
            self.local.inc(SPILLED, NO_LABELS, self.spool.pending)
            log.warning("record write failed (%s: %s); %d records wait in %s and are retried",
                        type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "", self.spool.pending,
                        self.spool.directory)

    async def flush(self, timeout_s: float = 10.0) -> bool:
        """Write everything spooled so far (bounded time). True if nothing is left."""
        deadline = time.monotonic() + timeout_s
        while self.spool.pending and time.monotonic() < deadline:
            if not await self.flush_once():
                await asyncio.sleep(min(self.flush_interval_s, max(0.0, deadline - time.monotonic())))
        return not self.spool.pending

    async def ready(self) -> int:
        """Connect the writer and create/upgrade the schema; raises StorageError naming storage.url."""
        return await self.writer.ready()

    async def get(self, request_id: str) -> dict[str, Any] | None:
        """The stored record (visible once flushed: within about flush_interval_s)."""
        return await self.writer.get(request_id)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Stop the loop, write what is spooled (bounded time), release the spool for a successor."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if not await self.flush(timeout_s):
            log.warning("record sink closing with %d records unwritten; the next replica on this node "
                        "replays them from %s", self.spool.pending, self.spool.directory)
        self.local.set(QUEUE_DEPTH, NO_LABELS, self.spool.pending)
        self.spool.close()
        await self.writer.close()


def build_storage_sink(config: StorageConfig, metrics: Any = None, use_ray: bool = True) -> StorageSink:
    """An ingress replica's sink: its spool on this node, and the writer actor (or an in-process writer)."""
    spool = Spool(config.resolved_spool_dir(), config.max_spool_bytes, fsync=config.fsync)
    writer = ActorWriter(config) if use_ray else RecordWriter(Storage(config))
    return StorageSink(spool, writer, metrics, config.batch_size, config.flush_interval_s)

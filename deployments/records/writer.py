"""The record writer: spooled lines in, committed rows out; one per database, as a named Ray actor.

`RecordWriter` is plain Python around a `Storage`. A `write` returns only after the transaction
holding its records committed, so a caller that saw it return may forget them; a writer that
dies first never answered, and its callers send the same lines again (inserts are idempotent).
Concurrent calls (several replicas) are merged into one transaction while one is in progress.

`writer_actor(config)` gets or creates the detached actor `raygate-records-<key>`; a SQLite
writer is placed on the head node, next to the file the config named. `ActorWriter` is the
replica's stand-in with the same interface as RecordWriter.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import orjson

from serve_app.storage import Storage, StorageConfig
from serve_app.storage.store import is_bad_data

log = logging.getLogger("raygate.records")

NAMESPACE = "raygate"
MAX_ROWS_PER_TRANSACTION = 5000

Pending = tuple[list[dict[str, Any]], "asyncio.Future[int]"]


def _parse(lines: list[bytes]) -> list[dict[str, Any]]:
    records = []
    for line in lines:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            log.error("record writer: refusing a line that is not JSON (%d bytes)", len(line))
            continue
        if isinstance(record, dict) and isinstance(record.get("request_id"), str):
            records.append(record)
        else:
            log.error("record writer: refusing a record without a string request_id")
    return records


class RecordWriter:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._started = False
        self._start_lock = asyncio.Lock()
        self._queue: list[Pending] = []
        self._drainer: asyncio.Task[None] | None = None

    async def ready(self) -> int:
        """Connect and create/upgrade the schema (StorageError if impossible); returns the schema version."""
        if not self._started:
            async with self._start_lock:
                if not self._started:
                    await self.storage.start()
                    self._started = True
        return self.storage.version

    async def write(self, lines: list[bytes]) -> int:
        """Commit the records in `lines`; returns how many are stored (now or before). The rest were refused
        (not JSON, no request_id, or rejected by the database) and logged."""
        await self.ready()
        records = _parse(lines)
        if not records:
            return 0
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append((records, done))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        refused = await done
        return len(records) - refused

    async def _drain(self) -> None:
        while self._queue:
            take, rows = [], 0
            while self._queue and (not take or rows + len(self._queue[0][0]) <= MAX_ROWS_PER_TRANSACTION):
                take.append(self._queue.pop(0))
                rows += len(take[-1][0])
            try:
                refused = await self._commit(take)
            except Exception as exc:  # unreachable database: every caller retries its own lines
                for _, done in take:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for (_, done), n in zip(take, refused, strict=True):
                if not done.done():
                    done.set_result(n)

    async def _commit(self, take: list[Pending]) -> list[int]:
        """One transaction for every caller; if the database refuses some data, isolate the bad records."""
        try:
            await self.storage.write_records([r for records, _ in take for r in records])
            return [0] * len(take)
        except Exception as exc:
            if not is_bad_data(exc):
                raise
        refused = []
        for records, _ in take:
            n = 0
            for record in records:
                try:
                    await self.storage.write_records([record])
                except Exception as exc:
                    if not is_bad_data(exc):
                        raise
                    n += 1
                    log.error("record writer: the database refused record %s: %s", record["request_id"],
                              str(getattr(exc, "orig", exc)).splitlines()[0])
            refused.append(n)
        return refused

    async def get(self, request_id: str) -> dict[str, Any] | None:
        await self.ready()
        return await self.storage.get_record(request_id)

    async def count(self) -> int:
        await self.ready()
        return await self.storage.count_records()

    async def close(self) -> None:
        await self.storage.close()
        self._started = False


class RecordWriterActor(RecordWriter):
    """The actor body: a RecordWriter built from the config in the actor's own process."""

    def __init__(self, config: StorageConfig) -> None:
        super().__init__(Storage(config))

    def pid(self) -> int:
        return os.getpid()


def actor_name(config: StorageConfig) -> str:
    return f"raygate-records-{config.key}"


def writer_actor(config: StorageConfig) -> Any:
    """Get or create the database's writer actor (call inside a Ray process, never at import)."""
    import ray

    options: dict[str, Any] = {
        "name": actor_name(config), "namespace": NAMESPACE, "lifetime": "detached", "get_if_exists": True,
        "max_restarts": -1, "max_task_retries": 0, "num_cpus": 0,
    }
    if config.sqlite_path:  # the file is on the node whose `raygate serve` resolved the path
        options["resources"] = {"node:__internal_head__": 0.001}
    return ray.remote(RecordWriterActor).options(**options).remote(config)


class ActorWriter:
    """A replica's stand-in for the writer actor (same interface as RecordWriter)."""

    def __init__(self, config: StorageConfig) -> None:
        self.config = config
        self._actor: Any = None

    def _handle(self) -> Any:
        if self._actor is None:
            self._actor = writer_actor(self.config)
        return self._actor

    async def _call(self, method: str, *args: Any) -> Any:
        try:
            return await getattr(self._handle(), method).remote(*args)
        except Exception:
            self._actor = None  # look the actor up again next time (recreated if it is gone for good)
            raise

    async def ready(self) -> int:
        return await self._call("ready")

    async def write(self, lines: list[bytes]) -> int:
        return await self._call("write", lines)

    async def get(self, request_id: str) -> dict[str, Any] | None:
        return await self._call("get", request_id)

    async def count(self) -> int:
        return await self._call("count")

    async def close(self) -> None:  # the actor is shared by every replica; it stays
        self._actor = None

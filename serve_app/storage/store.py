"""`Storage`: the one module that talks to the database (SQLAlchemy 2 async Core).

SQLite goes through aiosqlite (WAL journal; we issue `BEGIN IMMEDIATE` ourselves so DDL is
transactional and writers queue on the busy timeout instead of failing), PostgreSQL through
asyncpg. What differs between the two is declared once in BACKENDS; the rest is dialect-neutral.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from . import schema
from .config import StorageConfig, parse_url

log = logging.getLogger("raygate.storage")


class StorageError(ValueError):
    """The database named by `storage.url` can't be used; the message never holds the password."""


@dataclass(frozen=True)
class Backend:
    driver: str  # SQLAlchemy drivername
    insert: Callable[[sa.Table], Any]  # dialect insert that has on_conflict_do_nothing()
    engine_options: Callable[[StorageConfig], dict[str, Any]]
    prepare: Callable[[AsyncEngine, StorageConfig], None]  # engine event hooks
    migration_lock: str | None  # serialises concurrent start-ups (SQLite: BEGIN IMMEDIATE already does)


def _sqlite_prepare(engine: AsyncEngine, config: StorageConfig) -> None:
    busy_ms = int(config.connect_timeout_s * 1000)

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver's implicit BEGIN skips DDL; "begin" below replaces it
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


BACKENDS: dict[str, Backend] = {
    "sqlite": Backend(
        driver="sqlite+aiosqlite",
        insert=sqlite.insert,
        engine_options=lambda c: {},
        prepare=_sqlite_prepare,
        migration_lock=None,
    ),
    "postgresql": Backend(
        driver="postgresql+asyncpg",
        insert=postgresql.insert,
        engine_options=lambda c: {"pool_size": c.pool_size, "max_overflow": 0, "pool_pre_ping": True,
                                  "connect_args": {"timeout": c.connect_timeout_s}},
        prepare=lambda engine, c: None,
        migration_lock="SELECT pg_advisory_xact_lock(7291466)",  # any constant shared by raygate processes
    ),
}


def _dump_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def is_bad_data(exc: BaseException) -> bool:
    """True when the database refused the data (SQLSTATE class 22/23), not when it is unreachable."""
    if isinstance(exc, (DataError, IntegrityError)):
        return True
    cause: BaseException | None = exc.orig if isinstance(exc, DBAPIError) else exc
    while cause is not None:
        if str(getattr(cause, "sqlstate", "") or "")[:2] in ("22", "23"):
            return True
        cause = cause.__cause__
    return False


class Storage:
    """The gateway's database: schema at start-up, then record writes and reads."""

    def __init__(self, config: StorageConfig) -> None:
        self.config = config
        backend_name, url = parse_url(config.url.get_secret_value())
        self.backend = BACKENDS[backend_name]
        self._url = url.set(drivername=self.backend.driver)
        self._engine: AsyncEngine | None = None
        stmt = self.backend.insert(schema.request_log).on_conflict_do_nothing(index_elements=["request_id"])
        self._insert = stmt.returning(schema.request_log.c.request_id)
        self.version = 0

    def _error(self, what: str, exc: BaseException | None = None) -> StorageError:
        reason = what
        if exc is not None:
            detail = str(exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc)
            detail = detail.strip().splitlines()[0] if detail.strip() else type(exc).__name__
            password = self._url.password
            if password:
                detail = detail.replace(str(password), "***")
            reason = f"{what}: {detail}"
        return StorageError(f"storage.url ({self.config.masked}): {reason}")

    async def start(self) -> None:
        """Connect (bounded by connect_timeout_s), then create or upgrade the schema in one transaction."""
        if self._engine is not None:
            return
        if self.config.sqlite_path:
            try:
                os.makedirs(os.path.dirname(self.config.sqlite_path) or ".", exist_ok=True)
            except OSError as exc:
                raise self._error("cannot create the database directory", exc) from None
        engine = create_async_engine(self._url, json_serializer=_dump_json, json_deserializer=orjson.loads,
                                     **self.backend.engine_options(self.config))
        self.backend.prepare(engine, self.config)
        try:
            try:
                conn = await asyncio.wait_for(engine.connect(), self.config.connect_timeout_s)
            except TimeoutError:
                limit = self.config.connect_timeout_s
                raise self._error(f"cannot connect: no answer within {limit:g} s") from None
            except Exception as exc:
                raise self._error("cannot connect", exc) from None
            try:
                await self._migrate(conn)
            finally:
                await conn.close()
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine

    async def _migrate(self, conn: Any) -> None:
        try:
            async with conn.begin():
                if self.backend.migration_lock:
                    await conn.exec_driver_sql(self.backend.migration_lock)
                found = await conn.run_sync(schema.current_version)
                if found > schema.LATEST:
                    raise self._error(f"schema version {found} is newer than this raygate ({schema.LATEST}); "
                                      "upgrade raygate")
                self.version = await conn.run_sync(schema.upgrade, found)
        except StorageError:
            raise
        except Exception as exc:
            raise self._error("cannot create or upgrade the schema", exc) from None
        if found != self.version:
            log.info("storage %s: schema upgraded from version %d to %d", self.config.masked, found,
                     self.version)

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("Storage.start() has not run")
        return self._engine

    async def write_records(self, records: list[dict[str, Any]]) -> int:
        """Insert in one transaction; a request_id already stored is skipped. Returns rows newly inserted."""
        if not records:
            return 0
        rows = [schema.request_log_row(r) for r in records]
        async with self.engine.begin() as conn:
            result = await conn.execute(self._insert, rows)
            return len(result.all())

    async def get_record(self, request_id: str) -> dict[str, Any] | None:
        t = schema.request_log
        async with self.engine.connect() as conn:
            return (await conn.execute(sa.select(t.c.record).where(t.c.request_id == request_id))).scalar()

    async def count_records(self) -> int:
        async with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(schema.request_log)
            return int((await conn.execute(query)).scalar())

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


def prepare_storage(config: StorageConfig) -> int:
    """Create or upgrade the schema from a synchronous caller (the CLI, before deploying): StorageError if
    the database is unreachable or newer than this code. Returns the schema version."""

    async def run() -> int:
        storage = Storage(config)
        await storage.start()
        await storage.close()
        return storage.version

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run())
    # called from inside an event loop (an async test, a notebook): run on a thread's own loop
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()

"""Nothing lost: records handed to a StorageSink reach the database exactly once when the writer actor
is killed under load, and when a replica dies with records still on its spool (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from deployments.records import build_storage_sink
from deployments.records.writer import NAMESPACE, actor_name
from serve_app.storage import Storage, StorageConfig, schema
from tests.support.postgres import create_database, drop_database
from tests.support.records import record

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.ray


@pytest.fixture(params=["sqlite", "postgresql"])
async def storage_config(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageConfig]:
    postgres = request.param == "postgresql"
    url = await create_database() if postgres else f"sqlite:///{tmp_path}/raygate.db"
    cfg = StorageConfig(url=url, spool_dir=str(tmp_path / "spool"), batch_size=100, flush_interval_s=0.02)
    yield cfg
    await _kill_writer(cfg)
    if postgres:
        await drop_database(url)


async def _kill_writer(cfg: StorageConfig) -> None:
    import ray

    try:
        ray.kill(ray.get_actor(actor_name(cfg), namespace=NAMESPACE), no_restart=True)
    except ValueError:
        pass


async def stored_ids(cfg: StorageConfig) -> list[str]:
    storage = Storage(cfg)
    await storage.start()
    try:
        async with storage.engine.connect() as conn:
            return list((await conn.execute(sa.select(schema.request_log.c.request_id))).scalars())
    finally:
        await storage.close()


def assert_exactly(ids: list[str], n: int) -> None:
    assert len(ids) == n, f"{len(ids)} rows for {n} records"
    assert set(ids) == {f"req-{i}" for i in range(n)}


async def test_writer_actor_killed_under_load(ray_cluster, storage_config: StorageConfig) -> None:
    import ray

    sinks = [build_storage_sink(storage_config, use_ray=True) for _ in range(2)]  # two replicas, one node
    await sinks[0].ready()
    actor = ray.get_actor(actor_name(storage_config), namespace=NAMESPACE)
    pids = {await actor.pid.remote()}
    n = 3000
    for i in range(n):
        sinks[i % 2].submit(record(i))
        if i % 20 == 0:
            await asyncio.sleep(0.001)  # requests keep arriving while batches are written
        if i in (1000, 2000):
            ray.kill(actor, no_restart=False)  # Ray restarts it; writes in flight fail and are retried
    for sink in sinks:
        assert await sink.flush(timeout_s=60), f"{sink.spool.pending} records still spooled"
    pids.add(await actor.pid.remote())
    for sink in sinks:
        await sink.close()
    print(f"writer kills: {sum(s.failures for s in sinks)} failed writes retried")
    assert len(pids) == 2  # the writer really was replaced
    assert_exactly(await stored_ids(storage_config), n)


REPLICA = """
import asyncio, os, sys, time
from deployments.records import build_storage_sink
from serve_app.storage import StorageConfig
from tests.support.records import record

cfg = StorageConfig(url=sys.argv[1], spool_dir=sys.argv[2], batch_size=100)
sink = build_storage_sink(cfg, use_ray=False)
for i in range(500):
    sink.submit(record(i))
assert asyncio.run(sink.flush())  # the first half reached the database and was acknowledged
for i in range(500, 1000):
    sink.submit(record(i))  # the second half is only on the spool when the replica dies
print("spooled", flush=True)
time.sleep(600)
"""


async def test_replica_killed_with_records_on_its_spool(ray_cluster, storage_config: StorageConfig) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", REPLICA, storage_config.url.get_secret_value(),
                             storage_config.spool_dir], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "spooled"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(await stored_ids(storage_config)) == 500
    successor = build_storage_sink(storage_config, use_ray=True)  # the replica Serve starts in its place
    assert successor.spool.pending == 500  # it replays only what was never acknowledged
    assert await successor.flush(timeout_s=60)
    await successor.close()
    assert_exactly(await stored_ids(storage_config), 1000)
    assert os.listdir(storage_config.spool_dir) == []

"""Request records on a real Serve app with two ingress replicas, through the official openai SDK.

A mixed burst (plain, streamed, cache hits, upstream errors, clients that hang up mid-stream)
leaves exactly one stored row per request, with the status each request ended with, on SQLite
and on the PostgreSQL at 127.0.0.1:5432. Then nothing is lost when an ingress replica is killed
(SIGKILL) or the writer actor is killed under load: every request whose answer reached the client
has its row.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa

from serve_app.storage import Storage, StorageConfig, schema
from tests.support.postgres import create_database, drop_database

pytestmark = pytest.mark.ray

KEY, ADMIN = "rec-key", "rec-admin"
QUESTION = [{"role": "user", "content": "which replica answers me"}]


def _config(storage: dict[str, Any]) -> dict[str, Any]:
    return {
        "gateway": {"api_keys": [{"id": "team", "key": KEY}], "admin_keys": [{"id": "ops", "key": ADMIN}]},
        "providers": {"mock": {"type": "mock"}, "slow": {"type": "mock", "chunk_delay_ms": 200}},
        "default_provider": "mock",
        "cache": {"enabled": True, "mode": "exact"},
        "serve": {"ingress_replicas": 2},
        "storage": {**storage, "flush_interval_s": 0.05},
    }


@pytest.fixture(params=["sqlite", "postgresql"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    postgres = request.param == "postgresql"
    url = await create_database() if postgres else f"sqlite:///{tmp_path}/raygate.db"
    yield {"url": url, "spool_dir": str(tmp_path / "spool"), "backend": request.param}
    if postgres:
        await drop_database(url)


async def _rows(url: str) -> dict[str, dict[str, Any]]:
    db = Storage(StorageConfig(url=url))
    await db.start()
    try:
        async with db.engine.connect() as conn:
            rows = (await conn.execute(sa.select(schema.request_log.c.request_id, schema.request_log.c.status))).all()
        return {r[0]: {"status": r[1]} for r in rows}
    finally:
        await db.close()


async def _wait_rows(url: str, ids: set[str], timeout: float = 60.0) -> dict[str, dict[str, Any]]:
    deadline = time.time() + timeout
    rows: dict[str, dict[str, Any]] = {}
    while time.time() < deadline:
        rows = await _rows(url)
        if ids <= set(rows):
            return rows
        await asyncio.sleep(0.25)
    missing = sorted(ids - set(rows))
    raise AssertionError(f"{len(missing)} of {len(ids)} records never stored, e.g. {missing[:3]}")


async def _burst(base_url: str, tag: str) -> dict[str, int]:
    """request id -> the status the client saw (499: it hung up mid-stream)."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0)
    seen: dict[str, int] = {}

    async def one(i: int) -> None:
        rid = f"{tag}-{i}-{uuid.uuid4().hex[:6]}"
        h = {"x-request-id": rid}
        kind = i % 5
        try:
            if kind == 0:
                await client.chat.completions.create(model="mock", messages=QUESTION, extra_headers=h)
            elif kind == 1:  # the same question again and again: cache hits after the first
                await client.chat.completions.create(model="mock", messages=QUESTION, stream=True, extra_headers=h)
            elif kind == 2:
                stream = await client.chat.completions.create(
                    model="mock", messages=[{"role": "user", "content": f"stream {i}"}], stream=True,
                    extra_headers=h)
                async for _ in stream:
                    pass
            elif kind == 3:
                await client.chat.completions.create(model="mock", messages=[{"role": "user", "content": str(i)}],
                                                     extra_headers={**h, "x-raygate-mock-fail": "503"})
            else:
                async with httpx.AsyncClient(timeout=30) as http:
                    body = {"model": "slow/mock", "stream": True,
                            "messages": [{"role": "user", "content": "a b c d e f g h i j k l"}]}
                    async with http.stream("POST", base_url + "/chat/completions", json=body,
                                           headers={**h, "authorization": f"Bearer {KEY}"}) as resp:
                        async for _ in resp.aiter_raw():
                            break  # the first chunk, then hang up
                seen[rid] = 499
                return
            seen[rid] = 200
        except openai.APIStatusError as err:
            seen[rid] = err.status_code

    await asyncio.gather(*(one(i) for i in range(40)))
    await client.close()
    return seen


async def test_a_mixed_burst_is_stored_one_row_per_request(deploy_gateway: Any, storage: dict[str, Any]) -> None:
    backend = storage.pop("backend")
    app = deploy_gateway(_config(storage), name=f"records-{backend}")
    seen = await _burst(app.base_url, backend)
    rows = await _wait_rows(storage["url"], set(seen))
    assert {rid: rows[rid]["status"] for rid in seen} == seen
    assert len(rows) == len(seen)  # nothing recorded twice, nothing extra
    async with httpx.AsyncClient(timeout=10) as http:  # the admin API reads the same rows
        rid = next(r for r, s in seen.items() if s == 503)
        got = (await http.get(f"{app.base_url}/admin/logs/{rid}", headers={"authorization": f"Bearer {ADMIN}"})).json()
    assert (got["status"], got["provider"], got["attempts"][0]["status"]) == (503, "mock", 503)


def _ingress_pids(app_name: str) -> list[int]:
    """PIDs of the app's ingress replicas, by the process title Ray gives actor workers."""
    title = f"ServeReplica:{app_name}:Ingress".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if title in cmdline:
                pids.append(int(entry))
    return pids


async def _load(base_url: str, tag: str, seconds: float, during: Any) -> tuple[set[str], int]:
    """Requests for `seconds` while `during()` runs; the ids answered 200, and how many failed."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0, timeout=10)
    answered: set[str] = set()
    failed = 0
    stop = time.time() + seconds

    async def worker(w: int) -> None:
        nonlocal failed
        n = 0
        while time.time() < stop:
            rid = f"{tag}-{w}-{n}"
            n += 1
            try:
                await client.chat.completions.create(model="mock", extra_headers={"x-request-id": rid},
                                                     messages=[{"role": "user", "content": rid}])
                answered.add(rid)
            except (openai.APIConnectionError, openai.APIStatusError):
                failed += 1  # in flight on the killed replica: the client got no answer
                await asyncio.sleep(0.05)

    await asyncio.gather(*(worker(w) for w in range(6)), during())
    await client.close()
    return answered, failed


async def test_nothing_answered_is_lost_when_a_replica_or_the_writer_dies(deploy_gateway: Any,
                                                                          tmp_path: Path) -> None:
    import ray

    from deployments.records.writer import NAMESPACE, actor_name

    storage = {"url": f"sqlite:///{tmp_path}/kill.db", "spool_dir": str(tmp_path / "spool")}
    app = deploy_gateway(_config(storage), name="records-kill")
    pids = _ingress_pids("records-kill")
    assert len(pids) == 2

    async def kill_replica() -> None:
        await asyncio.sleep(1.5)
        os.kill(pids[0], signal.SIGKILL)

    answered, _ = await _load(app.base_url, "replica", 5.0, kill_replica)
    assert len(answered) > 50
    await _wait_rows(storage["url"], answered, timeout=90)  # the successor replays the dead replica's spool

    writer = ray.get_actor(actor_name(StorageConfig(**storage)), namespace=NAMESPACE)

    async def kill_writer() -> None:
        for _ in range(2):
            await asyncio.sleep(1.0)
            ray.kill(writer, no_restart=False)

    answered, failed = await _load(app.base_url, "writer", 4.0, kill_writer)
    assert failed == 0  # the writer is off the request path: its death costs no request
    rows = await _wait_rows(storage["url"], answered, timeout=60)
    assert all(rows[rid]["status"] == 200 for rid in answered)

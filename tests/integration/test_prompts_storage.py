"""Prompt storage on SQLite and on the real PostgreSQL (no Ray): versions, labels, tests, revisions,
concurrent deploys, per-version stats from request_log, an upgrade from schema version 1, and prompts
that survive a gateway restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from deployments.prompts.store import PromptStore
from serve_app.errors import GatewayError
from serve_app.storage import Storage, StorageConfig, schema
from tests.support.gateway_server import GatewayServer
from tests.support.postgres import create_database, drop_database
from tests.support.records import record

MESSAGES = [{"role": "user", "content": "Ticket: {{t}}"}]


def content(**over: Any) -> dict[str, Any]:
    return {"messages": MESSAGES, "model": "mock", "parameters": {}, "provider": None, "config": None,
            "description": None, **over}


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    postgres = request.param == "postgresql"
    url = await create_database() if postgres else f"sqlite:///{tmp_path}/raygate.db"
    yield url
    if postgres:
        await drop_database(url)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[PromptStore]:
    s = PromptStore(Storage(StorageConfig(url=db_url)))
    await s.ready()
    yield s
    await s.close()


async def test_versions_labels_tests_and_revisions(store: PromptStore) -> None:
    first = await store.deploy("p", "1.0.0", content(), ["production"], "ops")
    assert first["created"] and first["labels"] == {"production": None}
    assert not (await store.deploy("p", "1.0.0", content(), [], "ops"))["created"]
    with pytest.raises(GatewayError) as err:
        await store.deploy("p", "1.0.0", content(model="other"), [], "ops")
    assert err.value.status == 409
    await store.deploy("p", "1.1.0", content(description="second"), ["production", "staging"], "ops")

    snap = await store.snapshot("p", None, [])
    assert snap["labels"] == {"production": "1.1.0", "staging": "1.1.0"}
    assert set(snap["versions"]) == {"1.0.0", "1.1.0"} and snap["versions"]["1.1.0"]["content"]["description"] == "second"
    assert await store.snapshot("p", snap["revision"], ["1.0.0", "1.1.0"]) == {"revision": snap["revision"]}
    await store.set_label("p", "staging", "1.0.0", "ops")
    later = await store.snapshot("p", snap["revision"], ["1.0.0", "1.1.0"])
    assert later["revision"] > snap["revision"] and later["versions"] == {}  # known versions are not sent again
    assert later["labels"]["staging"] == "1.0.0"
    assert await store.snapshot("missing", None, []) is None

    await store.put_test("p", "exp", {"1.0.0": 1.0, "1.1.0": 3.0}, "metadata.user_id", "ops")
    doc = await store.get("p")
    assert doc["tests"] == {"exp": {"versions": {"1.0.0": 1.0, "1.1.0": 3.0}, "sticky_key": "metadata.user_id"}}
    with pytest.raises(GatewayError) as err:
        await store.delete_version("p", "1.0.0")  # labelled and in a test
    assert err.value.status == 409
    await store.delete_label("p", "staging")
    with pytest.raises(GatewayError, match="in test"):
        await store.delete_version("p", "1.0.0")
    await store.delete_test("p", "exp")
    await store.delete_version("p", "1.0.0")
    assert [v["version"] for v in (await store.get("p"))["versions"]] == ["1.1.0"]
    listed = await store.list()
    assert listed[0]["name"] == "p" and listed[0]["labels"] == {"production": "1.1.0"}


async def test_concurrent_deploys_of_one_version_one_content_wins(db_url: str) -> None:
    a, b = (PromptStore(Storage(StorageConfig(url=db_url))) for _ in range(2))
    await a.ready()
    await b.ready()
    try:
        results = await asyncio.gather(a.deploy("race", "1.0.0", content(model="m-a"), [], "x"),
                                       b.deploy("race", "1.0.0", content(model="m-b"), [], "y"),
                                       return_exceptions=True)
        ok = [r for r in results if isinstance(r, dict)]
        refused = [r for r in results if isinstance(r, GatewayError)]
        assert len(ok) == 1 and len(refused) == 1 and refused[0].status == 409, results
        stored = await a.get_version("race", "1.0.0")
        assert stored["model"] == ("m-a" if ok[0] is results[0] else "m-b")
    finally:
        await a.close()
        await b.close()


def served(i: int, version: str, status: int = 200, test: str = "exp", name: str = "p", **facts: Any) -> dict:
    return record(i, status=status, latency_ms=float(10 * (i % 7 + 1)),
                  usage={"input": 10, "cached_input": 0, "cache_write": 0, "output": 5, "reasoning": 0},
                  facts={"prompt": {"name": name, "version": version, "test": test}, **facts})


async def test_per_version_stats_from_request_log(store: PromptStore) -> None:
    rows = [served(i, "1.0.0", cost=0.5) for i in range(6)]
    rows += [served(100 + i, "1.1.0", status=502 if i < 2 else 200, cost={"usd": 0.25}) for i in range(4)]
    rows += [served(200, "1.1.0", test="other"), served(201, "1.0.0", name="q")]  # another test / prompt
    rows += [record(300)]  # not a prompt render
    assert await store.storage.write_records(rows) == len(rows)
    stats = {v["version"]: v for v in (await store.stats("p", "exp"))["versions"]}
    assert set(stats) == {"1.0.0", "1.1.0"}
    old, new = stats["1.0.0"], stats["1.1.0"]
    assert (old["requests"], old["errors"], old["input_tokens"], old["output_tokens"]) == (6, 0, 60, 30)
    assert old["cost"] == pytest.approx(3.0) and new["cost"] == pytest.approx(1.0)
    assert (new["requests"], new["errors"], new["error_rate"]) == (4, 2, 0.5)
    assert old["latency_ms"]["mean"] == pytest.approx(sum(10.0 * (i % 7 + 1) for i in range(6)) / 6)
    since = 1700000000.0 + 102  # records' received_at is 1700000000 + i
    recent = {v["version"]: v["requests"] for v in (await store.stats("p", "exp", since))["versions"]}
    assert recent == {"1.1.0": 2}


async def test_upgrade_from_schema_version_1(db_url: str) -> None:
    engine_store = Storage(StorageConfig(url=db_url))
    # a database as version 1 left it: request_log only
    v1 = [m for m in schema.MIGRATIONS if m.version == 1]
    saved = schema.MIGRATIONS[:], schema.LATEST
    schema.MIGRATIONS[:] = v1
    schema.LATEST = 1
    try:
        await engine_store.start()
        assert engine_store.version == 1
        async with engine_store.engine.begin() as conn:  # a row as version 1's table holds it
            value = "CAST(:rec AS JSONB)" if conn.dialect.name == "postgresql" else ":rec"
            await conn.execute(sa.text(f"INSERT INTO request_log (request_id, record) VALUES (:id, {value})"),
                               {"id": "req-1", "rec": orjson.dumps(record(1)).decode()})
    finally:
        schema.MIGRATIONS[:], schema.LATEST = saved
        await engine_store.close()
    upgraded = PromptStore(Storage(StorageConfig(url=db_url)))
    await upgraded.ready()
    try:
        assert upgraded.storage.version == schema.LATEST
        await upgraded.deploy("p", "1.0.0", content(), [], "ops")
        assert await upgraded.storage.get_record("req-1") is not None  # the old rows are still there
        async with upgraded.storage.engine.connect() as conn:
            assert (await conn.execute(sa.select(sa.func.count()).select_from(schema.prompt_version))).scalar() == 1
    finally:
        await upgraded.close()


async def test_prompts_survive_a_gateway_restart(db_url: str, tmp_path: Path) -> None:
    config = {"gateway": {"admin_keys": [{"id": "ops", "key": "adm"}]}, "providers": {"mock": {"type": "mock"}},
              "default_provider": "mock",
              "storage": {"url": db_url, "spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05}}
    admin = {"authorization": "Bearer adm"}

    def first_life() -> None:
        srv = GatewayServer(config).start()
        try:
            resp = httpx.post(f"{srv.url}/v1/prompts/kept/versions", headers=admin, timeout=10,
                              json={"version": "2.0.0", "messages": MESSAGES, "model": "mock", "labels": ["production"]})
            assert resp.status_code == 201, resp.text
        finally:
            srv.stop()

    def second_life() -> dict[str, Any]:
        srv = GatewayServer(config).start()
        try:
            doc = httpx.get(f"{srv.url}/v1/prompts/kept", timeout=10).json()
            reply = httpx.post(f"{srv.url}/v1/prompts/kept/render", json={"variables": {"t": "still here"}},
                               timeout=10).json()
            return {"doc": doc, "reply": reply}
        finally:
            srv.stop()

    await asyncio.to_thread(first_life)
    after = await asyncio.to_thread(second_life)
    assert after["doc"]["labels"] == {"production": "2.0.0"}
    assert after["reply"]["choices"][0]["message"]["content"] == "Mock reply to: Ticket: still here"
    assert after["reply"]["prompt"] == {"name": "kept", "version": "2.0.0"}

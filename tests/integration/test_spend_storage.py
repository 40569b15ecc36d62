"""The spend ledger over real storage, SQLite and PostgreSQL: analytics group_by over a seeded ledger,
the counters rebuilt after a restart (nothing lost, nothing twice), alerts not fired again."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from deployments.spend.admin import SpendAdmin
from deployments.spend.service import SpendService
from serve_app.config import parse_config
from serve_app.errors import GatewayError
from serve_app.storage import Storage, StorageConfig

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _ts(day: str, hour: int = 12) -> float:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC).timestamp()


KEYS = ["team-a", "team-b"]
PROVIDERS = ["openai-primary", "anthropic"]
USERS = ["u1", "u2", None]


def _seed() -> list[dict[str, Any]]:
    """Records over 2026-05-01..03 and one second outside each end; costs chosen to be exact in binary."""
    out = []
    days = [("2026-05-01", 0), ("2026-05-02", 12), ("2026-05-03", 23)]
    for n, ((day, hour), key, provider, user) in enumerate(itertools.product(days, KEYS, PROVIDERS, USERS)):
        md = {"project": f"p{n % 2}"} | ({"user_id": user} if user else {})
        out.append(_record(f"r{n}", _ts(day, hour) + 0.25, key, provider, md, 0.125 * (n % 4 + 1), 10 + n, n))
    out.append(_record("before", _ts("2026-04-30", 23) + 3599.5, "team-a", "anthropic", {}, 100.0, 1, 1))
    out.append(_record("after", _ts("2026-05-04", 0), "team-a", "anthropic", {}, 100.0, 1, 1))
    out.append(_record("failed", _ts("2026-05-02"), "team-b", "anthropic", {}, None, 0, 0, status=502))
    return out


def _record(rid: str, at: float, key: str, provider: str, md: dict, usd: float | None, inp: int, out: int,
            status: int = 200) -> dict[str, Any]:
    facts = {"cost": {"usd": usd, "source": "config"}} if status == 200 else {}
    return {"request_id": rid, "kind": "chat", "received_at": at, "done_at": at + 0.5, "key_id": key,
            "provider": provider, "model": f"{provider}-model", "status": status, "metadata": md,
            "usage": {"input": inp, "cached_input": 0, "cache_write": 0, "output": out, "reasoning": 0}
            if status == 200 else None, "facts": facts}


def _expected(records: list[dict], group: Any) -> dict[Any, dict[str, Any]]:
    lo, hi = _ts("2026-05-01", 0), _ts("2026-05-04", 0)
    out: dict[Any, dict[str, Any]] = {}
    for r in records:
        if not lo <= r["received_at"] < hi:
            continue
        g = out.setdefault(group(r), {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cost": 0.0})
        g["requests"] += 1
        g["input_tokens"] += (r["usage"] or {}).get("input", 0)
        g["output_tokens"] += (r["usage"] or {}).get("output", 0)
        g["cost"] += (r["facts"].get("cost") or {}).get("usd") or 0.0
    return out


GROUPS = {
    "provider": lambda r: r["provider"],
    "model": lambda r: r["model"],
    "key": lambda r: r["key_id"],
    "user_id": lambda r: r["metadata"].get("user_id"),
    "metadata.project": lambda r: r["metadata"].get("project"),
    "day": lambda r: datetime.fromtimestamp(r["received_at"], UTC).date().isoformat(),
}


@pytest.fixture(params=["sqlite", "postgresql"])
async def storage_url(request: Any, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/spend.db"
        return
    from tests.support.postgres import create_database, drop_database

    url = await create_database()
    yield url
    await drop_database(url)


def _config(url: str, **spend: Any) -> Any:
    return parse_config({"gateway": {"api_keys": [{"id": k, "key": f"sk-{k}"} for k in KEYS]},
                         "providers": {p: {"type": "mock"} for p in PROVIDERS},
                         "storage": {"url": url}, **spend})


async def _write(url: str, records: list[dict]) -> None:
    storage = Storage(StorageConfig(url=url))
    await storage.start()
    await storage.write_records(records)
    await storage.close()


async def test_spend_analytics_group_by_every_key(storage_url: str) -> None:
    records = _seed()
    await _write(storage_url, records)
    service = SpendService(_config(storage_url))
    admin = SpendAdmin(service)
    try:
        import orjson

        for group_by, key_of in GROUPS.items():
            reply = await admin.spend({"start_date": "2026-05-01", "end_date": "2026-05-03", "group_by": group_by}, "ops")
            body = orjson.loads(reply.body)
            assert (body["start_date"], body["end_date"], body["group_by"]) == ("2026-05-01", "2026-05-03", group_by)
            expected = _expected(records, key_of)
            got = {g.pop("key"): g for g in body["groups"]}
            assert got == expected, group_by  # costs are multiples of 1/8: exact in binary
            total = _expected(records, lambda r: "all")["all"]
            assert body["total"] == total
            assert body["total"]["requests"] == 37  # 36 seeded in range + the failed one, not the two outside
            costs = [g["cost"] for g in body["groups"]]
            assert costs == sorted(costs, reverse=True)
        with pytest.raises(GatewayError) as bad:
            await admin.spend({"start_date": "2026-05-32"}, "ops")
        assert (bad.value.status, bad.value.param) == (400, "start_date")
        with pytest.raises(GatewayError) as bad:
            await admin.spend({"start_date": "2026-05-03", "end_date": "2026-05-01"}, "ops")
        assert bad.value.param == "start_date"
        for params, name in [({"group_by": "team"}, "group_by"), ({"group_by": "metadata."}, "group_by"),
                             ({"end_date": "May 3"}, "end_date"), ({"tz": "CET"}, "tz")]:
            with pytest.raises(GatewayError) as bad:
                await admin.spend(params, "ops")
            assert (bad.value.status, bad.value.param) == (400, name)
    finally:
        await service.close()


async def test_counters_are_rebuilt_after_a_restart_without_counting_twice_or_alerting_again(
        storage_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from deployments.spend import service as service_module

    monkeypatch.setattr(service_module, "CATCH_UP_S", (0.2, 0.3))
    now = datetime.now(UTC).timestamp()
    spend = {"budgets": [{"scope": {"key": "team-a"}, "limit": 10.0, "period": "daily"}],
             "alerts": {"daily": {"type": "budget", "threshold": 1.0, "period": "daily"}}}
    records = [_record(f"x{i}", now - 10 + i * 0.01, "team-a", "anthropic", {}, 0.25, 1, 1) for i in range(8)]
    entries = [(r["request_id"], r["received_at"], 0.25, "team-a", "anthropic", {}) for r in records]
    first = SpendService(_config(storage_url, **spend))
    await first.report(entries)  # the replicas' reports ...
    await first.drain()
    await _write(storage_url, records)  # ... and the same requests' records, stored by the record writer
    assert (await first.budgets())[0]["spent"] == pytest.approx(2.0)
    assert [a["name"] for a in await first.alerts()] == ["daily"]
    late = [_record(f"late{i}", now - 1 + i * 0.01, "team-a", "anthropic", {}, 0.5, 1, 1) for i in range(2)]
    await first.report([(r["request_id"], r["received_at"], 0.5, "team-a", "anthropic", {}) for r in late])
    await first.close()  # the actor died, having counted two requests whose records were still on a spool

    second = SpendService(_config(storage_url, **spend))
    try:
        assert (await second.budgets())[0]["spent"] == pytest.approx(2.0)  # rebuilt from request_log
        await second.report(entries[4:])  # a replica sends its last batch again: its answer was lost
        await second.drain()
        assert (await second.budgets())[0]["spent"] == pytest.approx(2.0)
        assert (await second.counters())["duplicates"] == 4
        assert [a["name"] for a in await second.alerts()] == ["daily"]  # not fired again within the period
        await _write(storage_url, late)  # the spool writes them after the rebuild: the catch-up scan counts them
        for _ in range(50):
            if (await second.budgets())[0]["spent"] == pytest.approx(3.0):
                break
            await asyncio.sleep(0.05)
        assert (await second.budgets())[0]["spent"] == pytest.approx(3.0)
        await asyncio.sleep(0.4)  # the next scan finds them again and does not count them twice
        assert (await second.budgets())[0]["spent"] == pytest.approx(3.0)
    finally:
        await second.close()

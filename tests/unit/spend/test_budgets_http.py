"""Budgets through the in-process gateway: refusal before any upstream call, the concurrent-burst bound."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from deployments.spend.budget_stage import estimate_prompt_tokens
from tests.support.gateway_server import GatewayServer

M = 1e-6
MESSAGES = [{"role": "user", "content": "x" * 300}]  # estimated at 300 // 3 + 4 + 1 = 105 prompt tokens
WORST = 105 * 1000 * M + 10 * 2000 * M  # prompt estimate x input + max_tokens x output = 0.125 USD
LIMIT = 1.0  # room for exactly 8 worst cases


@pytest.fixture(scope="module")
def server() -> Iterator[GatewayServer]:
    s = GatewayServer({
        "gateway": {"api_keys": [{"id": "team-a", "key": "sk-a"}, {"id": "team-b", "key": "sk-b"}],
                    "admin_keys": [{"id": "ops", "key": "sk-ops"}]},
        "providers": {"m": {"type": "mock", "latency_ms": 400}},
        "models": {"mock": "m"},
        "pricing": {"mock": {"*": {"input": 1000, "output": 2000}}},
        "budgets": [{"scope": {"key": "team-a"}, "limit": LIMIT, "period": "daily"},
                    {"name": "team-b-watch", "scope": {"key": "team-b"}, "limit": 0.001, "action": "alert_only"}],
    }).start()
    yield s
    s.stop()


async def _burst(s: GatewayServer, n: int, key: str) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=s.base_url, timeout=30, headers={"authorization": f"Bearer {key}"}) as c:
        body = {"model": "mock", "messages": MESSAGES, "max_tokens": 10}
        return list(await asyncio.gather(*(c.post("/chat/completions", json=body) for _ in range(n))))


def _budgets(s: GatewayServer) -> dict[str, dict]:
    data = httpx.get(s.base_url + "/admin/budgets", headers={"authorization": "Bearer sk-ops"}).json()["data"]
    return {b["name"]: b for b in data}


def test_the_estimate_is_what_the_bound_is_computed_from() -> None:
    assert estimate_prompt_tokens({"messages": MESSAGES}, "chat") == 105


def test_a_concurrent_burst_never_overshoots_and_the_exhausted_budget_refuses(server: GatewayServer) -> None:
    replies = asyncio.run(_burst(server, 30, "sk-a"))
    ok = [r for r in replies if r.status_code == 200]
    refused = [r for r in replies if r.status_code == 429]
    # all 30 are in flight together (the upstream takes 400 ms): exactly the worst cases that fit are admitted
    assert len(ok) == int(LIMIT // WORST) == 8
    assert len(refused) == 22
    err = refused[0].json()["error"]
    assert err["code"] == "budget_exceeded" and err["type"] == "rate_limit_error"
    assert "key=team-a/daily" in err["message"] and "scope key=team-a" in err["message"]
    assert int(refused[0].headers["retry-after"]) > 0
    spent = sum(r.json()["usage"]["estimated_cost"] for r in ok)
    assert spent <= LIMIT
    budget = _settled(server, "key=team-a/daily", spent)
    assert budget["spent"] == pytest.approx(spent) and budget["reserved"] == 0.0
    assert budget["remaining"] == pytest.approx(LIMIT - spent)


def _settled(s: GatewayServer, name: str, spent: float) -> dict:
    """The budget once the spend reports arrived (they are batched every 0.5 s)."""
    for _ in range(100):
        budget = _budgets(s)[name]
        if budget["reserved"] == 0.0 and budget["spent"] == pytest.approx(spent):
            return budget
        time.sleep(0.05)
    return budget


def test_a_refused_request_makes_no_upstream_call(server: GatewayServer) -> None:
    r = httpx.post(server.base_url + "/chat/completions", headers={"authorization": "Bearer sk-a",
                                                                   "x-request-id": "refused-1"},
                   json={"model": "mock", "messages": MESSAGES, "max_tokens": 100000})
    assert r.status_code == 429 and r.json()["error"]["code"] == "budget_exceeded"

    async def row() -> dict:
        for _ in range(200):
            found = await server.gateway.records.get("refused-1")
            if found:
                return found
            await asyncio.sleep(0.02)
        raise AssertionError("not stored")
    record = asyncio.run(row())
    assert record["attempts"] == [] and record["status"] == 429
    assert record["facts"]["budget"] == {"refused": "key=team-a/daily"}


def test_alert_only_budgets_never_refuse_but_record_an_alert(server: GatewayServer) -> None:
    replies = asyncio.run(_burst(server, 3, "sk-b"))
    assert [r.status_code for r in replies] == [200, 200, 200]
    budget = _settled(server, "team-b-watch", sum(r.json()["usage"]["estimated_cost"] for r in replies))
    assert budget["spent"] > budget["limit"] and budget["remaining"] == 0.0
    for _ in range(100):
        listed = httpx.get(server.base_url + "/admin/alerts", headers={"authorization": "Bearer sk-ops"}).json()["data"]
        if listed:
            break
        time.sleep(0.05)
    assert [(a["name"], a["type"], a["level"]) for a in listed] == [("budget:team-b-watch", "budget", 1.0)]
    assert "reached 100% of the 0.001 USD limit" in listed[0]["message"]

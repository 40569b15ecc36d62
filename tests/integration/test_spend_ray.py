"""The spend ledger actor on a real Serve app with two ingress replicas, through the official openai SDK:
killed (twice) under load, it is rebuilt from storage and ends with exactly the spend the clients were
charged — none lost, none counted twice — which is also what the analytics endpoint reports."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from serve_app.config import parse_config

pytestmark = pytest.mark.ray

KEY, ADMIN = "spend-key", "spend-admin"


def _config(tmp_path: Path) -> dict[str, Any]:
    return {
        "gateway": {"api_keys": [{"id": "team", "key": KEY}], "admin_keys": [{"id": "ops", "key": ADMIN}]},
        "providers": {"mock": {"type": "mock"}},
        "default_provider": "mock",
        "pricing": {"mock": {"*": {"input": 10, "output": 30}}},
        "budgets": [{"scope": {"key": "team"}, "limit": 1000, "period": "total"}],
        "serve": {"ingress_replicas": 2},
        "storage": {"url": f"sqlite:///{tmp_path}/spend.db", "spool_dir": str(tmp_path / "spool"),
                    "flush_interval_s": 0.05},
    }


async def _load(base_url: str, seconds: float, during: Any) -> tuple[dict[str, float], int]:
    """Requests for `seconds` while `during()` runs: the cost each answered request was charged, and how
    many were refused while the ledger restarted (503 budget_unavailable: nothing spent)."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0, timeout=15)
    charged: dict[str, float] = {}
    unavailable = 0
    stop = time.time() + seconds

    async def worker(w: int) -> None:
        nonlocal unavailable
        n = 0
        while time.time() < stop:
            rid = f"spend-{w}-{n}"
            n += 1
            try:
                reply = await client.chat.completions.create(
                    model="mock", extra_headers={"x-request-id": rid}, max_tokens=20,
                    messages=[{"role": "user", "content": f"count the cost of request {rid}"}])
            except openai.APIStatusError as exc:
                assert exc.status_code == 503 and exc.body["code"] == "budget_unavailable", exc.body
                unavailable += 1
                await asyncio.sleep(0.05)
                continue
            charged[rid] = reply.usage.model_extra["estimated_cost"]

    await asyncio.gather(*(worker(w) for w in range(6)), during())
    await client.close()
    return charged, unavailable


async def test_spend_survives_the_ledger_actor_being_killed_under_load(deploy_gateway: Any, tmp_path: Path) -> None:
    import ray

    from deployments.spend.service import NAMESPACE, actor_name

    config = _config(tmp_path)
    app = deploy_gateway(config, name="spend-kill")
    admin = {"authorization": f"Bearer {ADMIN}"}
    assert httpx.get(app.base_url + "/admin/budgets", headers=admin).status_code == 200  # the actor exists
    ledger = ray.get_actor(actor_name(parse_config(config)), namespace=NAMESPACE)

    async def kill_ledger() -> None:
        for _ in range(2):
            await asyncio.sleep(1.5)
            ray.kill(ledger, no_restart=False)

    charged, unavailable = await _load(app.base_url, 5.0, kill_ledger)
    assert len(charged) > 50
    expected = sum(charged.values())

    spent = None
    async with httpx.AsyncClient(base_url=app.base_url, headers=admin, timeout=30) as c:
        for _ in range(120):  # reports are batched (0.5 s) and retried while the actor restarts
            budgets = (await c.get("/admin/budgets")).json()["data"]
            spent, reserved = budgets[0]["spent"], budgets[0]["reserved"]
            if spent == pytest.approx(expected, rel=1e-9) and reserved == 0:
                break
            await asyncio.sleep(0.5)
        assert spent == pytest.approx(expected, rel=1e-9), (spent, expected, unavailable)
        assert reserved == 0
        today = datetime.now(UTC).date().isoformat()
        report = (await c.get("/admin/analytics/spend", params={"start_date": today, "end_date": today,
                                                                 "group_by": "key"})).json()
    assert report["total"]["cost"] == pytest.approx(expected, rel=1e-9)
    assert report["groups"][0]["key"] == "team"
    assert report["total"]["requests"] == len(charged) + unavailable

"""Alert delivery with local receivers: a webhook (retried), an SMTP server (aiosmtpd), a PagerDuty-shaped
Events API v2 endpoint; fired once per period, never crashing on failures, secrets never logged."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from deployments.spend import channels
from deployments.spend.service import SpendService
from serve_app.config import parse_config
from tests.support.gateway_server import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

WEBHOOK_TOKEN = "T0KEN-in-the-url-9f8e"
PD_KEY = "pd-routing-key-1234567890"
SMTP_PASSWORD = "smtp-pass-77aa"


class Receiver:
    """A local HTTP server recording JSON POSTs; answers `statuses` in turn (then the last one)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[dict[str, Any]] = []
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        status = self.statuses[min(len(self.bodies) - 1, len(self.statuses) - 1)]
        return web.json_response({"status": "ok"}, status=status)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's API
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channels, "BACKOFF_S", 0.01)


def _config(tmp_path: Path, alerts: dict, smtp: dict | None = None) -> Any:
    raw = {"providers": {"m": {"type": "mock"}}, "storage": {"url": f"sqlite:///{tmp_path}/alerts.db"}, "alerts": alerts}
    if smtp:
        raw["smtp"] = smtp
    return parse_config(raw)


async def test_budget_alert_reaches_webhook_email_and_pagerduty_once_per_period(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    caplog.set_level(logging.DEBUG)
    try:
        async with Receiver([500, 200]) as hook, Receiver([202]) as pd:
            config = _config(tmp_path, {"daily-budget": {
                "type": "budget", "threshold": 1.0, "period": "daily", "notify_at": [0.5, 1.0],
                "channels": [{"type": "webhook", "url": f"http://127.0.0.1:{hook.port}/hooks/{WEBHOOK_TOKEN}"},
                             {"type": "email", "address": "team@example.com"},
                             {"type": "pagerduty", "integration_key": PD_KEY,
                              "url": f"http://127.0.0.1:{pd.port}/v2/enqueue"}]}},
                smtp={"host": "127.0.0.1", "port": smtp.port, "starttls": False, "from": "raygate@example.com"})
            service = SpendService(config)
            now = time.time()
            await service.report([("a", now, 0.6, None, "m", {})])
            await service.report([("b", now, 0.3, None, "m", {})])  # 0.9: no new level
            await service.drain()
            await service.report([("c", now, 0.2, None, "m", {})])  # 1.1: the 100% level
            await service.drain()
            rows = await service.alerts()
            await service.close()

            again = SpendService(config)  # a restart within the period: rebuilt, nothing fired again
            await again.report([("d", now, 0.5, None, "m", {})])
            await again.drain()
            assert len(await again.alerts()) == 2
            await again.close()

        assert sorted(r["level"] for r in rows) == [0.5, 1.0]
        for row in rows:
            outcome = {d["channel"]: d for d in row["deliveries"]}
            assert set(outcome) == {"webhook[0]", "email[0]", "pagerduty[0]"}
            assert all(d["ok"] for d in outcome.values())
        first_hook = [b for b in hook.bodies if b["level"] == 0.5]
        assert len(first_hook) == 2  # a 500, then retried
        assert {b["alert"] for b in hook.bodies} == {"daily-budget"}
        assert {(b["level"], b["type"]) for b in hook.bodies} == {(0.5, "budget"), (1.0, "budget")}
        assert len(pd.bodies) == 2
        event = pd.bodies[0]
        assert event["routing_key"] == PD_KEY and event["event_action"] == "trigger"
        assert event["payload"]["source"] == "raygate" and event["payload"]["severity"] == "warning"
        assert "daily-budget" in event["payload"]["summary"] and event["dedup_key"].startswith("raygate:daily-budget:")
        assert len(mailbox.messages) == 2
        mail = mailbox.messages[0]
        assert mail.rcpt_tos == ["team@example.com"] and mail.mail_from == "raygate@example.com"
        assert b"[raygate] budget alert: daily-budget" in mail.content
        ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")  # not the receivers'
        logged = ours + repr(config) + orjson.dumps(rows).decode()
        assert WEBHOOK_TOKEN not in logged and PD_KEY not in logged
        assert "webhook[0]" in caplog.text and "HTTP 500" in caplog.text  # the failure is logged, by position
    finally:
        smtp.stop()


async def test_failed_deliveries_are_retried_logged_and_never_raise(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    dead = free_port()  # nothing listens here
    config = _config(tmp_path, {"spend": {"type": "budget", "threshold": 0.1, "channels": [
        {"type": "webhook", "url": f"http://127.0.0.1:{dead}/x/{WEBHOOK_TOKEN}", "retries": 2},
        {"type": "email", "address": "x@example.com", "retries": 1}]}},
        smtp={"host": "127.0.0.1", "port": dead, "starttls": True, "username": "u", "password": SMTP_PASSWORD,
              "from": "raygate@example.com"})
    service = SpendService(config)
    await service.report([("a", time.time(), 1.0, None, "m", {})])
    await service.drain()
    [row] = await service.alerts()
    await service.close()
    outcome = {d["channel"]: d for d in row["deliveries"]}
    assert outcome["webhook[0]"] == {"channel": "webhook[0]", "ok": False, "attempts": 3,
                                     "error": "ClientConnectorError"}
    assert outcome["email[0]"]["ok"] is False and outcome["email[0]"]["attempts"] == 2
    assert "giving up on webhook[0] after 3 attempts" in caplog.text
    assert WEBHOOK_TOKEN not in caplog.text and SMTP_PASSWORD not in caplog.text
    assert SMTP_PASSWORD not in repr(config)


async def test_anomaly_alert_on_a_synthetic_spike_reaches_pagerduty(tmp_path: Path) -> None:
    async with Receiver([202]) as pd:
        config = _config(tmp_path, {"abnormal-spike": {
            "type": "anomaly", "baseline_multiplier": 3, "window": "1h", "baseline_windows": 3,
            "channels": [{"type": "pagerduty", "integration_key": PD_KEY, "url": f"http://127.0.0.1:{pd.port}/e"}]}})
        clock = [1_800_000_000.0]
        service = SpendService(config, clock=lambda: clock[0])
        await service.ready()
        service.ledger.history_start = clock[0] - 4 * 3600  # three quiet hours of history before now
        for hour in range(3, 0, -1):
            await service.report([(f"q{hour}", clock[0] - hour * 3600 + 60, 1.0, None, "m", {})])
        assert await service.tick() == 0
        await service.report([("spike", clock[0] - 60, 5.0, None, "m", {})])
        assert await service.tick() == 1
        assert await service.tick() == 0
        await service.drain()
        [row] = await service.alerts()
        await service.close()
    assert row["type"] == "anomaly" and row["details"]["baseline_usd"] == pytest.approx(1.0)
    assert row["details"]["spend_usd"] == pytest.approx(5.0)
    assert "5.0x the baseline 1.0000 USD" in row["message"]
    assert pd.bodies[0]["payload"]["custom_details"]["baseline_windows"] == 3

"""Alert delivery: webhook (JSON POST), email (SMTP), PagerDuty (Events API v2), each retried with backoff.

`deliver(alert, channels, smtp)` never raises: every failure is retried `retries` times (backoff
doubling from BACKOFF_S), logged, and reported in the returned outcomes, which are stored with
the alert. Channel secrets stay out of everything we write: outcomes and log lines name a
channel by its type and position (`webhook[0]`), and a failure by its HTTP status or exception
type, never by a message that could quote the URL or the key.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from email.message import EmailMessage
from typing import Any

import aiohttp

log = logging.getLogger("raygate.alerts")

BACKOFF_S = 0.5
TIMEOUT_S = 10.0


class DeliveryError(Exception):
    """A delivery attempt failed; the message is safe to log (no URL, no key)."""


def payload(alert: Any) -> dict[str, Any]:
    return {"alert": alert.name, "type": alert.type, "level": alert.level, "fired_at": alert.fired_at,
            "period_start": alert.period_start, "message": alert.message, "details": alert.details,
            "source": "raygate"}


async def _post(url: str, body: dict[str, Any], ok: tuple[int, ...]) -> None:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as session:
            async with session.post(url, json=body) as resp:
                if resp.status not in ok and not 200 <= resp.status < 300:
                    raise DeliveryError(f"HTTP {resp.status}")
    except DeliveryError:
        raise
    except Exception as exc:  # the exception text may quote the URL: keep only its type
        raise DeliveryError(type(exc).__name__) from None


async def _webhook(alert: Any, channel: Any, smtp: Any) -> None:
    await _post(channel.url.get_secret_value(), payload(alert), (200,))


async def _pagerduty(alert: Any, channel: Any, smtp: Any) -> None:
    body = {
        "routing_key": channel.integration_key.get_secret_value(),
        "event_action": "trigger",
        "dedup_key": f"raygate:{alert.name}:{alert.period_start:.0f}:{alert.level:g}",
        "payload": {"summary": alert.message[:1024], "source": "raygate", "severity": channel.severity,
                    "component": "spend", "group": alert.type, "custom_details": alert.details},
    }
    await _post(channel.url, body, (202,))


def _send_mail(smtp: Any, message: EmailMessage) -> None:
    with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s) as client:
        if smtp.starttls:
            client.starttls()
        if smtp.username:
            client.login(smtp.username, smtp.password.get_secret_value() if smtp.password else "")
        client.send_message(message)


async def _email(alert: Any, channel: Any, smtp: Any) -> None:
    message = EmailMessage()
    message["Subject"] = f"[raygate] {alert.type} alert: {alert.name}"
    message["From"] = smtp.from_
    message["To"] = ", ".join(channel.recipients)
    message.set_content(alert.message + "\n\n" + "\n".join(f"{k}: {v}" for k, v in alert.details.items()))
    try:
        await asyncio.to_thread(_send_mail, smtp, message)
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"SMTP {exc.smtp_code}") from None
    except Exception as exc:  # noqa: BLE001 - e.g. a refused login: its text is the server's, keep the type
        raise DeliveryError(type(exc).__name__) from None


SENDERS = {"webhook": _webhook, "pagerduty": _pagerduty, "email": _email}


async def deliver_one(alert: Any, channel: Any, label: str, smtp: Any) -> dict[str, Any]:
    attempts, delay = 0, BACKOFF_S
    reason = ""
    while attempts <= channel.retries:
        attempts += 1
        try:
            await SENDERS[channel.type](alert, channel, smtp)
            return {"channel": label, "ok": True, "attempts": attempts}
        except DeliveryError as exc:
            reason = str(exc)
        log.warning("alert %s: delivery to %s failed (attempt %d of %d): %s", alert.name, label, attempts,
                    channel.retries + 1, reason)
        if attempts <= channel.retries:
            await asyncio.sleep(delay)
            delay *= 2
    log.error("alert %s: giving up on %s after %d attempts (%s)", alert.name, label, attempts, reason)
    return {"channel": label, "ok": False, "attempts": attempts, "error": reason}


async def deliver(alert: Any, channels: list[Any], smtp: Any) -> list[dict[str, Any]]:
    labels: dict[str, int] = {}
    jobs = []
    for channel in channels:
        n = labels.get(channel.type, 0)
        labels[channel.type] = n + 1
        jobs.append(deliver_one(alert, channel, f"{channel.type}[{n}]", smtp))
    return list(await asyncio.gather(*jobs))


__all__ = ["BACKOFF_S", "DeliveryError", "SENDERS", "deliver", "deliver_one", "payload"]

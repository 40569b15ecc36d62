"""The spend admin API: GET /v1/admin/analytics/spend, /v1/admin/budgets, /v1/admin/alerts.

Query parameters arrive as the handler's `body` (a dict of strings); every bad one is a 400
naming it. Dates are calendar days in UTC, both ends inclusive.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from serve_app.errors import bad_request
from serve_app.lifecycle import Reply

from .store import GROUPS

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_METADATA_KEY = re.compile(r"^metadata\.[A-Za-z0-9_.\-]{1,64}$")
SPEND_PARAMS = {"start_date", "end_date", "group_by"}
ALERT_PARAMS = {"limit", "name"}
MAX_ALERTS = 1000


def _params(body: Any, allowed: set[str]) -> dict[str, str]:
    params = body if isinstance(body, dict) else {}
    for name in params:
        if name not in allowed:
            raise bad_request(f"unknown query parameter {name!r} (allowed: {', '.join(sorted(allowed))})",
                              param=name, code="invalid_parameter")
    return params


def _day(params: dict[str, str], name: str, default: date) -> date:
    value = params.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or not _DATE.match(value):
        raise bad_request(f"{name} must be a date as YYYY-MM-DD (UTC), got {value!r}", param=name,
                          code="invalid_parameter")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise bad_request(f"{name} {value!r} is not a calendar date", param=name, code="invalid_parameter") from None


def _epoch(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def parse_spend_query(body: Any, today: date | None = None) -> tuple[date, date, str]:
    """(start, end, group_by) of a spend query. Defaults: the current month so far, grouped by provider."""
    params = _params(body, SPEND_PARAMS)
    today = today or datetime.now(UTC).date()
    end = _day(params, "end_date", today)
    start = _day(params, "start_date", end.replace(day=1))
    if start > end:
        raise bad_request(f"start_date {start} is after end_date {end}", param="start_date", code="invalid_parameter")
    group_by = params.get("group_by", "provider")
    if group_by not in GROUPS and not _METADATA_KEY.match(group_by):
        allowed = ", ".join(list(GROUPS) + ["metadata.<key>"])
        raise bad_request(f"group_by {group_by!r} is not one of: {allowed}", param="group_by",
                          code="invalid_parameter")
    return start, end, group_by


class SpendAdmin:
    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger

    def routes(self) -> dict[tuple[str, str], Any]:
        return {("GET", "/v1/admin/analytics/spend"): self.spend, ("GET", "/v1/admin/budgets"): self.budgets,
                ("GET", "/v1/admin/alerts"): self.alerts}

    async def spend(self, body: Any, admin_id: str) -> Reply:
        start, end, group_by = parse_spend_query(body)
        total, groups = await self.ledger.spend_report(_epoch(start), _epoch(end + timedelta(days=1)), group_by)
        return Reply(orjson.dumps({"start_date": start.isoformat(), "end_date": end.isoformat(),
                                   "group_by": group_by, "total": total, "groups": groups}), {})

    async def budgets(self, body: Any, admin_id: str) -> Reply:
        _params(body, set())
        return Reply(orjson.dumps({"object": "list", "data": await self.ledger.budgets()}), {})

    async def alerts(self, body: Any, admin_id: str) -> Reply:
        params = _params(body, ALERT_PARAMS)
        raw = params.get("limit", "100")
        if not (isinstance(raw, str) and raw.isdigit() and 1 <= int(raw) <= MAX_ALERTS):
            raise bad_request(f"limit must be an integer from 1 to {MAX_ALERTS}, got {raw!r}", param="limit",
                              code="invalid_parameter")
        rows = await self.ledger.alerts(int(raw), params.get("name"))
        return Reply(orjson.dumps({"object": "list", "data": rows}), {})


__all__ = ["SpendAdmin", "parse_spend_query"]

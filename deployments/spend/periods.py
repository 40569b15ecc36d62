"""Budget periods and alert windows, in UTC: calendar periods or fixed durations aligned to the epoch.

`daily` starts at 00:00 UTC, `weekly` on Monday 00:00 UTC, `monthly` on the 1st, `total` at the
epoch (never resets); a duration (`30s`, `5m`, `1h`, `1d`) is a fixed window aligned to the epoch.
A period is identified by its start (epoch seconds), which is what alert dedupe keys on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

CALENDAR = ("daily", "weekly", "monthly", "total")
_DURATION = re.compile(r"^([1-9][0-9]*)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
FOREVER = float("inf")


def parse_duration(text: str) -> int:
    """Seconds in `30s`, `5m`, `1h`, `1d`; ValueError otherwise."""
    m = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"{text!r} is not a duration; use e.g. 30s, 5m, 1h or 1d")
    return int(m.group(1)) * _UNIT_S[m.group(2)]


@dataclass(frozen=True, slots=True)
class Period:
    text: str
    seconds: int  # 0 for calendar periods

    @property
    def calendar(self) -> bool:
        return self.seconds == 0

    def start(self, ts: float) -> float:
        """Start (epoch seconds) of the period holding `ts`."""
        if self.seconds:
            return float(int(ts // self.seconds) * self.seconds)
        if self.text == "total":
            return 0.0
        day = datetime.fromtimestamp(ts, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        if self.text == "weekly":
            day -= timedelta(days=day.weekday())
        elif self.text == "monthly":
            day = day.replace(day=1)
        return day.timestamp()

    def end(self, ts: float) -> float:
        """End (exclusive) of the period holding `ts`."""
        if self.seconds:
            return self.start(ts) + self.seconds
        if self.text == "total":
            return FOREVER
        start = datetime.fromtimestamp(self.start(ts), UTC)
        if self.text == "daily":
            return (start + timedelta(days=1)).timestamp()
        if self.text == "weekly":
            return (start + timedelta(days=7)).timestamp()
        month = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
        return month.timestamp()


def parse_period(text: str) -> Period:
    if text in CALENDAR:
        return Period(text, 0)
    try:
        return Period(text, parse_duration(text))
    except ValueError:
        raise ValueError(f"{text!r} is not a period; use daily, weekly, monthly, total or a duration "
                         "such as 30s, 5m, 1h, 1d") from None


def iso(ts: float) -> str | None:
    return None if ts == FOREVER else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


__all__ = ["CALENDAR", "FOREVER", "Period", "iso", "parse_duration", "parse_period"]

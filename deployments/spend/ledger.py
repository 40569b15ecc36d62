"""The spend ledger's counters, as plain Python: budgets, budget alerts, anomaly windows, reservations.

One `Ledger` holds, for the current period of every budget and budget alert, the USD spent by
the requests its scope counts, plus the open reservations of requests in flight; and, for every
anomaly alert, spend per time bucket. It is fed `Entry` tuples (one per finished request that
cost something or held a reservation), and counts each request id once: an id seen in the last
`DEDUPE_HORIZON_S` is ignored, so a batch sent twice (a lost answer, a retry after the actor
restarted, a row also read back from storage) never counts twice.

Reserve-then-settle: `reserve` admits a request if, for every budget it counts toward, spent +
reserved + its worst case stays within the limit; the request's Entry settles it (the
reservation is replaced by the actual cost, 0 for a failed request). Reservations of requests
that never report (their replica died) expire after `reservation_ttl_s`.

Crossing a threshold returns `Alert`s for the caller to store and deliver; which ones already
fired is remembered here for the period, and in storage across restarts (deployments/spend/service.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .periods import Period, iso, parse_duration, parse_period

DEDUPE_HORIZON_S = 300.0
ANOMALY_BUCKETS_PER_WINDOW = 12

# (request_id, received_at, usd, key_id, provider, metadata) — what a replica reports per request
Entry = tuple[str, float, float, str | None, str | None, dict[str, Any]]


@dataclass(slots=True)
class Alert:
    name: str
    type: str  # "budget" | "anomaly"
    period_start: float
    level: float  # budget: the fraction of the threshold; anomaly: the multiplier
    fired_at: float
    message: str
    details: dict[str, Any]
    channels: list[Any] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "period_start": self.period_start, "level": self.level,
                "fired_at": self.fired_at, "message": self.message, "details": self.details}


class Meter:
    """Spend of one scope per period: a budget (with a limit) or a budget alert (with a threshold)."""

    __slots__ = ("name", "kind", "scope", "period", "limit", "levels", "action", "channels", "spent", "reserved")

    def __init__(self, name: str, kind: str, scope: Any, period: Period, limit: float, levels: list[float],
                 action: str = "alert_only", channels: list[Any] | None = None) -> None:
        self.name, self.kind, self.scope, self.period = name, kind, scope, period
        self.limit, self.levels, self.action = limit, levels, action
        self.channels = channels or []
        self.spent: dict[float, float] = {}  # period start -> USD
        self.reserved = 0.0

    def add(self, at: float, usd: float) -> float:
        start = self.period.start(at)
        total = self.spent.get(start, 0.0) + usd
        self.spent[start] = total
        return start

    def current(self, now: float) -> float:
        return self.spent.get(self.period.start(now), 0.0)

    def prune(self, now: float) -> None:
        keep = self.period.start(now)
        for start in [s for s in self.spent if s < keep]:
            del self.spent[start]


class AnomalyMeter:
    __slots__ = ("name", "scope", "window_s", "bucket_s", "multiplier", "baseline_windows", "min_spend",
                 "channels", "buckets", "window")

    def __init__(self, name: str, cfg: Any) -> None:
        self.name, self.scope, self.window = name, cfg.scope, cfg.window
        self.window_s = parse_duration(cfg.window)
        self.bucket_s = max(1, self.window_s // ANOMALY_BUCKETS_PER_WINDOW)
        self.multiplier, self.baseline_windows, self.min_spend = cfg.baseline_multiplier, cfg.baseline_windows, cfg.min_spend
        self.channels = list(cfg.channels)
        self.buckets: dict[int, float] = {}

    def add(self, at: float, usd: float) -> None:
        b = int(at // self.bucket_s)
        self.buckets[b] = self.buckets.get(b, 0.0) + usd

    def _sum(self, end: float) -> float:
        """Spend in (end - window, end], to bucket precision."""
        last = int(end // self.bucket_s)
        n = max(1, self.window_s // self.bucket_s)
        get = self.buckets.get
        return sum(get(b, 0.0) for b in range(last - n + 1, last + 1))

    def check(self, now: float, history_start: float) -> Alert | None:
        recent = self._sum(now)
        if recent <= self.min_spend or recent <= 0:
            return None
        windows = [self._sum(now - k * self.window_s) for k in range(1, self.baseline_windows + 1)
                   if now - (k + 1) * self.window_s >= history_start - self.bucket_s]
        if not windows:
            return None  # no history yet: no baseline to compare with
        baseline = sum(windows) / len(windows)
        if baseline <= 0 or recent <= self.multiplier * baseline:
            return None
        start = float(int(now // self.window_s) * self.window_s)
        ratio = recent / baseline
        message = (f"{self.name}: spend {recent:.4f} USD in the last {self.window} is {ratio:.1f}x the baseline "
                   f"{baseline:.4f} USD (average of the preceding {len(windows)} windows of {self.window}); "
                   f"alerting above {self.multiplier:g}x")
        details = {"scope": self.scope.label(), "window": self.window, "spend_usd": round(recent, 6),
                   "baseline_usd": round(baseline, 6), "baseline_windows": len(windows),
                   "baseline_multiplier": self.multiplier, "ratio": round(ratio, 3)}
        return Alert(self.name, "anomaly", start, self.multiplier, now, message, details, self.channels)

    def prune(self, now: float) -> None:
        oldest = int((now - (self.baseline_windows + 2) * self.window_s) // self.bucket_s)
        for b in [b for b in self.buckets if b < oldest]:
            del self.buckets[b]

    @property
    def lookback_s(self) -> float:
        return (self.baseline_windows + 1) * self.window_s


@dataclass(slots=True)
class Reservation:
    amount: float
    meters: tuple[int, ...]
    expires: float


class Ledger:
    def __init__(self, budgets: list[Any], alerts: dict[str, Any], reservation_ttl_s: float = 960.0,
                 clock: Any = time.time) -> None:
        self.clock = clock
        self.reservation_ttl_s = reservation_ttl_s
        self.meters: list[Meter] = []
        for b in budgets:  # budgets first: their index is what the budget stage reserves against
            self.meters.append(Meter(b.name, "budget", b.scope, parse_period(b.period), b.limit, [1.0], b.action))
        self.anomalies: list[AnomalyMeter] = []
        for name, a in alerts.items():
            if a.type == "budget":
                self.meters.append(Meter(name, "alert", a.scope, parse_period(a.period), a.threshold,
                                         list(a.notify_at), channels=list(a.channels)))
            else:
                self.anomalies.append(AnomalyMeter(name, a))
        self.reservations: dict[tuple[str, float], Reservation] = {}
        self.seen: dict[tuple[str, float], float] = {}  # (request id, received at) -> when counted (in time order)
        self.fired: set[tuple[str, float, float]] = set()  # (name, period start, level)
        self.history_start = self.clock()  # anomaly baselines use windows after this (rebuild moves it back)
        self.counted = 0
        self.duplicates = 0

    # -- admission ---------------------------------------------------------------------------------
    def reserve(self, request: tuple[str, float], meters: list[int], amount: float) -> str | None:
        """Reserve `amount` USD on each budget in `meters` for `request` (request id, received at); None if
        admitted, else the name of the budget that refuses it."""
        now = self.clock()
        self._expire(now)
        for i in meters:
            m = self.meters[i]
            used = m.current(now) + m.reserved
            if used >= m.limit or used + amount > m.limit:
                return m.name
        old = self.reservations.pop(request, None)
        if old is not None:  # the same request asking again (a retry): replace, don't add
            self._release(old)
        for i in meters:
            self.meters[i].reserved += amount
        self.reservations[request] = Reservation(amount, tuple(meters), now + self.reservation_ttl_s)
        return None

    def _release(self, r: Reservation) -> None:
        for i in r.meters:
            m = self.meters[i]
            m.reserved = max(0.0, m.reserved - r.amount)

    def _expire(self, now: float) -> None:
        # every reservation gets the same TTL, so insertion order is expiry order: pop from the front
        reservations = self.reservations
        while reservations:
            first = next(iter(reservations))
            if reservations[first].expires > now:
                return
            self._release(reservations.pop(first))

    # -- settlement ----------------------------------------------------------------------------------
    def apply(self, entries: list[Entry], remember: bool = True) -> list[Alert]:
        """Count finished requests (each id once); settle their reservations; return alerts now due."""
        now = self.clock()
        touched: set[int] = set()
        seen = self.seen
        for request_id, at, usd, key, provider, metadata in entries:
            rkey = (request_id, at)  # a client may reuse an x-request-id; with the arrival time it is unique
            if rkey in seen:
                self.duplicates += 1
                continue
            if remember:
                seen[rkey] = now
            r = self.reservations.pop(rkey, None)
            if r is not None:
                self._release(r)
            if not usd:
                continue
            self.counted += 1
            md = metadata or {}
            for i, m in enumerate(self.meters):
                if m.scope.matches(key, provider, md):
                    m.add(at, usd)
                    touched.add(i)
            for a in self.anomalies:
                if a.scope.matches(key, provider, md):
                    a.add(at, usd)
        self._forget(now)
        return [alert for i in sorted(touched) for alert in self._crossed(self.meters[i], now)]

    def _forget(self, now: float) -> None:
        cutoff = now - DEDUPE_HORIZON_S
        seen = self.seen
        while seen:
            rid = next(iter(seen))
            if seen[rid] >= cutoff:
                break
            del seen[rid]

    def _crossed(self, m: Meter, now: float) -> list[Alert]:
        start = m.period.start(now)
        spent = m.spent.get(start, 0.0)
        out = []
        for level in m.levels:
            key = (self._alert_name(m), start, level)
            if spent >= level * m.limit and key not in self.fired:
                self.fired.add(key)
                out.append(self._budget_alert(m, start, level, spent, now))
        return out

    @staticmethod
    def _alert_name(m: Meter) -> str:
        return m.name if m.kind == "alert" else f"budget:{m.name}"

    def _budget_alert(self, m: Meter, start: float, level: float, spent: float, now: float) -> Alert:
        what = "limit" if m.kind == "budget" else "threshold"
        message = (f"{self._alert_name(m)}: {m.period.text} spend {spent:.4f} USD reached {level:.0%} of the "
                   f"{m.limit:g} USD {what} (scope {m.scope.label()}, period from {iso(start)})")
        details = {"scope": m.scope.label(), "period": m.period.text, "period_start": iso(start),
                   "spent_usd": round(spent, 6), "threshold_usd": m.limit, "fraction": level}
        if m.kind == "budget":
            details["action"] = m.action
        return Alert(self._alert_name(m), "budget", start, level, now, message, details, m.channels)

    def check_anomalies(self) -> list[Alert]:
        now = self.clock()
        out = []
        for a in self.anomalies:
            a.prune(now)
            alert = a.check(now, self.history_start)
            if alert is not None:
                key = (alert.name, alert.period_start, alert.level)
                if key not in self.fired:
                    self.fired.add(key)
                    out.append(alert)
        for m in self.meters:
            m.prune(now)
        return out

    # -- views -----------------------------------------------------------------------------------
    def lookback_start(self, now: float) -> float:
        """Earliest time whose spend the counters need (what a rebuild reads back from storage)."""
        starts = [m.period.start(now) for m in self.meters] + [now - a.lookback_s for a in self.anomalies]
        return min(starts) if starts else now

    def budgets(self) -> list[dict[str, Any]]:
        now = self.clock()
        self._expire(now)
        out = []
        for m in self.meters:
            if m.kind != "budget":
                continue
            spent = m.current(now)
            out.append({
                "name": m.name, "scope": m.scope.model_dump(exclude_none=True), "period": m.period.text,
                "period_start": iso(m.period.start(now)), "period_end": iso(m.period.end(now)),
                "action": m.action, "limit": m.limit, "spent": round(spent, 8), "reserved": round(m.reserved, 8),
                "remaining": round(max(0.0, m.limit - spent - m.reserved), 8),
            })
        return out


__all__ = ["Alert", "AnomalyMeter", "DEDUPE_HORIZON_S", "Entry", "Ledger", "Meter", "Reservation"]

"""The ledger's counters: reserve-then-settle, counting each request once, budget thresholds, anomalies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from deployments.spend.ledger import Ledger
from deployments.spend.periods import parse_duration, parse_period
from serve_app.config import parse_config
from serve_app.errors import ConfigError

DAY0 = datetime(2026, 5, 19, 12, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float = DAY0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _ledger(spend: dict, clock: Clock) -> Ledger:
    cfg = parse_config({"gateway": {"api_keys": [{"id": "team-a", "key": "k"}, {"id": "team-b", "key": "k2"}]},
                        "providers": {"m": {"type": "mock"}}, **spend})
    return Ledger(cfg.budgets, cfg.alerts, 60.0, clock)


def _entry(rid: str, usd: float, at: float = DAY0, key: str = "team-a", md: dict | None = None) -> tuple:
    return (rid, at, usd, key, "m", md or {})


def test_reserve_then_settle_keeps_spent_plus_reserved_within_the_limit() -> None:
    clock = Clock()
    ledger = _ledger({"budgets": [{"scope": {"key": "team-a"}, "limit": 1.0}]}, clock)
    assert ledger.reserve(("r1", DAY0), [0], 0.4) is None
    assert ledger.reserve(("r2", DAY0), [0], 0.4) is None
    assert ledger.reserve(("r3", DAY0), [0], 0.4) == "key=team-a/daily"  # 0.8 + 0.4 > 1.0
    ledger.apply([_entry("r1", 0.1, DAY0)])  # settled below its reservation: room again
    assert ledger.budgets()[0]["spent"] == pytest.approx(0.1)
    assert ledger.budgets()[0]["reserved"] == pytest.approx(0.4)
    assert ledger.reserve(("r3", DAY0), [0], 0.4) is None
    ledger.apply([_entry("r2", 0.0, DAY0)])  # failed: released, nothing spent
    assert ledger.budgets()[0] == {**ledger.budgets()[0], "spent": pytest.approx(0.1), "reserved": pytest.approx(0.4),
                                   "remaining": pytest.approx(0.5)}


def test_an_exhausted_budget_refuses_even_a_request_that_reserves_nothing() -> None:
    clock = Clock()
    ledger = _ledger({"budgets": [{"limit": 1.0}]}, clock)
    ledger.apply([_entry("a", 1.0)])
    assert ledger.reserve(("b", DAY0), [0], 0.0) == "global/daily"


def test_each_request_is_counted_once_and_expired_reservations_are_released() -> None:
    clock = Clock()
    ledger = _ledger({"budgets": [{"limit": 10.0}]}, clock)
    batch = [_entry("a", 1.0), _entry("b", 2.0)]
    ledger.apply(batch)
    ledger.apply(batch)  # the same batch again (a retry after a lost answer)
    assert ledger.budgets()[0]["spent"] == pytest.approx(3.0)
    assert ledger.duplicates == 2
    ledger.apply([_entry("a", 5.0, at=DAY0 + 1)])  # a reused x-request-id is another request
    assert ledger.budgets()[0]["spent"] == pytest.approx(8.0)
    ledger.reserve(("c", DAY0), [0], 1.5)
    clock.now += 61  # the replica never reported: the reservation expires
    assert ledger.budgets()[0]["reserved"] == 0.0


def test_scopes_count_only_their_requests_and_periods_reset() -> None:
    clock = Clock()
    ledger = _ledger({"budgets": [{"scope": {"key": "team-a"}, "limit": 5}, {"scope": {"user_id": "u1"}, "limit": 5},
                                  {"scope": {"metadata": {"project": "p"}}, "limit": 5, "period": "total"}]}, clock)
    ledger.apply([_entry("1", 1.0, key="team-a"), _entry("2", 2.0, key="team-b", md={"user_id": "u1"}),
                  _entry("3", 4.0, key="team-b", md={"project": "p"})])
    spent = {b["name"]: b["spent"] for b in ledger.budgets()}
    assert spent == {"key=team-a/daily": 1.0, "user_id=u1/daily": 2.0, "metadata.project=p/total": 4.0}
    clock.now += 86400  # the next UTC day: daily budgets start again, total does not
    spent = {b["name"]: b["spent"] for b in ledger.budgets()}
    assert spent == {"key=team-a/daily": 0.0, "user_id=u1/daily": 0.0, "metadata.project=p/total": 4.0}


def test_budget_alert_fires_once_per_level_and_period() -> None:
    clock = Clock()
    ledger = _ledger({"alerts": {"daily": {"type": "budget", "threshold": 10, "notify_at": [0.5, 1.0]}}}, clock)
    assert ledger.apply([_entry("1", 4.0)]) == []
    fired = ledger.apply([_entry("2", 2.0)])
    assert [(a.name, a.level) for a in fired] == [("daily", 0.5)]
    assert "reached 50% of the 10 USD threshold" in fired[0].message
    assert ledger.apply([_entry("3", 1.0)]) == []  # still above 50%: not again
    assert [a.level for a in ledger.apply([_entry("4", 5.0)])] == [1.0]
    assert ledger.apply([_entry("5", 5.0)]) == []
    clock.now += 86400
    assert [a.level for a in ledger.apply([_entry("6", 6.0, at=clock.now)])] == [0.5]  # a new period


def test_anomaly_fires_on_a_spike_over_the_baseline_and_states_it() -> None:
    clock = Clock(DAY0 - 6 * 3600)
    ledger = _ledger({"alerts": {"spike": {"type": "anomaly", "baseline_multiplier": 3, "window": "1h",
                                           "baseline_windows": 4}}}, clock)
    for i in range(5 * 60):  # five hours at a steady 1 USD per hour
        clock.now += 60
        ledger.apply([_entry(f"s{i}", 1 / 60, at=clock.now)])
        assert ledger.check_anomalies() == []
    for i in range(60):  # then 4 USD within the next hour: 4x the baseline
        clock.now += 60
        ledger.apply([_entry(f"x{i}", 4 / 60, at=clock.now)])
        fired = ledger.check_anomalies()
        if fired:
            break
    assert fired and fired[0].name == "spike"
    details = fired[0].details
    assert details["baseline_windows"] == 4 and details["baseline_usd"] == pytest.approx(1.0, rel=0.1)
    assert details["spend_usd"] > 3 * details["baseline_usd"]
    assert "baseline" in fired[0].message
    clock.now += 60
    ledger.apply([_entry("y", 10.0, at=clock.now)])
    assert ledger.check_anomalies() == []  # once per window


def test_steady_spend_and_no_history_do_not_fire() -> None:
    clock = Clock()
    ledger = _ledger({"alerts": {"spike": {"type": "anomaly", "baseline_multiplier": 2, "window": "5m"}}}, clock)
    ledger.apply([_entry("first", 100.0, at=clock.now)])
    assert ledger.check_anomalies() == []  # no preceding window: no baseline


def test_periods_and_durations() -> None:
    ts = datetime(2026, 5, 20, 15, 30, tzinfo=UTC).timestamp()  # a Wednesday
    start = lambda p: datetime.fromtimestamp(parse_period(p).start(ts), UTC).isoformat()  # noqa: E731
    assert start("daily") == "2026-05-20T00:00:00+00:00"
    assert start("weekly") == "2026-05-18T00:00:00+00:00"
    assert start("monthly") == "2026-05-01T00:00:00+00:00"
    assert parse_period("monthly").end(datetime(2026, 12, 5, tzinfo=UTC).timestamp()) == \
        datetime(2027, 1, 1, tzinfo=UTC).timestamp()
    assert [parse_duration(d) for d in ("30s", "5m", "1h", "1d")] == [30, 300, 3600, 86400]
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("1w")


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"budgets\[0\]\.period: .*'hourly' is not a period"):
        _ledger({"budgets": [{"limit": 1, "period": "hourly"}]}, Clock())
    with pytest.raises(ConfigError, match=r"budgets\[0\]\.scope\.key: unknown gateway key id"):
        _ledger({"budgets": [{"limit": 1, "scope": {"key": "nobody"}}]}, Clock())
    with pytest.raises(ConfigError, match=r"alerts\.a\.channels\[0\]: an email channel needs the smtp"):
        _ledger({"alerts": {"a": {"type": "budget", "threshold": 1, "channels": [{"type": "email", "address": "x@y"}]}}},
                Clock())
    with pytest.raises(ConfigError, match=r"alerts\.a\.anomaly\.window: .*must be a duration"):
        _ledger({"alerts": {"a": {"type": "anomaly", "baseline_multiplier": 2, "window": "daily"}}}, Clock())

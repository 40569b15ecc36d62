"""Gauges: each replica reports its level; the aggregate is the sum of every replica's latest value."""

from __future__ import annotations

from serve_app import metrics as m


def test_gauge_sums_the_latest_value_of_each_replica(monkeypatch) -> None:
    totals = m.Snapshot()
    a, b = m.LocalMetrics(), m.LocalMetrics()
    a.set("raygate_record_queue_depth", (), 5)
    b.set("raygate_record_queue_depth", (), 7)
    totals.merge(a.take())
    totals.merge(b.take())
    a.set("raygate_record_queue_depth", (), 2)  # a level, not a delta
    totals.merge(a.take())
    assert "raygate_record_queue_depth 9\n" in totals.render()
    assert a.take() is not None  # the level is sent again with every flush

    now = m.time.monotonic()
    monkeypatch.setattr(m.time, "monotonic", lambda: now + m.GAUGE_TTL_S + 1)
    totals.merge(b.take())  # replica a stopped reporting
    assert "raygate_record_queue_depth 7\n" in totals.render()

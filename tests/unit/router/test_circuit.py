"""Circuit breaker state machine (injectable clock) and sharing through the aggregator."""

from __future__ import annotations

import asyncio

import pytest

from deployments.router.circuit import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    Breaker,
    CircuitAggregator,
    CircuitBoard,
    CircuitPolicy,
)

POLICY = CircuitPolicy(failures=3, window=10.0, cooldown=5.0)


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_defaults() -> None:
    p = CircuitPolicy()
    assert (p.failures, p.window, p.cooldown) == (5, 30.0, 30.0)


def test_opens_after_n_failures_within_window() -> None:
    b = Breaker()
    assert b.record(False, 0.0, POLICY) is None
    assert b.record(False, 1.0, POLICY) is None
    assert b.state == CLOSED and b.available(1.0)
    assert b.record(False, 2.0, POLICY) == OPEN
    assert not b.available(2.0) and not b.available(6.9)
    assert b.available(7.0)  # cooldown over: probe-able


def test_failures_outside_the_window_do_not_count() -> None:
    b = Breaker()
    b.record(False, 0.0, POLICY)
    b.record(False, 5.0, POLICY)
    assert b.record(False, 10.5, POLICY) is None  # the one at 0.0 slid out
    assert b.state == CLOSED
    assert b.record(False, 11.0, POLICY) == OPEN


def test_successes_in_closed_state_do_not_reset_the_count() -> None:
    b = Breaker()
    b.record(False, 0.0, POLICY)
    b.record(True, 0.5, POLICY)
    b.record(False, 1.0, POLICY)
    assert b.record(False, 1.5, POLICY) == OPEN


def test_half_open_single_probe_then_close() -> None:
    b = Breaker()
    for t in (0.0, 0.1, 0.2):
        b.record(False, t, POLICY)
    assert b.allow(1.0, POLICY) == (False, None)
    assert b.allow(5.2, POLICY) == (True, HALF_OPEN)  # the probe
    assert b.allow(5.3, POLICY) == (False, None)  # one probe at a time
    assert b.record(True, 5.4, POLICY) == CLOSED
    assert b.allow(5.5, POLICY) == (True, None)


def test_half_open_probe_failure_reopens() -> None:
    b = Breaker()
    for t in (0.0, 0.1, 0.2):
        b.record(False, t, POLICY)
    assert b.allow(5.2, POLICY)[0]
    assert b.record(False, 5.3, POLICY) == OPEN
    assert not b.available(10.2)
    assert b.available(10.3)


def test_lost_probe_frees_the_slot_after_a_cooldown() -> None:
    b = Breaker()
    for t in (0.0, 0.1, 0.2):
        b.record(False, t, POLICY)
    assert b.allow(5.2, POLICY)[0]
    assert not b.allow(9.0, POLICY)[0]
    assert b.allow(10.3, POLICY)[0]


def test_results_of_calls_started_before_opening_are_ignored() -> None:
    b = Breaker()
    for t in (0.0, 0.1, 0.2):
        b.record(False, t, POLICY)
    assert b.record(False, 0.3, POLICY) is None  # straggler failure while open
    assert b.record(True, 0.4, POLICY) is None  # straggler success while open does not close
    assert b.state == OPEN and b.until == pytest.approx(5.2)


def test_board_counts_transitions_and_stays_cheap_when_closed() -> None:
    clock = Clock()
    changes: list[tuple[str, str]] = []
    board = CircuitBoard(clock=clock, on_change=lambda k, s: changes.append((k, s)))
    board.record("p", True, POLICY)
    assert board.breakers == {}  # successes on a healthy target allocate nothing
    for _ in range(3):
        board.record("p", False, POLICY)
    assert board.state("p") == OPEN and not board.available("p") and not board.allow("p", POLICY)
    assert board.retry_in("p") == pytest.approx(5.0)
    assert board.available("q")
    clock.t += 5.0
    assert board.available("p")
    assert board.allow("p", POLICY)  # probe
    assert not board.allow("p", POLICY)
    board.record("p", True, POLICY)
    assert board.state("p") == CLOSED and "p" not in board.tripped
    assert changes == [("p", OPEN), ("p", HALF_OPEN), ("p", CLOSED)]


class FakeActor:
    """A CircuitAggregator behind an async `.sync.remote(...)`, like a Ray actor handle."""

    def __init__(self, clock: Clock) -> None:
        self.agg = CircuitAggregator()
        self.agg.board.clock = clock
        self.calls = 0
        actor = self

        class _Method:
            async def remote(self, events):  # noqa: D401
                actor.calls += 1
                return actor.agg.sync(events)

        self.sync = _Method()


async def test_one_replicas_failures_protect_the_other() -> None:
    clock = Clock()
    actor = FakeActor(clock)
    a, b = CircuitBoard(clock=clock), CircuitBoard(clock=clock)
    a.attach(actor)
    b.attach(actor)
    # replica A sees the failures; B has seen nothing
    for _ in range(3):
        a.record("t", False, POLICY)
    assert not a.available("t") and b.available("t")
    await a.sync_once()  # ships the outbox, adopts the view
    await b.sync_once()  # B learns the target is open
    assert actor.agg.view()["t"][0] == OPEN
    assert not b.available("t") and not b.allow("t", POLICY)
    # cooldown passes: B probes, succeeds, and the actor closes the circuit for A too
    clock.t += 5.0
    await b.sync_once()
    assert b.state("t") == HALF_OPEN
    assert b.allow("t", POLICY)
    b.record("t", True, POLICY)
    assert b.state("t") == CLOSED
    await b.sync_once()
    await a.sync_once()
    assert actor.agg.view() == {}
    assert a.state("t") == CLOSED and a.available("t")


async def test_failures_spread_over_replicas_add_up() -> None:
    clock = Clock()
    actor = FakeActor(clock)
    a, b = CircuitBoard(clock=clock), CircuitBoard(clock=clock)
    a.attach(actor)
    b.attach(actor)
    a.record("t", False, POLICY)
    b.record("t", False, POLICY)
    a.record("t", False, POLICY)  # 2 locally on A, 1 on B: neither opens alone
    assert a.available("t") and b.available("t")
    await a.sync_once()
    await b.sync_once()
    await a.sync_once()
    assert not a.available("t") and not b.available("t")


async def test_local_change_during_sync_is_not_overwritten() -> None:
    clock = Clock()
    board = CircuitBoard(clock=clock)
    for _ in range(3):
        board.record("t", False, POLICY)
    seq_before = 0  # a view fetched before the local change says "closed"
    board.adopt({}, seq_before)
    assert board.state("t") == OPEN
    board.adopt({}, None)  # an authoritative view with no local change since: adopted
    assert board.state("t") == CLOSED


async def test_sync_failure_keeps_events() -> None:
    class Broken:
        class sync:  # noqa: N801
            @staticmethod
            async def remote(events):
                raise ConnectionError("actor restarting")

    board = CircuitBoard()
    board.attach(Broken())
    board.record("t", False, POLICY)
    await board.sync_once()
    assert len(board.outbox) == 1


async def test_background_loop_syncs() -> None:
    clock = Clock()
    actor = FakeActor(clock)
    board = CircuitBoard(clock=clock)
    board.attach(actor, interval=0.01)
    board.start()
    board.start()  # idempotent
    await asyncio.sleep(0.05)
    assert actor.calls >= 2
    await board.stop()


def test_aggregator_counts_changes_once() -> None:
    agg = CircuitAggregator()
    agg.board.clock = Clock(0.0)
    agg._metrics = type("M", (), {"push": type("P", (), {"remote": staticmethod(lambda d: pushed.append(d))})()})()
    pushed: list[dict] = []
    agg.sync([("t", False, 0.0, 3, 10.0, 5.0)] * 3)
    assert pushed == [{"counters": {"raygate_circuit_state_changes_total": {("t", OPEN): 1.0}}, "hist": {}}]


async def test_begin_creates_the_actor_lazily_and_adopts_the_view_first() -> None:
    clock = Clock()
    actor = FakeActor(clock)
    actor.agg.sync([("t", False, clock.t, 3, 10.0, 5.0)] * 3)  # tripped by other replicas already
    made = []
    board = CircuitBoard(clock=clock)
    board.attach(factory=lambda: made.append(1) or actor, interval=60)
    assert made == [] and board.available("t")  # nothing until the first strategy request
    await board.begin()
    await board.begin()
    assert made == [1]
    assert not board.available("t")  # the view was taken before routing anything
    await board.stop()


async def test_begin_without_ray_stays_local() -> None:
    def no_ray() -> None:
        raise RuntimeError("Ray is not initialized")

    board = CircuitBoard()
    board.attach(factory=no_ray)
    await board.begin()
    assert board.started and board.actor is None and board._task is None
    board.record("t", False, POLICY)
    assert board.outbox == []

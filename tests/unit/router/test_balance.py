"""Target selection: weighted random (statistical, fixed seed), round robin, least busy/latency, sticky."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from deployments.router.balance import Balancer, TargetStats
from deployments.router.conditions import Condition

KEYS = [("a",), ("b",), ("c",)]


def test_weighted_random_matches_the_weights() -> None:
    weights = [1.0, 3.0, 6.0]
    bal = Balancer(weights, KEYS, rng=random.Random(1234))
    n = 20_000
    counts = Counter(bal.pick() for _ in range(n))
    for i, w in enumerate(weights):
        expected = w / sum(weights)
        # 4 standard deviations of a binomial proportion at n=20000 is < 0.015
        assert abs(counts[i] / n - expected) < 0.015, (i, counts)


def test_weighted_random_equal_weights_and_zero_weight() -> None:
    bal = Balancer([1, 1, 0], KEYS, rng=random.Random(7))
    counts = Counter(bal.pick() for _ in range(10_000))
    assert counts[2] == 0
    assert abs(counts[0] / 10_000 - 0.5) < 0.03


def test_same_seed_same_sequence() -> None:
    a = Balancer([1, 2, 3], KEYS, rng=random.Random(99))
    b = Balancer([1, 2, 3], KEYS, rng=random.Random(99))
    assert [a.pick() for _ in range(50)] == [b.pick() for _ in range(50)]


def test_round_robin_takes_turns_and_honours_weights() -> None:
    bal = Balancer([1, 1, 1], KEYS, algorithm="round_robin")
    assert [bal.pick() for _ in range(6)] == [0, 1, 2, 0, 1, 2]
    wrr = Balancer([5, 1, 1], KEYS, algorithm="round_robin")
    seq = [wrr.pick() for _ in range(7)]
    assert Counter(seq) == {0: 5, 1: 1, 2: 1}
    assert seq[:3] != [0, 0, 0]  # smooth: the heavy member is interleaved


def test_unhealthy_members_are_skipped() -> None:
    bal = Balancer([1, 1, 1], KEYS, rng=random.Random(3))
    healthy = {"a": False, "b": True, "c": False}
    assert {bal.pick(available=healthy.__getitem__) for _ in range(200)} == {1}
    # nobody healthy: everyone is a candidate (the executor reports them as circuit open)
    assert {bal.pick(available=lambda k: False) for _ in range(300)} == {0, 1, 2}
    # a member with an unguarded target (no breaker) is never skipped
    unguarded = Balancer([1, 1], [("a",), ("b",)], rng=random.Random(3), guarded=[False, True])
    assert {unguarded.pick(available=lambda k: False) for _ in range(100)} == {0}


def test_nested_member_is_healthy_while_any_target_is() -> None:
    bal = Balancer([1, 1], [("a", "b"), ("c",)], rng=random.Random(5))
    healthy = {"a": False, "b": True, "c": False}
    assert {bal.pick(available=healthy.__getitem__) for _ in range(100)} == {0}


def test_least_busy() -> None:
    stats = TargetStats()
    bal = Balancer([1, 1, 1], KEYS, algorithm="least_busy", rng=random.Random(1))
    stats.begin("a")
    stats.begin("a")
    stats.begin("b")
    assert bal.pick(stats=stats) == 2
    stats.begin("c")
    stats.begin("c")
    assert bal.pick(stats=stats) == 1
    stats.end("a")
    stats.end("a")
    assert bal.pick(stats=stats) == 0


def test_least_latency_explores_unknown_then_prefers_fastest() -> None:
    stats = TargetStats()
    bal = Balancer([1, 1, 1], KEYS, algorithm="least_latency", rng=random.Random(2))
    stats.observe("a", 0.5)
    stats.observe("b", 0.1)
    assert bal.pick(stats=stats) == 2  # no data yet: tried first
    stats.observe("c", 0.9)
    picks = Counter(bal.pick(stats=stats) for _ in range(1000))
    assert picks[1] > 900  # mostly the fastest; a few exploratory picks
    assert picks[0] + picks[2] > 0


def test_ewma() -> None:
    stats = TargetStats(alpha=0.5)
    stats.observe("a", 1.0)
    stats.observe("a", 0.0)
    assert stats.latency["a"] == pytest.approx(0.5)


def test_sticky_key_keeps_a_session_while_healthy() -> None:
    sticky = Condition("metadata.session_id")
    bal = Balancer([1, 1, 1], KEYS, sticky=sticky, rng=random.Random(0))
    sessions = [f"s{i}" for i in range(300)]
    first = {s: bal.pick({}, {"session_id": s}, {}) for s in sessions}
    assert all(bal.pick({}, {"session_id": s}, {}) == first[s] for s in sessions)
    assert set(first.values()) == {0, 1, 2}  # sessions spread over the members
    # member 1 trips: only its sessions move; the others stay put
    down = {"a": True, "b": False, "c": True}
    moved = {s: bal.pick({}, {"session_id": s}, {}, available=down.__getitem__) for s in sessions}
    for s in sessions:
        if first[s] != 1:
            assert moved[s] == first[s]
        else:
            assert moved[s] in (0, 2)
    # and they come back when it recovers
    assert all(bal.pick({}, {"session_id": s}, {}) == first[s] for s in sessions)


def test_sticky_without_a_key_falls_back_to_the_algorithm() -> None:
    bal = Balancer([1, 1], [("a",), ("b",)], sticky=Condition("metadata.session_id"), rng=random.Random(4))
    assert {bal.pick({}, {}, {}) for _ in range(100)} == {0, 1}

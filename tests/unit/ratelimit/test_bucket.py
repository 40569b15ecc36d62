"""The bucket actor's logic without Ray: refill, burst, leases under the cap, settling, expiry."""

from __future__ import annotations

import pytest

from deployments.ratelimit.bucket import Bucket, BucketBoard


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_full_minute_of_burst_then_the_refill_rate() -> None:
    b = Bucket(60, 1.0, 0.0)
    assert [b.sync("r", 1, 0, 0, 0, 0.0, 5)[0] for _ in range(61)] == [True] * 60 + [False]
    ok, _, level, _, retry = b.sync("r", 1, 0, 0, 0, 0.0, 5)
    assert not ok and level == 0 and retry == pytest.approx(1.0)
    assert b.sync("r", 1, 0, 0, 0, 0.5, 5)[0] is False  # half a token after 0.5 s
    assert b.sync("r", 1, 0, 0, 0, 1.0, 5)[0] is True
    ok, _, level, _, _ = b.sync("r", 0, 0, 0, 0, 1000.0, 5)
    assert level == 60  # never above the capacity however long it waits


def test_a_lease_takes_at_most_half_of_what_is_left_and_is_recorded() -> None:
    b = Bucket(100, 1.0, 0.0)
    ok, extra, level, kept, _ = b.sync("a", 1, 10, 0, 0, 0.0, 5)
    assert ok and extra == 10 and level == 89 and kept == 0 and b.outstanding == 10
    b.level = 6.0
    ok, extra, level, _, _ = b.sync("b", 0, 10, 0, 0, 0.0, 5)
    assert extra == 3 and level == 3  # a nearly empty bucket is not handed to one replica


def test_leased_tokens_never_refill_so_level_plus_leases_stays_within_capacity() -> None:
    b = Bucket(10, 1.0, 0.0)
    b.sync("a", 0, 4, 0, 0, 0.0, 1000)
    b.sync("b", 0, 3, 0, 0, 0.0, 1000)
    assert b.level == 3
    b.sync("a", 0, 0, 4, 0, 100.0, 1000)  # much later, still holding all 4: no room to refill
    assert b.level == 3 and b.outstanding == 7
    b.sync("a", 0, 0, 1, 0, 101.0, 1000)  # spent 3 of 4: the lease shrinks; room to refill from now on
    assert b.outstanding == 4 and b.level == 3
    b.sync("a", 0, 0, 1, 0, 110.0, 1000)
    assert b.level == pytest.approx(6)  # up to 10 minus the leases
    b.sync("b", 0, 0, 3, 0, 2000.0, 1000)  # both leases expired: the bucket refills to full
    assert b.outstanding == 0 and b.level == 10


def test_kept_is_capped_by_the_lease_and_an_expired_lease_covers_nothing() -> None:
    b = Bucket(10, 1.0, 0.0)
    b.sync("a", 0, 2, 0, 0, 0.0, 5)
    assert b.sync("a", 0, 0, 5, 0, 1.0, 5)[3] == 2  # cannot keep more than was leased
    assert b.sync("a", 0, 0, 2, 0, 100.0, 5)[3] == 0  # expired at 6.0
    assert b.outstanding == 0


def test_settle_takes_more_or_gives_back_within_the_cap() -> None:
    b = Bucket(1000, 10.0, 0.0)
    b.sync("a", 600, 0, 0, 0, 0.0, 5)  # a reservation of 600
    b.sync("a", 0, 0, 0, 700, 0.0, 5)  # it used 1300
    assert b.level == -300  # in debt: later requests wait for the refill
    ok, _, _, _, retry = b.sync("a", 1, 0, 0, 0, 0.0, 5)
    assert not ok and retry == pytest.approx(30.1)
    b.sync("b", 0, 100, 0, 0, 40.0, 60)  # level 100 -> leases 50
    b.sync("a", 0, 0, 0, -5000, 40.0, 5)  # a big refund fills up to capacity minus the lease only
    assert b.level + b.outstanding == pytest.approx(1000)


def test_a_request_larger_than_the_bucket_has_no_retry_time() -> None:
    b = Bucket(100, 1.0, 0.0)
    ok, _, _, _, retry = b.sync("a", 101, 0, 0, 0, 0.0, 5)
    assert not ok and retry is None and b.level == 100


def test_board_keeps_buckets_by_id_and_sweeps_full_idle_ones() -> None:
    clock = Clock()
    board = BucketBoard(clock)
    board.sync("r1", 5, [("k|a:r", 60, 1.0, 1, 0, 0, 0), ("k|b:r", 60, 1.0, 1, 0, 0, 0)])
    board.sync("r2", 5, [("k|a:r", 60, 1.0, 1, 0, 0, 0)])
    view = board.view()
    assert view["lessees"] == ["r1", "r2"]
    assert view["buckets"]["k|a:r"]["level"] == 58 and view["buckets"]["k|b:r"]["level"] == 59
    clock.t += 30  # refilled: both full again, nothing leased
    board.sync("r1", 5, [("k|c:r", 60, 1.0, 0, 0, 0, 0)])
    assert set(board.buckets) == {"k|c:r"}

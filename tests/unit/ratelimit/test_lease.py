"""Replicas' allowances over one board, without Ray: local spending, batched leases, the cross-replica
bound (never more than one token bucket admits), settling, local refusals, failing open."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from deployments.ratelimit.actor import LocalBoard, ShardedBoard, shard_of
from deployments.ratelimit.bucket import BucketBoard
from deployments.ratelimit.lease import UNCHECKED, LeaseClient, Refusal


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class HopBoard:
    """The board behind a hop: counts calls and lets other coroutines run (and the clock move) in between."""

    def __init__(self, board: BucketBoard, rng: random.Random | None = None) -> None:
        self.board = board
        self.rng = rng
        self.calls = 0
        self.fail = False

    async def sync(self, lessee: str, ttl: float, items: list[Any]) -> list[Any]:
        self.calls += 1
        for _ in range(self.rng.randint(0, 6) if self.rng else 1):
            await asyncio.sleep(0)
        if self.fail:
            raise ConnectionError("actor restarting")
        replies = self.board.sync(lessee, ttl, items)
        for _ in range(self.rng.randint(0, 6) if self.rng else 1):
            await asyncio.sleep(0)
        return replies


def replica() -> tuple[Clock, BucketBoard, HopBoard, LeaseClient]:
    """One replica on a fresh board: its clock, the board's state, the hop to it, the replica."""
    clock = Clock()
    core = BucketBoard(clock)
    board = HopBoard(core)
    return clock, core, board, LeaseClient(board, ttl=5, sync_interval=0.0, clock=clock)


async def admit(client: LeaseClient, needs: list[Any]) -> Any:
    return None if client.take_local(needs) else await client.acquire(needs)


def max_in_any_window(spans: list[tuple[float, float]], rate: float) -> float:
    """max over windows [a, b] of (requests admitted inside it) - rate * (b - a).

    A request was admitted somewhere between its start and its end (locally, or when the board
    answered), so one whose whole span lies in [a, b] was admitted in [a, b]."""
    best = 0.0
    for a, _ in spans:
        ends = sorted(e for s, e in spans if s >= a)
        for k, b in enumerate(ends):
            best = max(best, k + 1 - rate * (b - a))
    return best


async def test_the_common_case_is_local_and_leases_come_in_batches() -> None:
    clock, _, board, client = replica()
    a = client.allowance("key*600/0|team:r", 600, 30)
    outcomes = []
    for _ in range(300):
        outcomes.append(await admit(client, [(a, 1.0)]))
        await asyncio.sleep(0)  # the background top-up gets its turn
    assert outcomes == [None] * 300
    assert board.calls <= 300 / 15 + 2  # a call per ~half a lease, not per request
    await client.close()


@pytest.mark.parametrize("seed", range(6))
async def test_n_replicas_never_admit_more_than_one_token_bucket(seed: int) -> None:
    """Worst case over every window: admitted <= capacity + rate * T, however the leases interleave,
    through bursts and idle gaps long enough to refill the bucket while replicas still hold leases.
    And not much less under saturating demand: at most about one lease per replica is left stranded."""
    rng = random.Random(seed)
    clock = Clock()
    board = HopBoard(BucketBoard(clock), rng)
    capacity, lease, replicas = 120.0, 6.0, 4
    clients = [LeaseClient(board, ttl=rng.choice([0.5, 5.0, 300.0]), sync_interval=0.0, clock=clock)
               for _ in range(replicas)]
    buckets = [c.allowance("key*120/0|k:r", capacity, lease) for c in clients]
    admitted: list[tuple[float, float]] = []
    start = clock.t

    async def one(i: int) -> None:
        began = clock.t
        if await admit(clients[i], [(buckets[i], 1.0)]) is None:
            admitted.append((began, clock.t))

    tasks = []
    first_gap = None
    for i in range(3000):
        clock.t += rng.expovariate(400.0)  # ~400 requests/s against a limit of 2/s, with quiet spells
        if i >= 1000 and rng.random() < 0.003:
            if first_gap is None:
                await asyncio.gather(*tasks)
                first_gap = clock.t
            clock.t += rng.uniform(10, 90)
        tasks.append(asyncio.get_running_loop().create_task(one(rng.randrange(replicas))))
        for _ in range(rng.randint(0, 3)):
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    rate = capacity / 60
    assert max_in_any_window(admitted, rate) <= capacity + 1e-6
    # and not much less while the demand never paused (the first 1000 requests, 2.5 s)
    assert first_gap is not None
    first = [e for _, e in admitted if e <= first_gap]
    assert len(first) >= capacity + rate * (first_gap - start) - replicas * lease - 1
    for c in clients:
        await c.close()


async def test_a_refused_bucket_refuses_locally_until_it_can_have_refilled() -> None:
    clock, _, board, client = replica()
    a = client.allowance("ip*6/0|10.0.0.1:r", 6, 1)
    assert [await admit(client, [(a, 1.0)]) for _ in range(6)] == [None] * 6
    refused = await admit(client, [(a, 1.0)])
    assert isinstance(refused, Refusal) and refused.retry_after == pytest.approx(10.0)
    calls = board.calls
    for _ in range(50):
        clock.t += 0.1
        again = await admit(client, [(a, 1.0)])
        assert isinstance(again, Refusal) and 0 < again.retry_after <= 10
    assert board.calls == calls  # 50 refusals, not one board call
    clock.t += 5.1
    assert await admit(client, [(a, 1.0)]) is None
    await client.close()


async def test_all_or_nothing_across_buckets_and_what_was_taken_comes_back() -> None:
    _, core, _, client = replica()
    key = client.allowance("key*600/0|k:r", 600, 30)
    tokens = client.allowance("key*0/1000|k:t", 1000, 50)
    assert await admit(client, [(key, 1.0), (tokens, 900.0)]) is None
    refused = await admit(client, [(key, 1.0), (tokens, 900.0)])
    assert isinstance(refused, Refusal) and refused.allowance is tokens
    await asyncio.sleep(0.01)  # the worker reports the refund
    await client.close()
    view = core.view()["buckets"]
    requests_left = view["key*600/0|k:r"]["level"] + key.held
    assert requests_left == pytest.approx(599)  # only the admitted request counts


async def test_settle_reaches_the_board_in_the_background() -> None:
    _, core, _, client = replica()
    a = client.allowance("user*0/10000|alice:t", 10000, 500)
    assert await admit(client, [(a, 1200.0)]) is None
    level = core.view()["buckets"]["user*0/10000|alice:t"]["level"]
    client.settle(a, 300.0)  # it used 1500
    await asyncio.sleep(0.01)
    assert core.view()["buckets"]["user*0/10000|alice:t"]["level"] <= level - 300 + 1e-6
    client.settle(a, -1500.0)  # a cache hit: nothing used after all
    await asyncio.sleep(0.01)
    after = core.view()["buckets"]["user*0/10000|alice:t"]
    assert after["level"] + after["outstanding"] == pytest.approx(10000)
    await client.close()


async def test_an_unreachable_board_admits_unchecked_and_keeps_the_corrections() -> None:
    _, core, board, client = replica()
    a = client.allowance("key*0/100|k:t", 100, 5)
    board.fail = True
    assert await admit(client, [(a, 10.0)]) == UNCHECKED
    client.settle(a, 7.0)
    await asyncio.sleep(0.01)
    assert a.settle == 7.0  # not lost while the board is away
    board.fail = False
    client.settle(a, 1.0)
    await asyncio.sleep(0.01)
    assert a.settle == 0.0 and core.view()["buckets"]["key*0/100|k:t"]["level"] <= 100 - 8
    await client.close()


async def test_a_cancelled_request_does_not_lose_the_lease_it_was_waiting_for() -> None:
    _, core, _, client = replica()
    a = client.allowance("key*60/0|k:r", 60, 3)
    task = asyncio.get_running_loop().create_task(client.acquire([(a, 1.0)]))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0.01)
    assert a.inflight is None and a.held == 3  # the reply was applied anyway
    view = core.view()["buckets"]["key*60/0|k:r"]
    assert view["level"] + view["outstanding"] == 59
    await client.close()


async def test_buckets_spread_over_shards_and_replies_keep_their_order() -> None:
    boards = [LocalBoard(), LocalBoard(), LocalBoard()]
    sharded = ShardedBoard(boards)
    ids = [f"key*10/0|k{i}:r" for i in range(12)]
    items = [(b, 10, 1 / 6, 1, 0, 0, 0) for b in ids[:-1]] + [(ids[-1], 10, 1 / 6, 11, 0, 0, 0)]
    replies = await sharded.sync("r", 5, items)
    assert [r[0] for r in replies] == [True] * 11 + [False]
    for i, b in enumerate(boards):
        assert set(b.board.buckets) == {x for x in ids if shard_of(x, 3) == i}
    assert len({shard_of(x, 3) for x in ids}) == 3

"""A replica's side of the buckets: small local allowances, spent per request, refilled in batches.

The common case is `take_local`: every bucket the request counts against has enough allowance,
so admission is a few float subtractions. An allowance that falls below half its lease size is
topped up by a background sync (one board call per shard for every bucket that needs it, at most
every `sync_interval_s`), which also carries the usage corrections of finished requests (`settle`).
When a bucket has too little locally, the request asks the board itself (`acquire`): one call,
awaited. A bucket the board refused stays refused locally until it can have refilled, so a flood
of requests over the limit does not become a flood of board calls.

Safety, with several replicas on one board (bucket.py): a replica spends only what the board
recorded as leased to it. So at most one sync per bucket is in flight; a sync reports what the
replica still holds (`kept`) and the replica goes on spending only what the board confirmed; a
lease is void locally at `sent + ttl`, before the board's own expiry (`received + ttl`); and
tokens taken but not used (a request refused by another bucket) go back through `settle`, never
straight into the local allowance.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

log = logging.getLogger("raygate.ratelimit")

SWEEP_EVERY_S = 30.0
BOARD_TIMEOUT_S = 2.0


class Allowance:
    """One bucket as this replica sees it."""

    __slots__ = ("bucket_id", "capacity", "rate", "lease", "held", "expires", "settle", "level",
                 "blocked_until", "blocked_need", "inflight", "used_at")

    def __init__(self, bucket_id: str, capacity: float, rate: float, lease: float) -> None:
        self.bucket_id = bucket_id
        self.capacity = capacity
        self.rate = rate
        self.lease = lease  # the allowance a sync tops up to
        self.held = 0.0  # leased to this replica and not spent
        self.expires = 0.0  # monotonic; `held` is void from then on
        self.settle = 0.0  # correction not yet reported (positive: more used than taken)
        self.level = capacity  # the board's level at the last sync (for x-ratelimit-remaining-*)
        self.blocked_until = 0.0  # the board refused `blocked_need` tokens; refuse locally until then
        self.blocked_need = 0.0
        self.inflight: asyncio.Future[None] | None = None  # the sync of this bucket under way
        self.used_at = 0.0

    def usable(self, now: float) -> float:
        if self.held and now >= self.expires:
            self.held = 0.0
        return self.held

    def remaining(self) -> int:
        return max(0, int(self.level + self.held))


class Refusal:
    __slots__ = ("allowance", "retry_after")

    def __init__(self, allowance: Allowance, retry_after: float | None) -> None:
        self.allowance = allowance
        self.retry_after = retry_after  # None: the request needs more than the bucket can ever hold


Needs = list[tuple[Allowance, float]]
UNCHECKED = "unchecked"  # acquire's answer when the board cannot be reached: admitted without a check


class LeaseClient:
    def __init__(self, board: Any, ttl: float = 5.0, sync_interval: float = 0.05,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.board = board  # `async sync(lessee, ttl, items) -> replies` (bucket.py's formats)
        self.lessee = uuid.uuid4().hex
        self.ttl = ttl
        self.sync_interval = sync_interval
        self.clock = clock
        self.allowances: dict[str, Allowance] = {}
        self._dirty: set[Allowance] = set()
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._swept = clock()
        self._warned = 0.0

    def allowance(self, bucket_id: str, capacity: float, lease: float) -> Allowance:
        a = self.allowances.get(bucket_id)
        if a is None:
            a = self.allowances[bucket_id] = Allowance(bucket_id, capacity, capacity / 60.0, lease)
        return a

    # -- the request path ----------------------------------------------------------------------
    def take_local(self, needs: Needs) -> bool:
        """Spend `cost` from each allowance if every one has enough (all or nothing)."""
        now = self.clock()
        for a, cost in needs:
            if a.usable(now) < cost:
                return False
        for a, cost in needs:
            a.held -= cost
            a.used_at = now
            if a.held < a.lease / 2:
                self._mark(a)
        return True

    async def acquire(self, needs: Needs) -> Refusal | str | None:
        """Admit (None), refuse, or admit unchecked (UNCHECKED); asks the board for what is short here."""
        while True:  # one sync per bucket at a time: wait for the one under way, then look again
            busy = next((a.inflight for a, _ in needs if a.inflight is not None), None)
            if busy is None:
                break
            await asyncio.shield(busy)  # a cancelled request must not cancel the shared sync
        if self.take_local(needs):
            return None
        now = self.clock()
        for a, cost in needs:
            if cost > a.capacity:
                return Refusal(a, None)
            if now < a.blocked_until and cost >= a.blocked_need and a.usable(now) < cost:
                return Refusal(a, a.blocked_until - now)
        parts: list[tuple[Allowance, float, float]] = []  # (allowance, cost, asked of the board)
        asks: list[tuple[Allowance, float, float]] = []
        for a, cost in needs:
            have = a.usable(now)
            need = 0.0 if have >= cost else cost - have
            a.held = have - cost if need == 0 else 0.0  # what is short is asked for; the rest is spent
            a.used_at = now
            parts.append((a, cost, need))
            if need:
                asks.append((a, need, a.lease))
        replies = await asyncio.shield(self._sync(asks, now))
        if replies is None:  # the board is unreachable: admit (fail open), logged
            return UNCHECKED
        refusal, refused = None, set()
        for (a, need, _), (ok, _, _, _, retry_after) in zip(asks, replies, strict=True):
            if ok:
                a.blocked_until = 0.0
                continue
            refused.add(a)
            if retry_after is not None:
                a.blocked_until, a.blocked_need = now + retry_after, need
            if refusal is None:
                refusal = Refusal(a, retry_after)
        if refusal is not None:  # give back what this request took: the board took nothing where it refused
            for a, cost, need in parts:
                self.settle(a, -(cost - need) if a in refused else -cost)
        return refusal

    def settle(self, a: Allowance, delta: float) -> None:
        """A usage correction for the board (positive: more used than taken); sent by the next sync."""
        if delta:
            a.settle += delta
            self._mark(a)

    # -- syncing -------------------------------------------------------------------------------
    def _mark(self, a: Allowance) -> None:
        self._dirty.add(a)
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._run())

    def _sync(self, asks: list[tuple[Allowance, float, float]], now: float) -> asyncio.Task[list[Any] | None]:
        """One board call for these buckets (none in flight): `need` now, topped up to `lease`.

        The buckets are marked in flight before this returns, so no other sync of them can start;
        the call runs as its own task, so a request cancelled meanwhile does not lose the reply."""
        items = []
        for a, need, lease in asks:
            kept = a.usable(now)
            items.append((a.bucket_id, a.capacity, a.rate, need, max(0.0, lease - kept), kept, a.settle))
            a.settle = 0.0
        task = asyncio.get_running_loop().create_task(self._call(asks, items, now))
        for a, _, _ in asks:
            a.inflight = task
        return task

    async def _call(self, asks: list[tuple[Allowance, float, float]], items: list[Any],
                    now: float) -> list[Any] | None:
        try:
            async with asyncio.timeout(BOARD_TIMEOUT_S):  # not wait_for: on 3.11 it can swallow a cancel
                replies = await self.board.sync(self.lessee, self.ttl, items)
        except Exception as exc:  # noqa: BLE001 - an actor restarting or gone; the caller decides
            for (a, _, _), item in zip(asks, items, strict=True):
                a.settle += item[6]
            self._warn(exc)
            return None
        finally:
            for a, _, _ in asks:
                a.inflight = None
        for (a, _, _), (_, extra, level, kept, _) in zip(asks, replies, strict=True):
            a.held = min(a.held, kept) + extra  # spend only what the board confirmed as still leased
            a.expires = now + self.ttl
            a.level = level
        return replies

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            now = self.clock()
            batch = [a for a in self._dirty if a.inflight is None]
            self._dirty.difference_update(batch)
            if self._dirty:  # in flight now: look again next round
                self._wake.set()
            asks = []
            for a in batch:  # topped up if still low (and not refused lately); or just its correction
                low = a.usable(now) < a.lease / 2 and now >= a.blocked_until
                if low or a.settle:
                    asks.append((a, 0.0, a.lease if low else 0.0))
            if asks and await self._sync(asks, now) is None:
                self._dirty.update(a for a, _, _ in asks if a.settle)  # keep the corrections for later
            if now - self._swept >= SWEEP_EVERY_S:
                self.sweep(now)
            await asyncio.sleep(self.sync_interval)

    def sweep(self, now: float) -> None:
        """Forget buckets idle for a lease's lifetime with nothing left to report."""
        self._swept = now
        for bucket_id, a in list(self.allowances.items()):
            if a.inflight is None and not a.settle and a.usable(now) == 0 and now - a.used_at > self.ttl:
                del self.allowances[bucket_id]
                self._dirty.discard(a)

    def _warn(self, exc: BaseException) -> None:
        now = self.clock()
        if now - self._warned > 10:
            self._warned = now
            log.warning("rate-limit board unreachable (%s); admitting without a check", type(exc).__name__)

    async def close(self) -> None:
        """Report what is still unsettled, then stop the worker."""
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        pending = [(a, 0.0, 0.0) for a in self._dirty if a.inflight is None and a.settle]
        if pending:
            await self._sync(pending, self.clock())


__all__ = ["Allowance", "LeaseClient", "Needs", "Refusal"]

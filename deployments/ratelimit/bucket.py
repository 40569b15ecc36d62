"""Token buckets that lease tokens to replicas: the authoritative state of one bucket actor.

A bucket holds up to `capacity` tokens and refills at `rate` tokens a second (a per-minute limit
L is capacity L, rate L/60: a full minute of burst). Replicas do not ask for one token per
request: `sync` moves a small allowance (a lease) out of the bucket to a replica, which spends it
locally. A lease is recorded against its replica (the lessee) until the replica reports what it
still holds (`kept`) or the lease expires; and the bucket refills only up to
`capacity - outstanding leases`. So tokens in the bucket plus tokens any replica may still spend
never exceed `capacity`, and over any window of T seconds the replicas together admit at most
`capacity + rate * T` — what one token bucket would — however many replicas share it. The cost
of leasing is the other way round: tokens leased to a replica that does not need them are
unavailable to the others until it spends them or its lease expires (docs/rate-limits.md).

Settling (tokens per minute): a request reserves an estimate at admission; its replica reports the
difference to the actual usage later (`settle`, positive: more was used, taken from the bucket,
which may go below zero; negative: returned, within the cap).

Plain Python with an injectable clock; `actor.py` wraps it in a Ray actor. Not thread-safe: the
actor runs one call at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

SWEEP_EVERY_S = 10.0
SHARE = 0.5  # a lease takes at most this share of what is left, so a nearly empty bucket is not stranded

# a sync item, replica -> bucket: (bucket_id, capacity, rate, need, want, kept, settle)
#   need: tokens to take now for a request (0: none); want: extra tokens to lease for later requests;
#   kept: what the replica still holds of its previous lease; settle: usage correction (see above)
# a reply, bucket -> replica: (ok, extra, level, kept, retry_after)
#   ok: `need` was taken; extra: newly leased; level: what is left in the bucket; kept: the part of
#   the replica's `kept` still covered by a lease; retry_after: seconds until `need` fits (None: never)
Item = tuple[str, float, float, float, float, float, float]
Reply = tuple[bool, float, float, float, float | None]


class Bucket:
    __slots__ = ("capacity", "rate", "level", "at", "leases", "outstanding")

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.level = capacity
        self.at = now
        self.leases: dict[str, tuple[float, float]] = {}  # lessee -> (amount, expires)
        self.outstanding = 0.0

    def advance(self, now: float) -> None:
        """Refill up to now, each stretch under the cap that held then: a lease that expired stops
        holding tokens back at its expiry. This is the continuous bucket exactly (the cap changes
        only at calls and expiries)."""
        if self.leases:
            for expires, lessee in sorted((exp, who) for who, (_, exp) in self.leases.items() if exp <= now):
                self._refill(expires)
                self._set_lease(lessee, 0.0, 0.0)
        self._refill(now)

    def _refill(self, t: float) -> None:
        if t <= self.at:
            return
        cap = self.capacity - self.outstanding
        if self.level < cap:
            self.level = min(cap, self.level + self.rate * (t - self.at))
        self.at = t

    def _set_lease(self, lessee: str, amount: float, expires: float) -> None:
        old = self.leases.pop(lessee, None)
        if old is not None:
            self.outstanding -= old[0]
        if amount > 0:
            self.leases[lessee] = (amount, expires)
            self.outstanding += amount
        if not self.leases:
            self.outstanding = 0.0  # no float residue once nothing is leased

    def retry_after(self, need: float) -> float | None:
        if need > self.capacity:
            return None
        return max(0.0, need - self.level) / self.rate

    def sync(self, lessee: str, need: float, want: float, kept: float, settle: float, now: float,
             ttl: float) -> Reply:
        self.advance(now)
        held = self.leases.get(lessee)
        kept = min(kept, held[0]) if held is not None else 0.0  # an expired lease covers nothing
        self._set_lease(lessee, kept, held[1] if held is not None else 0.0)  # the rest was spent
        if settle > 0:
            self.level -= settle
        elif settle < 0:
            self.level = min(self.capacity - self.outstanding, self.level - settle)
        ok = need <= 0 or self.level >= need
        extra = 0.0
        if ok:
            self.level -= max(need, 0.0)
            if want > 0 and self.level > 0:
                extra = min(want, self.level * SHARE)
                self.level -= extra
        if kept + extra > 0:
            self._set_lease(lessee, kept + extra, now + ttl)
        return ok, extra, self.level, kept, None if ok else self.retry_after(need)


class BucketBoard:
    """Every bucket of one actor, by id. Ids carry the rule's limits, so a changed limit is a new bucket."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.buckets: dict[str, Bucket] = {}
        self.lessees: dict[str, float] = {}  # lessee -> last seen (for the view)
        self._swept = clock()

    def sync(self, lessee: str, ttl: float, items: list[Item]) -> list[Reply]:
        now = self.clock()
        self.lessees[lessee] = now
        if now - self._swept >= SWEEP_EVERY_S:
            self.sweep(now)
        out = []
        for bucket_id, capacity, rate, need, want, kept, settle in items:
            bucket = self.buckets.get(bucket_id)
            if bucket is None:
                bucket = self.buckets[bucket_id] = Bucket(capacity, rate, now)
            out.append(bucket.sync(lessee, need, want, kept, settle, now, ttl))
        return out

    def sweep(self, now: float) -> None:
        """Forget buckets that are full with nothing leased (a new one is the same) and quiet lessees."""
        self._swept = now
        for bucket_id, bucket in list(self.buckets.items()):
            bucket.advance(now)
            if not bucket.leases and bucket.level >= bucket.capacity:
                del self.buckets[bucket_id]
        for lessee, seen in list(self.lessees.items()):
            if now - seen > 3600:
                del self.lessees[lessee]

    def view(self) -> dict[str, Any]:
        """Levels and leases now (for tests and operators): {"lessees": [...], "buckets": {id: {...}}}."""
        now = self.clock()
        buckets = {}
        for bucket_id, bucket in self.buckets.items():
            bucket.advance(now)
            buckets[bucket_id] = {"capacity": bucket.capacity, "level": bucket.level,
                                  "outstanding": bucket.outstanding, "lessees": sorted(bucket.leases)}
        return {"lessees": sorted(self.lessees), "buckets": buckets}


__all__ = ["Bucket", "BucketBoard", "Item", "Reply"]

"""Choosing one member of a load-balanced pool.

Algorithms: `weighted` (weighted random, the default), `round_robin` (smooth weighted
round-robin: equal weights take turns), `least_latency` (lowest moving average of attempt
durations; members without data first, and a small share of picks explore at random so a
recovered member is noticed), `least_busy` (fewest attempts in flight). `sticky_key` (an
expression such as `metadata.session_id`) pins a session to a member by weighted rendezvous
hashing over the healthy members: a session stays put while its member is healthy, and only
the sessions of a member that trips move.

Members whose every target has an open circuit are skipped; if that leaves none, all members
are candidates (the executor then reports them as `circuit open`). Latency and in-flight
figures are those of this replica (`TargetStats`, fed by the executor).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Sequence
from typing import Any

from .conditions import MISSING, Condition

EWMA_ALPHA = 0.3
EXPLORE = 0.05


class TargetStats:
    """Per target key: attempts in flight and a moving average of attempt durations (seconds)."""

    __slots__ = ("inflight", "latency", "alpha")

    def __init__(self, alpha: float = EWMA_ALPHA) -> None:
        self.inflight: dict[str, int] = {}
        self.latency: dict[str, float] = {}
        self.alpha = alpha

    def begin(self, key: str) -> None:
        self.inflight[key] = self.inflight.get(key, 0) + 1

    def end(self, key: str) -> None:
        self.inflight[key] = self.inflight.get(key, 1) - 1

    def observe(self, key: str, seconds: float) -> None:
        prev = self.latency.get(key)
        self.latency[key] = seconds if prev is None else prev + self.alpha * (seconds - prev)


class Balancer:
    """Picks a member index. `member_keys[i]` are the target keys under member i (health, stats)."""

    __slots__ = ("weights", "member_keys", "guarded", "algorithm", "sticky", "rng", "_current")

    def __init__(self, weights: Sequence[float], member_keys: Sequence[Sequence[str]],
                 algorithm: str = "weighted", sticky: Condition | None = None,
                 rng: random.Random | None = None, guarded: Sequence[bool] | None = None) -> None:
        self.weights = list(weights)
        self.member_keys = [tuple(k) for k in member_keys]
        # a member is skippable only if every target under it has a breaker
        self.guarded = list(guarded) if guarded is not None else [True] * len(self.weights)
        self.algorithm = "weighted" if algorithm == "weighted_random" else algorithm
        self.sticky = sticky
        self.rng = rng or random.Random()
        self._current = [0.0] * len(self.weights)

    def candidates(self, available: Callable[[str], bool] | None) -> list[int]:
        members = [i for i, w in enumerate(self.weights) if w > 0]
        if available is None:
            return members
        healthy = [i for i in members
                   if not self.guarded[i] or any(available(k) for k in self.member_keys[i])]
        return healthy or members

    def pick(self, request: Any = None, metadata: Any = None, headers: Any = None,
             available: Callable[[str], bool] | None = None, stats: TargetStats | None = None) -> int:
        cands = self.candidates(available)
        if len(cands) == 1:
            return cands[0]
        if self.sticky is not None:
            value = self.sticky.value(request, metadata, headers)
            if value is not MISSING and value is not None and value != "":
                return self._rendezvous(str(value), cands)
        algo = self.algorithm
        if algo == "round_robin":
            return self._round_robin(cands)
        if algo == "least_busy" and stats is not None:
            busy = stats.inflight
            least = min(busy.get(self.member_keys[i][0], 0) if self.member_keys[i] else 0 for i in cands)
            tied = [i for i in cands if (busy.get(self.member_keys[i][0], 0) if self.member_keys[i] else 0) == least]
            return self._weighted(tied)
        if algo == "least_latency" and stats is not None:
            if self.rng.random() < EXPLORE:
                return self._weighted(cands)
            lat = stats.latency
            unknown = [i for i in cands if not self.member_keys[i] or self.member_keys[i][0] not in lat]
            if unknown:
                return self._weighted(unknown)
            return min(cands, key=lambda i: lat[self.member_keys[i][0]])
        return self._weighted(cands)

    def _weighted(self, cands: list[int]) -> int:
        if len(cands) == 1:
            return cands[0]
        weights = self.weights
        total = 0.0
        for i in cands:
            total += weights[i]
        r = self.rng.random() * total
        for i in cands:
            r -= weights[i]
            if r < 0:
                return i
        return cands[-1]

    def _round_robin(self, cands: list[int]) -> int:
        current, weights = self._current, self.weights
        total = 0.0
        best = cands[0]
        for i in cands:
            current[i] += weights[i]
            total += weights[i]
            if current[i] > current[best]:
                best = i
        current[best] -= total
        return best

    def _rendezvous(self, value: str, cands: list[int]) -> int:
        best, best_score = cands[0], -math.inf
        for i in cands:
            digest = hashlib.blake2b(f"{i}\x00{value}".encode(), digest_size=8).digest()
            u = (int.from_bytes(digest, "big") + 1) / (2**64 + 2)  # in (0, 1)
            score = -self.weights[i] / math.log(u)
            if score > best_score:
                best, best_score = i, score
        return best


__all__ = ["Balancer", "TargetStats"]

"""Circuit breakers per target, decided locally and shared across replicas through one actor.

State machine (per target key, `CircuitPolicy` defaults: 5 failures in 30 s open it for 30 s):

    closed --(failures >= N within window)--> open --(cooldown passed)--> half_open
    half_open --(probe succeeds)--> closed;   half_open --(probe fails)--> open

In half_open one request at a time (per replica) goes through as the probe; the others skip.

Sharing without a round trip per request: every replica routes from its own `CircuitBoard`.
Failures (and successes while not closed) go into an outbox; a background task sends the
outbox to the named actor `raygate-circuits` (`CircuitAggregator`, the same state machine over
every replica's events) every `interval` seconds and adopts the actor's view of non-closed
targets in the same call. So one replica's failures open the circuit for all of them within
about one interval. Without Ray (tests, plain uvicorn) the board is purely local.
The clock is wall time (`time.time`), comparable across processes on a node.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("raygate.circuit")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
ACTOR_NAME = "raygate-circuits"
NAMESPACE = "raygate"
MAX_OUTBOX = 10_000


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    failures: int = 5
    window: float = 30.0
    cooldown: float = 30.0


DEFAULT_POLICY = CircuitPolicy()


class Breaker:
    """One target's state machine; `now` is passed in (injectable clock)."""

    __slots__ = ("state", "failures", "until", "probe_until")

    def __init__(self) -> None:
        self.state = CLOSED
        self.failures: deque[float] = deque()
        self.until = 0.0  # open: when it may be probed
        self.probe_until = 0.0  # half_open: a probe is in flight until then

    def available(self, now: float) -> bool:
        """Would a request be let through (without taking the probe slot)?"""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            return now >= self.until
        return now >= self.probe_until

    def allow(self, now: float, policy: CircuitPolicy) -> tuple[bool, str | None]:
        """(let through?, new state if it changed). In half_open this takes the probe slot."""
        if self.state == CLOSED:
            return True, None
        changed = None
        if self.state == OPEN:
            if now < self.until:
                return False, None
            self.state = changed = HALF_OPEN
            self.probe_until = 0.0
        if now < self.probe_until:
            return False, changed
        self.probe_until = now + policy.cooldown  # a probe that never reports frees the slot later
        return True, changed

    def record(self, ok: bool, now: float, policy: CircuitPolicy) -> str | None:
        """Apply one result; returns the new state if it changed."""
        if self.state == OPEN and now >= self.until:
            self.state = HALF_OPEN  # cooldown passed while nobody asked
            self.probe_until = 0.0
        if ok:
            if self.state == HALF_OPEN:
                self.state = CLOSED
                self.failures.clear()
                return CLOSED
            return None
        if self.state == OPEN or (self.state == HALF_OPEN and now < self.until):
            return None  # results of calls that started before it opened
        if self.state == HALF_OPEN:
            return self._open(now, policy)
        fails = self.failures
        fails.append(now)
        horizon = now - policy.window
        while fails and fails[0] < horizon:
            fails.popleft()
        if len(fails) >= policy.failures:
            return self._open(now, policy)
        return None

    def _open(self, now: float, policy: CircuitPolicy) -> str:
        self.state = OPEN
        self.until = now + policy.cooldown
        self.probe_until = 0.0
        self.failures.clear()
        return OPEN

    def current(self, now: float) -> str:
        if self.state == OPEN and now >= self.until:
            return HALF_OPEN
        return self.state


class CircuitBoard:
    """A process's breakers. `available`/`allow`/`record` are the request path; cheap when all closed."""

    def __init__(self, clock: Callable[[], float] = time.time,
                 on_change: Callable[[str, str], None] | None = None) -> None:
        self.clock = clock
        self.on_change = on_change  # (key, new state): metrics, when this board is the source of truth
        self.breakers: dict[str, Breaker] = {}
        self.tripped: set[str] = set()  # keys not closed: the only ones that need a look
        self.outbox: list[tuple[Any, ...]] = []
        self.actor: Any = None
        self._factory: Callable[[], Any] | None = None
        self.interval = 0.5
        self.started = False  # begin() ran
        self._task: asyncio.Task[None] | None = None
        self._seq = 0
        self._touched: dict[str, int] = {}

    # -- request path ----------------------------------------------------------------------------
    def available(self, key: str) -> bool:
        if key not in self.tripped:
            return True
        return self.breakers[key].available(self.clock())

    def allow(self, key: str, policy: CircuitPolicy) -> bool:
        if key not in self.tripped:
            return True
        ok, changed = self.breakers[key].allow(self.clock(), policy)
        if changed:
            self._changed(key, changed)
        return ok

    def record(self, key: str, ok: bool, policy: CircuitPolicy) -> None:
        if ok and key not in self.tripped:
            return
        now = self.clock()
        breaker = self.breakers.get(key)
        if breaker is None:
            breaker = self.breakers[key] = Breaker()
        changed = breaker.record(ok, now, policy)
        if self.actor is not None and len(self.outbox) < MAX_OUTBOX:
            self.outbox.append((key, ok, now, policy.failures, policy.window, policy.cooldown))
        if changed:
            self._changed(key, changed)

    def retry_in(self, key: str) -> float | None:
        """Seconds until an open circuit may be probed (for Retry-After), None if not open."""
        breaker = self.breakers.get(key)
        if breaker is None or breaker.state != OPEN:
            return None
        return max(0.0, breaker.until - self.clock())

    def state(self, key: str) -> str:
        breaker = self.breakers.get(key)
        return CLOSED if breaker is None else breaker.current(self.clock())

    def _changed(self, key: str, state: str) -> None:
        if state == CLOSED:
            self.tripped.discard(key)
        else:
            self.tripped.add(key)
        self._seq += 1
        self._touched[key] = self._seq
        if self.on_change is not None and self.actor is None:
            self.on_change(key, state)

    # -- sharing across replicas -------------------------------------------------------------------
    def attach(self, actor: Any = None, *, factory: Callable[[], Any] | None = None,
               interval: float = 0.5) -> None:
        """Share state through a CircuitAggregator actor: given, or made by `factory` on the first
        strategy request (so a gateway that never routes by strategy never starts the actor).
        Once attached, the actor counts the transitions (once, not once per replica)."""
        self.actor = actor
        self._factory = factory
        self.interval = interval

    async def begin(self) -> None:
        """First strategy request of this replica: get the actor, take its view, start the sync loop.

        Awaited once (later calls return at once: the caller checks `started`), so a replica that
        joins late does not route to a target the others have already tripped.
        """
        if self.started:
            return
        self.started = True
        if self.actor is None and self._factory is not None:
            try:
                self.actor = self._factory()
            except Exception:  # no Ray here after all: stay local
                log.warning("circuit breaker actor unavailable; breakers stay local", exc_info=True)
            self._factory = None
        if self.actor is None:
            return
        try:
            await asyncio.wait_for(self.sync_once(), timeout=2.0)
        except Exception:  # noqa: BLE001 - the loop below keeps trying
            log.warning("first circuit state sync failed", exc_info=True)
        self.start()

    def start(self) -> None:
        """Start the sync loop on the running loop (a no-op when running or without an actor)."""
        self.started = True
        if self._task is None and self.actor is not None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await self.sync_once()
            await asyncio.sleep(self.interval)

    async def sync_once(self) -> None:
        events, self.outbox = self.outbox, []
        seq = self._seq
        try:
            view = await self.actor.sync.remote(events)
        except Exception:  # the actor restarting must not lose the failures: keep them for next time
            log.warning("circuit state sync failed; retrying", exc_info=True)
            self.outbox = (events + self.outbox)[-MAX_OUTBOX:]
            return
        self.adopt(view, seq)

    def adopt(self, view: dict[str, tuple[str, float]], seq: int | None = None) -> None:
        """Take the shared view (non-closed targets), except where this replica changed since `seq`."""
        def fresh(key: str) -> bool:
            return seq is None or self._touched.get(key, 0) <= seq

        for key, (state, until) in view.items():
            if not fresh(key):
                continue
            breaker = self.breakers.get(key)
            if breaker is None:
                breaker = self.breakers[key] = Breaker()
            if state == OPEN:
                breaker.state, breaker.until, breaker.probe_until = OPEN, until, 0.0
                self.tripped.add(key)
            elif state == HALF_OPEN and breaker.state != HALF_OPEN:
                breaker.state, breaker.until, breaker.probe_until = HALF_OPEN, until, 0.0
                self.tripped.add(key)
        for key in list(self.tripped):
            if key not in view and fresh(key):
                self.breakers[key].state = CLOSED
                self.tripped.discard(key)

    def view(self) -> dict[str, tuple[str, float]]:
        now = self.clock()
        out = {}
        for key in self.tripped:
            breaker = self.breakers[key]
            state = breaker.current(now)
            if state != CLOSED:
                out[key] = (state, breaker.until)
        return out

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self.actor is not None and self.outbox:
            await self.sync_once()


class CircuitAggregator:
    """The actor body: the breakers of all replicas' events; counts transitions into the metrics actor."""

    def __init__(self) -> None:
        self.board = CircuitBoard(on_change=self._count)
        self._changes: dict[tuple[str, str], float] = {}
        self._metrics: Any = None

    def _count(self, key: str, state: str) -> None:
        self._changes[(key, state)] = self._changes.get((key, state), 0.0) + 1

    def sync(self, events: list[tuple[Any, ...]]) -> dict[str, tuple[str, float]]:
        board = self.board
        for key, ok, ts, failures, window, cooldown in events:
            breaker = board.breakers.get(key)
            if breaker is None:
                if ok:
                    continue
                breaker = board.breakers[key] = Breaker()
            changed = breaker.record(ok, ts, CircuitPolicy(failures, window, cooldown))
            if changed:
                board._changed(key, changed)
        now = board.clock()
        for key in list(board.tripped):  # cooldowns that ran out since the last call
            breaker = board.breakers[key]
            if breaker.state == OPEN and now >= breaker.until:
                breaker.state = HALF_OPEN
                board._changed(key, HALF_OPEN)
        self._flush_metrics()
        return board.view()

    def view(self) -> dict[str, tuple[str, float]]:
        return self.board.view()

    def _flush_metrics(self) -> None:
        if not self._changes:
            return
        changes, self._changes = self._changes, {}
        try:
            if self._metrics is None:
                ray = sys.modules.get("ray")
                if ray is None or not ray.is_initialized():  # not inside a Ray actor (unit tests)
                    return
                from serve_app.metrics import ACTOR_NAME as METRICS_ACTOR
                from serve_app.metrics import NAMESPACE as METRICS_NS

                self._metrics = ray.get_actor(METRICS_ACTOR, namespace=METRICS_NS)
            delta = {"counters": {"raygate_circuit_state_changes_total": {k: v for k, v in changes.items()}},
                     "hist": {}}
            self._metrics.push.remote(delta)
        except Exception:  # no metrics actor (e.g. a router-only cluster): the counts are dropped
            self._metrics = None


def circuit_actor() -> Any:
    """Get or create the named CircuitAggregator actor (inside a replica, never at import)."""
    import ray

    actor_cls = ray.remote(num_cpus=0, max_restarts=-1)(CircuitAggregator)
    return actor_cls.options(name=ACTOR_NAME, namespace=NAMESPACE, lifetime="detached",
                             get_if_exists=True).remote()


__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "Breaker", "CircuitAggregator", "CircuitBoard", "CircuitPolicy",
           "DEFAULT_POLICY", "circuit_actor"]

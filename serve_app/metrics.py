"""Request metrics: counted in each replica for ~free, summed across replicas by one actor.

Each ingress replica is its own process, so a Prometheus registry in a replica would show one
replica's counts. Instead every replica adds to plain dicts on the request path (no locks, no
label objects) and a background task ships the deltas once a second to a named actor
(`raygate-metrics`), which holds the cluster-wide totals. `/metrics` on any replica flushes its
own deltas and returns the actor's Prometheus text, so a scrape sees every replica's requests.
Without Ray (tests, plain uvicorn) the sink is in-process.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
import uuid
from collections import defaultdict
from typing import Any

log = logging.getLogger("raygate.metrics")

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
GAUGE_TTL_S = 60.0  # a replica's gauge value is dropped when it stops reporting (the replica died)
ACTOR_NAME = "raygate-metrics"
NAMESPACE = "raygate"

Labels = tuple[str, ...]

# name -> (type, help, label names)
FAMILIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "raygate_requests_total": ("counter", "Requests answered, by provider, model and HTTP status.",
                               ("provider", "model", "status")),
    "raygate_request_duration_seconds": ("histogram", "Time from request to complete response.",
                                         ("provider", "model")),
    "raygate_upstream_attempts_total": ("counter", "Upstream attempts, by provider and outcome.",
                                        ("provider", "outcome")),
    "raygate_retries_total": ("counter", "Extra attempts on the same target.", ("provider",)),
    "raygate_fallbacks_total": ("counter", "Moves to the next target in a chain.", ("from_provider",)),
    "raygate_circuit_state_changes_total": ("counter", "Circuit breaker transitions per target.",
                                            ("target", "state")),
    "raygate_cache_lookups_total": ("counter", "Cache lookups by result.", ("result",)),
    "raygate_stream_errors_total": ("counter", "Streams that failed after they started.", ("provider",)),
    "raygate_tokens_total": ("counter", "Upstream tokens by kind (input, cached_input, cache_write, output, "
                             "reasoning) and model.", ("type", "model")),
    "raygate_cache_hits_total": ("counter", "Requests answered from the cache, by kind (exact, semantic).",
                                 ("kind",)),
    "raygate_cache_misses_total": ("counter", "Requests the cache was asked for and could not answer.", ()),
    "raygate_guardrail_checks_total": ("counter", "Guardrail check results, by check and verdict.",
                                       ("check", "verdict")),
    "raygate_record_queue_depth": ("gauge", "Records spooled but not yet committed to storage.", ()),
    "raygate_record_write_seconds": ("histogram", "Time to commit one batch of records.", ()),
    "raygate_records_written_total": ("counter", "Records committed to storage.", ()),
    "raygate_records_spilled_total": ("counter", "Records that waited on disk while storage was down.", ()),
    "raygate_records_dropped_total": ("counter", "Records lost: spool full, or refused by the database.",
                                      ("reason",)),
}


class Snapshot:
    """Counters and histograms as plain dicts; `merge` adds another snapshot's deltas.

    Gauges are levels, not deltas: the latest value of each replica is kept and the sum rendered.
    """

    __slots__ = ("counters", "hist", "gauges")

    def __init__(self) -> None:
        self.counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        # name -> labels -> [bucket counts..., +Inf count, sum]
        self.hist: dict[str, dict[Labels, list[float]]] = defaultdict(dict)
        # name -> labels -> replica -> (value, monotonic time received)
        self.gauges: dict[str, dict[Labels, dict[str, tuple[float, float]]]] = defaultdict(dict)

    def merge(self, delta: dict[str, Any]) -> None:
        now = time.monotonic()
        for name, series in delta.get("gauges", {}).items():
            target_g = self.gauges[name]
            for labels, value in series.items():
                target_g.setdefault(tuple(labels), {})[delta["replica"]] = (value, now)
        for name, series in delta.get("counters", {}).items():
            target = self.counters[name]
            for labels, value in series.items():
                target[tuple(labels)] += value
        for name, series in delta.get("hist", {}).items():
            target_h = self.hist[name]
            for labels, values in series.items():
                key = tuple(labels)
                cur = target_h.get(key)
                if cur is None:
                    target_h[key] = list(values)
                else:
                    for i, v in enumerate(values):
                        cur[i] += v

    def render(self) -> str:
        lines: list[str] = []
        for name, (kind, help_text, label_names) in FAMILIES.items():
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            if kind == "counter":
                for labels, value in sorted(self.counters.get(name, {}).items()):
                    lines.append(f"{name}{_fmt(label_names, labels)} {_num(value)}")
            elif kind == "gauge":
                for labels, value in sorted(self._gauge_sums(name).items()):
                    lines.append(f"{name}{_fmt(label_names, labels)} {_num(value)}")
            else:
                for labels, values in sorted(self.hist.get(name, {}).items()):
                    cumulative = 0.0
                    for bound, count in zip(BUCKETS, values, strict=False):
                        cumulative += count
                        lines.append(f"{name}_bucket{_fmt(label_names, labels, le=_num(bound))} {_num(cumulative)}")
                    cumulative += values[len(BUCKETS)]
                    lines.append(f"{name}_bucket{_fmt(label_names, labels, le='+Inf')} {_num(cumulative)}")
                    lines.append(f"{name}_count{_fmt(label_names, labels)} {_num(cumulative)}")
                    lines.append(f"{name}_sum{_fmt(label_names, labels)} {values[-1]!r}")
        return "\n".join(lines) + "\n"

    def _gauge_sums(self, name: str) -> dict[Labels, float]:
        cutoff = time.monotonic() - GAUGE_TTL_S
        sums: dict[Labels, float] = {}
        for labels, per_replica in self.gauges.get(name, {}).items():
            for replica, (_, seen) in list(per_replica.items()):
                if seen < cutoff:
                    del per_replica[replica]
            sums[labels] = sum(v for v, _ in per_replica.values())
        return sums


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(names: tuple[str, ...], values: Labels, le: str | None = None) -> str:
    parts = [f'{n}="{_esc(str(v))}"' for n, v in zip(names, values, strict=False)]
    if le is not None:
        parts.append(f'le="{le}"')
    return "{" + ",".join(parts) + "}" if parts else ""


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


class LocalMetrics:
    """Per-replica accumulator. `inc`/`observe`/`set` are dict updates; `take` hands over the deltas."""

    __slots__ = ("_counters", "_hist", "_gauges", "replica")

    def __init__(self) -> None:
        self._counters: dict[str, dict[Labels, float]] = {}
        self._hist: dict[str, dict[Labels, list[float]]] = {}
        self._gauges: dict[str, dict[Labels, float]] = {}  # current levels, sent with every take
        self.replica = uuid.uuid4().hex

    def set(self, name: str, labels: Labels, value: float) -> None:
        series = self._gauges.get(name)
        if series is None:
            series = self._gauges[name] = {}
        series[labels] = value

    def inc(self, name: str, labels: Labels, value: float = 1.0) -> None:
        series = self._counters.get(name)
        if series is None:
            series = self._counters[name] = {}
        series[labels] = series.get(labels, 0.0) + value

    def observe(self, name: str, labels: Labels, seconds: float) -> None:
        series = self._hist.get(name)
        if series is None:
            series = self._hist[name] = {}
        values = series.get(labels)
        if values is None:
            values = series[labels] = [0.0] * (len(BUCKETS) + 2)
        values[bisect.bisect_left(BUCKETS, seconds)] += 1
        values[-1] += seconds

    def request(self, provider: str, model: str, status: int, seconds: float) -> None:
        self.inc("raygate_requests_total", (provider, model, str(status)))
        self.observe("raygate_request_duration_seconds", (provider, model), seconds)

    def take(self) -> dict[str, Any] | None:
        if not self._counters and not self._hist and not self._gauges:
            return None
        delta = {"counters": self._counters, "hist": self._hist, "replica": self.replica,
                 "gauges": {name: dict(series) for name, series in self._gauges.items()}}
        self._counters, self._hist = {}, {}
        return delta


class RecordMetrics:
    """The metrics sink: what /metrics counts per request, read off each finished record."""

    __slots__ = ("local",)

    def __init__(self, local: LocalMetrics) -> None:
        self.local = local

    def submit(self, rec: Any) -> None:
        local = self.local
        provider, model = rec.provider or "", rec.model or ""
        local.request(provider, model, rec.status, (rec.latency_ms or 0.0) / 1000)
        usage = rec.usage
        if usage:
            for kind, n in usage.items():
                if n:
                    local.inc("raygate_tokens_total", (kind, model), n)
        cache = rec.cache
        if cache is not None:
            if cache in ("exact", "semantic"):
                local.inc("raygate_cache_hits_total", (cache,))
            elif cache in ("miss", "refresh"):
                local.inc("raygate_cache_misses_total", ())
        if rec.stream and rec.first_byte_at is not None and rec.status not in (200, 499):
            local.inc("raygate_stream_errors_total", (provider,))


class InProcessSink:
    """Totals kept in this process (no Ray): tests and standalone runs."""

    def __init__(self) -> None:
        self.totals = Snapshot()

    async def push(self, delta: dict[str, Any]) -> None:
        self.totals.merge(delta)

    async def render(self) -> str:
        return self.totals.render()


class MetricsAggregator:
    """The actor body: cluster-wide totals of every replica's deltas."""

    def __init__(self) -> None:
        self.totals = Snapshot()

    def push(self, delta: dict[str, Any]) -> None:
        self.totals.merge(delta)

    def render(self) -> str:
        return self.totals.render()


class ActorSink:
    def __init__(self, actor: Any) -> None:
        self.actor = actor

    async def push(self, delta: dict[str, Any]) -> None:
        await self.actor.push.remote(delta)

    async def render(self) -> str:
        return await self.actor.render.remote()


def actor_sink() -> ActorSink:
    """Get or create the named aggregator actor (call inside a replica, never at import)."""
    import ray

    actor_cls = ray.remote(num_cpus=0, max_restarts=-1)(MetricsAggregator)
    actor = actor_cls.options(name=ACTOR_NAME, namespace=NAMESPACE, lifetime="detached",
                              get_if_exists=True).remote()
    return ActorSink(actor)


class Metrics:
    """A replica's metrics: the local accumulator plus the flush loop to its sink."""

    def __init__(self, sink: Any, interval: float = 1.0) -> None:
        self.local = LocalMetrics()
        self.sink = sink
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the flush loop on the running loop (first request; one check afterwards)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    async def flush(self) -> None:
        delta = self.local.take()
        if delta is None:
            return
        try:
            await self.sink.push(delta)
        except Exception:  # the aggregator restarting must not lose counts: put them back
            log.warning("metrics flush failed; keeping the counts for the next flush", exc_info=True)
            self.local_merge_back(delta)

    def local_merge_back(self, delta: dict[str, Any]) -> None:
        for name, series in delta["counters"].items():
            for labels, v in series.items():
                self.local.inc(name, labels, v)
        for name, series in delta["hist"].items():
            target = self.local._hist.setdefault(name, {})
            for labels, values in series.items():
                cur = target.get(labels)
                if cur is None:
                    target[labels] = values
                else:
                    for i, v in enumerate(values):
                        cur[i] += v

    async def render(self) -> str:
        await self.flush()
        return await self.sink.render()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        await self.flush()

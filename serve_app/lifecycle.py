"""The request lifecycle: one record per request, the stage interface, and the chain that runs stages.

A leaf module: it imports nothing of the project, so stages (deployments/*) import it and the
spine composes them without a cycle.

- `RequestRecord` is created when a request arrives and filled as it goes: who sent it, where it
  went, every upstream attempt, the cache status, usage by token kind, the outcome, and the facts
  stages add through `record.fact(name, value)`. It is finished exactly once (`finish`), on every
  path: success, an error before the first byte, an error event mid-stream, a client that went
  away (499), a cache hit, a handle call. Finished records go to the sinks (metrics, storage).
- `Stage` is one step around the upstream call: `before` runs in chain order and may answer the
  request itself (a cache hit); `after` runs in reverse order on the way out, for the stages
  whose `before` ran and did not answer. A stream's `after` may wrap the reply's chunks.
- `Chain` holds the stages of one configured gateway; a stage with nothing configured is not in
  it. Where the order is decided: serve_app/chain.py.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

log = logging.getLogger("raygate.lifecycle")

# the record's cache status, from the cache's header values
CACHE_STATUS = {"HIT": "exact", "SEMANTIC_HIT": "semantic", "MISS": "miss", "REFRESH": "refresh",
                "BYPASS": "bypass"}


@dataclass(slots=True)
class Reply:
    body: bytes
    headers: dict[str, str]
    status: int = 200


@dataclass(slots=True)
class StreamReply:
    headers: dict[str, str]
    chunks: AsyncIterator[bytes]


def usage_counts(usage: Any) -> dict[str, int] | None:
    """Normalised token counts from an OpenAI usage object (every provider's usage arrives in it)."""
    if not isinstance(usage, dict):
        return None
    pdetails = usage.get("prompt_tokens_details")
    cdetails = usage.get("completion_tokens_details")
    pdetails = pdetails if isinstance(pdetails, dict) else {}
    cdetails = cdetails if isinstance(cdetails, dict) else {}
    out = {
        "input": usage.get("prompt_tokens"),
        "cached_input": pdetails.get("cached_tokens"),
        "cache_write": pdetails.get("cache_write_tokens"),
        "output": usage.get("completion_tokens"),
        "reasoning": cdetails.get("reasoning_tokens"),
    }
    return {k: v if isinstance(v, int) and not isinstance(v, bool) else 0 for k, v in out.items()}


class RequestRecord:
    """Everything known about one request. `to_dict()` is what sinks store."""

    __slots__ = (
        "request_id", "kind", "via", "headers", "received_at", "started", "first_byte_at", "done_at",
        "key_id", "client_ip", "metadata", "stream", "requested_model", "provider", "model", "route",
        "attempts", "cache", "usage", "status", "error_type", "error_code", "error_message",
        "latency_ms", "ttft_ms", "facts", "finished", "trace",
    )

    def __init__(self, request_id: str, kind: str = "chat", via: str = "http",
                 headers: dict[str, str] | None = None, client_ip: str | None = None) -> None:
        self.request_id = request_id
        self.kind = kind
        self.via = via
        self.headers = headers if headers is not None else {}  # lower-case names; never stored
        self.received_at = time.time()
        self.started = time.perf_counter()
        self.first_byte_at: float | None = None
        self.done_at: float | None = None
        self.key_id: str | None = None
        self.client_ip = client_ip
        self.metadata: dict[str, Any] = {}
        self.stream = False
        self.requested_model: str | None = None
        self.provider: str | None = None
        self.model: str | None = None
        self.route: str | None = None
        self.attempts: list[dict[str, Any]] = []  # filled by the executor, one entry per upstream call
        self.cache: str | None = None  # exact | semantic | miss | refresh | bypass; None: not in play
        self.usage: dict[str, int] | None = None
        self.status = 0
        self.error_type: str | None = None
        self.error_code: str | None = None
        self.error_message: str | None = None
        self.latency_ms: float | None = None
        self.ttft_ms: float | None = None
        self.facts: dict[str, Any] = {}
        self.finished = False
        self.trace: Any = None  # the request's live spans when tracing is on (never stored)

    def fact(self, name: str, value: Any) -> None:
        """A stage's own fact (a guardrail verdict, a cost, a rate-limit decision), stored as-is."""
        self.facts[name] = value

    def first_byte(self) -> None:
        if self.first_byte_at is None:
            self.first_byte_at = time.time()
            self.ttft_ms = round((time.perf_counter() - self.started) * 1000, 3)

    def close(self, status: int, error: Any = None) -> bool:
        """Set the outcome; False if the record was already finished (it finishes once)."""
        if self.finished:
            return False
        self.finished = True
        self.status = status
        if error is not None:
            self.error_type = getattr(error, "type", None) or type(error).__name__
            self.error_code = getattr(error, "code", None)
            self.error_message = getattr(error, "message", None) or str(error)
            if self.provider is None:
                self.provider = getattr(error, "provider", None)
        self.done_at = time.time()
        self.latency_ms = round((time.perf_counter() - self.started) * 1000, 3)
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id, "kind": self.kind, "via": self.via,
            "received_at": self.received_at, "first_byte_at": self.first_byte_at, "done_at": self.done_at,
            "key_id": self.key_id, "client_ip": self.client_ip, "metadata": self.metadata,
            "stream": self.stream, "requested_model": self.requested_model, "provider": self.provider,
            "model": self.model, "route": self.route, "attempts": self.attempts, "cache": self.cache,
            "usage": self.usage, "status": self.status, "error_type": self.error_type,
            "error_code": self.error_code, "error_message": self.error_message,
            "latency_ms": self.latency_ms, "ttft_ms": self.ttft_ms, "facts": self.facts,
        }


class Exchange:
    """One request on its way through the chain: the record plus the working state stages share."""

    __slots__ = ("record", "body", "kind", "stream", "route", "plan", "call", "cache_control",
                 "upstream", "state")

    def __init__(self, record: RequestRecord, body: dict[str, Any], kind: str, stream: bool) -> None:
        self.record = record
        self.body = body  # the OpenAI request, gateway fields removed
        self.kind = kind  # "chat" | "embeddings"
        self.stream = stream
        self.route: Any = None  # deployments.router.plan.RouteRequest
        self.plan: Any = None  # deployments.router.plan.Plan, set by the route stage
        self.call: Any = None  # deployments.providers.base.CallContext
        self.cache_control: Any = None  # the body's `cache` field
        self.upstream: Any = None  # the opened upstream stream (its `.usage` is read at the end)
        self.state: dict[str, Any] = {}  # a stage's notes from `before` to `after`


Answer = Reply | StreamReply


class Stage(abc.ABC):
    """A step around the upstream call. Plain Python, built from config by serve_app/chain.py."""

    name: ClassVar[str]

    @abc.abstractmethod
    async def before(self, ex: Exchange) -> Answer | None:
        """Runs before the upstream call, in chain order; an answer skips the call and later stages."""

    async def after(self, ex: Exchange, answer: Answer) -> Answer:
        """Runs after the upstream call, in reverse order; a stream's chunks may be wrapped here."""
        return answer


def overrides_after(stage: Stage) -> bool:
    return type(stage).after is not Stage.after


class Chain:
    """The configured stages around one upstream call.

    `observer` (deployments/observability/stage_timing.py), when set, is told when the chain starts
    (`begin(ex)`), after every stage phase (`stage(ex, name, phase, start_ns, error)`) and of the
    answer (`answered(ex, answer)`); None (metrics and tracing off) runs the untimed loop.
    """

    __slots__ = ("stages", "_after", "observer")

    def __init__(self, stages: list[Stage], observer: Any = None) -> None:
        self.stages = list(stages)
        self._after = [overrides_after(s) for s in self.stages]
        self.observer = observer

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    async def run(self, ex: Exchange, call: Callable[[Exchange], Awaitable[Answer]]) -> Answer:
        obs = self.observer
        if obs is not None:
            obs.begin(ex)
        ran = 0
        answer: Answer | None = None
        for stage in self.stages:
            step = stage.before(ex)
            answer = await (step if obs is None else _timed(obs, ex, stage.name, "before", step))
            if answer is not None:
                break
            ran += 1
        if answer is None:
            answer = await call(ex)
        after = self._after
        for i in range(ran - 1, -1, -1):
            if after[i]:
                stage = self.stages[i]
                step = stage.after(ex, answer)
                answer = await (step if obs is None else _timed(obs, ex, stage.name, "after", step))
        if obs is not None:
            obs.answered(ex, answer)
        return answer


async def _timed(obs: Any, ex: Exchange, name: str, phase: str, step: Awaitable[Any]) -> Any:
    """Await one stage phase and report its start and outcome to the chain's observer."""
    started = time.time_ns()
    try:
        result = await step
    except BaseException as exc:
        obs.stage(ex, name, phase, started, exc)
        raise
    obs.stage(ex, name, phase, started, None)
    return result


class Sink(Protocol):
    """Consumes finished records. `submit` is synchronous and cheap; any write happens later."""

    def submit(self, record: RequestRecord) -> None: ...


async def aclose(chunks: Any) -> None:
    """Close an async iterator now (not when it is collected), so its upstream is released at once."""
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


def start_background(loop_fn: Callable[[], Awaitable[None]]) -> asyncio.Task[None] | None:
    """A sink's flush loop as a task on the running loop; None outside one (its `flush` still works)."""
    try:
        return asyncio.get_running_loop().create_task(loop_fn())
    except RuntimeError:
        return None


def submit_all(sinks: list[Any], record: RequestRecord) -> None:
    for sink in sinks:
        try:
            sink.submit(record)
        except Exception:  # a broken sink must not fail the request; it is logged, every time
            log.exception("sink %s failed for request %s", type(sink).__name__, record.request_id)


__all__ = ["CACHE_STATUS", "Answer", "Chain", "Exchange", "Reply", "RequestRecord", "Sink", "Stage",
           "StreamReply", "aclose", "start_background", "submit_all", "usage_counts"]

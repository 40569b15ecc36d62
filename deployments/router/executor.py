"""Runs a Plan's attempts against providers, in the caller's replica (streams never cross a handle).

Plain requests (`plan.strategy is None`: one attempt, no breaker) take the short path: one call,
errors raised as they are. Strategy plans go through the attempt loop:

- each Attempt gets `1 + retry` tries; between tries on one target it waits an exponential
  backoff with jitter (`base * 2**(n-1)`, capped, times a random factor in [0.5, 1]) or the
  upstream's Retry-After when that is longer (honoured up to `retry_after_cap`);
- a failure retries/moves on when its status is in the attempt's `on_status_codes`, or, when
  that is unset, when its error class is retryable (429, 5xx, overload, timeout, connection,
  stream cut); anything else (400, 401, 404, 413, content filter ...) is returned at once;
- a per-attempt `timeout` bounds the call: passed to the provider, which enforces it on a whole
  call; for streams the executor also bounds the wait for the first chunk (time to first byte);
- an attempt whose circuit is open is skipped and listed as `circuit open`;
- streams: the first chunk is read before the stream is handed back, so a failure before the
  first byte reaches the client still falls back; later failures end the stream (the ingress
  sends one error event), are recorded against the target's breaker, and `idle_timeout` bounds
  the gap between chunks;
- when every attempt fails: one error with the last failure's status whose message lists each
  attempt (route, provider/model, status, error class, duration) and nothing else.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from deployments.providers.base import CallContext
from serve_app import errors as E
from serve_app.errors import GatewayError, UpstreamError

from .balance import TargetStats
from .circuit import CircuitBoard
from .plan import DEFAULT_BACKOFF, Attempt, Backoff, Plan

# errors that count against a target's circuit breaker (the target's fault, not the request's)
BREAKER_CLASSES = E.RETRYABLE_CLASSES | {E.AUTH}
CIRCUIT_OPEN = "circuit open"


@dataclass(slots=True)
class Outcome:
    """What the executor reports about the call that answered (or the last that failed)."""

    attempt: Attempt
    model: str
    attempts: int = 1
    tried: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Tried:
    attempt: Attempt
    model: str | None
    error: GatewayError | None  # None: skipped, circuit open
    seconds: float


def attempt_fact(attempt: Attempt, model: str | None, status: int | None, error_class: str | None,
                 seconds: float) -> dict[str, Any]:
    """One upstream call as the request record lists it (status None: skipped, circuit open)."""
    return {"provider": attempt.provider, "model": model, "route": attempt.route, "status": status,
            "error_class": error_class, "duration_ms": round(seconds * 1000, 3)}


def _noop(*_: Any) -> None:
    return None


def _timeout(provider: str, seconds: float, what: str = "answer") -> UpstreamError:
    return UpstreamError(504, f"provider {provider!r} did not {what} within {seconds:g}s", provider=provider,
                         code="upstream_timeout", error_class=E.TIMEOUT)


class Executor:
    def __init__(self, providers: dict[str, Any], metrics: Any = None, circuits: CircuitBoard | None = None,
                 stats: TargetStats | None = None, *, sleep: Callable[[float], Any] = asyncio.sleep,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.providers = providers
        self.circuits = circuits if circuits is not None else CircuitBoard()
        self.stats = stats if stats is not None else TargetStats()
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.clock = clock
        local = getattr(metrics, "local", None)
        self._inc = local.inc if local is not None else _noop
        if local is not None and self.circuits.on_change is None:
            self.circuits.on_change = lambda key, state: local.inc("raygate_circuit_state_changes_total",
                                                                   (key, state))

    def _prepare(self, attempt: Attempt, body: dict[str, Any], base: CallContext) -> tuple[Any, dict[str, Any], CallContext]:
        provider = self.providers[attempt.provider]
        model = provider.default_model(attempt.model)
        payload = body if attempt.override_params is None else {**body, **attempt.override_params}
        ctx = CallContext(attempt.provider, model, base.request_id, base.include_usage, base.created,
                          base.client_headers, base.metadata)
        return provider, payload, ctx

    # -- plain requests: one attempt, as cheap as it gets -----------------------------------------
    def _single(self, plan: Plan, body: dict[str, Any], base: CallContext) -> tuple[Any, dict[str, Any], CallContext, Attempt]:
        attempt = plan.attempts[0]  # a plan without a strategy is one target
        return (*self._prepare(attempt, body, base), attempt)

    async def chat(self, plan: Plan, body: dict[str, Any], base: CallContext,
                   trail: list[dict[str, Any]] | None = None) -> tuple[bytes, Outcome]:
        if plan.strategy is not None:
            return await self._run(plan, body, base, "chat", trail)
        provider, payload, ctx, attempt = self._single(plan, body, base)
        return await self._one(provider.chat, payload, ctx, attempt, trail), Outcome(attempt, ctx.model)

    async def chat_stream(self, plan: Plan, body: dict[str, Any], base: CallContext,
                          trail: list[dict[str, Any]] | None = None) -> tuple[Any, Outcome]:
        if plan.strategy is not None:
            return await self._run(plan, body, base, "stream", trail)
        provider, payload, ctx, attempt = self._single(plan, body, base)
        stream = await self._one(provider.open_chat_stream, payload, ctx, attempt, trail)
        return stream, Outcome(attempt, ctx.model)

    async def embeddings(self, plan: Plan, body: dict[str, Any], base: CallContext,
                         trail: list[dict[str, Any]] | None = None) -> tuple[bytes, Outcome]:
        if plan.strategy is not None:
            return await self._run(plan, body, base, "embeddings", trail)
        provider, payload, ctx, attempt = self._single(plan, body, base)
        return await self._one(provider.embeddings, payload, ctx, attempt, trail), Outcome(attempt, ctx.model)

    async def _one(self, fn: Any, payload: dict[str, Any], ctx: CallContext, attempt: Attempt,
                   trail: list[dict[str, Any]] | None) -> Any:
        if trail is None:
            return await fn(payload, ctx, attempt.timeout)
        started = self.clock()
        try:
            result = await fn(payload, ctx, attempt.timeout)
        except GatewayError as err:
            trail.append(attempt_fact(attempt, ctx.model, err.status, err.error_class, self.clock() - started))
            raise
        trail.append(attempt_fact(attempt, ctx.model, 200, None, self.clock() - started))
        return result

    # -- strategies: retries, backoff, fallback, breakers ------------------------------------------------
    async def _run(self, plan: Plan, body: dict[str, Any], base: CallContext, kind: str,
                   trail: list[dict[str, Any]] | None = None) -> tuple[Any, Outcome]:
        circuits, stats, inc, clock = self.circuits, self.stats, self._inc, self.clock
        if not circuits.started:
            await circuits.begin()
        tried: list[Tried] = []
        calls = 0
        last: GatewayError | None = None
        attempts = plan.attempts
        final = len(attempts) - 1
        for index, attempt in enumerate(attempts):
            policy = attempt.circuit
            key = attempt.key
            model = attempt.model or plan.model
            for n in range(attempt.retry + 1):
                if n:
                    inc("raygate_retries_total", (attempt.provider,))
                    delay = self.backoff(n, last, attempt.backoff)
                    if delay > 0:
                        await self.sleep(delay)
                if policy is not None and not circuits.allow(key, policy):
                    tried.append(Tried(attempt, model, None, 0.0))
                    if trail is not None:
                        trail.append(attempt_fact(attempt, model, None, CIRCUIT_OPEN, 0.0))
                    inc("raygate_upstream_attempts_total", (attempt.provider, "circuit_open"))
                    break
                provider = self.providers[attempt.provider]
                payload = {**body, **attempt.override_params} if attempt.override_params else dict(body)
                ctx = CallContext(attempt.provider, provider.default_model(model), base.request_id,
                                  base.include_usage, base.created, base.client_headers, base.metadata)
                calls += 1
                started = clock()
                stats.begin(key)
                streaming = False
                try:
                    if kind == "stream":
                        result = await self._open_stream(provider, payload, ctx, attempt)
                        streaming = True
                    elif kind == "chat":
                        result = await self._call(provider.chat, payload, ctx, attempt.timeout)
                    else:
                        result = await self._call(provider.embeddings, payload, ctx, attempt.timeout)
                except GatewayError as err:
                    seconds = clock() - started
                    stats.observe(key, seconds)
                    tried.append(Tried(attempt, ctx.model, err, seconds))
                    if trail is not None:
                        trail.append(attempt_fact(attempt, ctx.model, err.status, err.error_class, seconds))
                    inc("raygate_upstream_attempts_total", (attempt.provider, err.error_class or "error"))
                    if policy is not None and err.error_class in BREAKER_CLASSES:
                        circuits.record(key, False, policy)
                    last = err
                    if not self.moves_on(err, attempt):
                        raise self._annotate(err, calls, attempt) from None
                    continue
                finally:
                    if not streaming:
                        stats.end(key)
                seconds = clock() - started
                stats.observe(key, seconds)
                if trail is not None:
                    trail.append(attempt_fact(attempt, ctx.model, 200, None, seconds))
                if policy is not None:
                    circuits.record(key, True, policy)
                inc("raygate_upstream_attempts_total", (attempt.provider, "success"))
                outcome = Outcome(attempt, ctx.model, calls, [t.attempt.route for t in tried])
                if kind == "stream":
                    stream, first = result
                    return RoutedStream(stream, first, attempt, self), outcome
                return result, outcome
            if index < final:
                inc("raygate_fallbacks_total", (attempt.provider,))
        raise self._exhausted(plan, tried, last, calls)

    @staticmethod
    async def _call(fn: Any, payload: dict[str, Any], ctx: CallContext, timeout: float | None) -> Any:
        # A provider enforces `timeout` on a whole call itself (the transport's deadline; the
        # provider contract), so no second timer here: an asyncio.timeout per attempt costs ~10 us.
        return await fn(payload, ctx, timeout)

    async def _open_stream(self, provider: Any, payload: dict[str, Any], ctx: CallContext,
                           attempt: Attempt) -> tuple[Any, tuple[AsyncIterator[bytes], bytes]]:
        """Open the stream and read its first chunk (within `timeout`): until then, fallback is possible."""
        ttfb = attempt.timeout

        async def first() -> tuple[Any, tuple[AsyncIterator[bytes], bytes]]:
            stream = await provider.open_chat_stream(payload, ctx, ttfb)
            it = stream.__aiter__()
            try:
                chunk = await it.__anext__()
            except StopAsyncIteration:
                chunk = b""
            except BaseException:
                stream.close()
                raise
            return stream, (it, chunk)

        if ttfb is None:
            return await first()
        try:
            async with asyncio.timeout(ttfb):
                return await first()
        except TimeoutError:
            raise _timeout(ctx.provider, ttfb, "send its first byte") from None

    # -- decisions ---------------------------------------------------------------------------------------
    @staticmethod
    def moves_on(err: GatewayError, attempt: Attempt) -> bool:
        """Retry / fall back after `err`? `on_status_codes` replaces the retryable-class default."""
        codes = attempt.on_status_codes
        if codes is not None:
            return err.status in codes
        return err.retryable

    def backoff(self, n: int, err: GatewayError | None, policy: Backoff | None) -> float:
        """Seconds to wait before retry `n` (1-based) on the same target."""
        b = policy or DEFAULT_BACKOFF
        delay = min(b.cap, b.base * (2 ** (n - 1))) * (0.5 + 0.5 * self.rng.random())
        retry_after = err.retry_after if err is not None else None
        if retry_after is not None and b.retry_after_cap > 0:
            delay = max(delay, min(retry_after, b.retry_after_cap))
        return delay

    @staticmethod
    def _annotate(err: GatewayError, calls: int, attempt: Attempt) -> GatewayError:
        err.headers = {**err.headers, "x-raygate-attempts": str(calls), "x-raygate-route": attempt.route}
        return err

    def _exhausted(self, plan: Plan, tried: list[Tried], last: GatewayError | None, calls: int) -> GatewayError:
        skipped = sum(1 for t in tried if t.error is None)
        if last is not None and calls == 1 and not skipped:
            return self._annotate(last, calls, tried[-1].attempt)
        parts = []
        for t in tried:
            a = t.attempt
            label = f"{a.route} ({a.provider}{'/' + t.model if t.model else ''})"
            if t.error is None:
                parts.append(f"{label}: {CIRCUIT_OPEN}")
            else:
                parts.append(f"{label}: {t.error.status} {t.error.error_class or 'error'} after {t.seconds:.2f}s")
        counts = f"{calls} attempt{'s' if calls != 1 else ''}" + (f", {skipped} skipped" if skipped else "")
        message = f"every target of {plan.strategy!r} failed ({counts}): " + "; ".join(parts)
        provider = tried[-1].attempt.provider if tried else None
        if last is None:
            waits = [w for w in (self.circuits.retry_in(t.attempt.key) for t in tried) if w is not None]
            err = UpstreamError(503, message, provider=provider, code="circuit_open", error_class=E.OVERLOADED,
                                retry_after=min(waits) if waits else None)
        else:
            err = UpstreamError(last.status, message, provider=provider, code=last.code,
                                error_class=last.error_class, retry_after=last.retry_after)
        return self._annotate(err, calls, tried[-1].attempt)


class RoutedStream:
    """A strategy's opened stream: yields the chunk read while opening, then the rest.

    Failures after the first byte count against the target's breaker; `idle_timeout` bounds the
    wait for each chunk. The ingress turns the raised error into one SSE error event.
    """

    __slots__ = ("_stream", "_it", "_first", "_attempt", "_executor")

    def __init__(self, stream: Any, first: tuple[AsyncIterator[bytes], bytes], attempt: Attempt,
                 executor: Executor) -> None:
        self._stream = stream
        self._it, self._first = first
        self._attempt = attempt
        self._executor = executor

    @property
    def usage(self) -> dict[str, Any] | None:
        return getattr(self._stream, "usage", None)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        it, attempt = self._it, self._attempt
        idle = attempt.idle_timeout
        ex = self._executor
        try:
            if self._first:
                yield self._first
            while True:
                try:
                    if idle is None:
                        chunk = await it.__anext__()
                    else:
                        async with asyncio.timeout(idle):
                            chunk = await it.__anext__()
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise _timeout(attempt.provider, idle or 0, "send the next chunk") from None
                yield chunk
        except GatewayError as err:
            ex._inc("raygate_upstream_attempts_total", (attempt.provider, err.error_class or "error"))
            if attempt.circuit is not None and err.error_class in BREAKER_CLASSES:
                ex.circuits.record(attempt.key, False, attempt.circuit)
            raise
        finally:
            ex.stats.end(attempt.key)
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                await aclose()

    def close(self) -> None:
        self._stream.close()


__all__ = ["CIRCUIT_OPEN", "Executor", "Outcome", "RoutedStream", "attempt_fact"]

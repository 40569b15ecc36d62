"""The attempt loop with fake providers and a fake sleep: retries, backoff, Retry-After,
on_status_codes, timeouts, circuit skips, stream fallback, and the exhausted-chain error."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from deployments.providers.base import CallContext, stream_cut, upstream_error
from deployments.router.circuit import CircuitBoard, CircuitPolicy
from deployments.router.executor import Executor, RoutedStream
from deployments.router.plan import Attempt, Backoff, Plan
from serve_app.errors import GatewayError
from serve_app.metrics import InProcessSink, Metrics

FAST = Backoff(base=0.5, cap=8.0, retry_after_cap=30.0)


def err(status: int, retry_after: float | None = None, message: str = "boom") -> GatewayError:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
    body = ('{"error": {"message": "%s", "type": "x", "code": null}}' % message).encode()
    return upstream_error(status, headers, body, "fake")


class FakeStream:
    def __init__(self, chunks: list[Any]) -> None:
        self.chunks = chunks
        self.closed = False
        self.usage = {"total_tokens": 3}

    async def __aiter__(self):
        for c in self.chunks:
            if isinstance(c, BaseException):
                raise c
            if isinstance(c, tuple):
                await asyncio.sleep(c[1])
                continue
            yield c

    def close(self) -> None:
        self.closed = True


class FakeProvider:
    """Steps: "ok", an exception to raise, ("sleep", s) before answering, or a list of stream chunks."""

    def __init__(self, name: str, *steps: Any) -> None:
        self.name = name
        self.steps = list(steps)
        self.calls: list[tuple[str, float | None, dict[str, Any]]] = []
        self.streams: list[FakeStream] = []

    def default_model(self, requested: str | None) -> str:
        return requested or f"{self.name}-default"

    async def _step(self, body: dict[str, Any], ctx: CallContext, timeout: float | None) -> Any:
        self.calls.append((ctx.model, timeout, body))
        step = self.steps.pop(0) if self.steps else "ok"
        if isinstance(step, tuple) and step[0] == "sleep":
            await asyncio.sleep(step[1])
            step = "ok"
        if isinstance(step, BaseException):
            raise step
        return step

    async def chat(self, body: dict[str, Any], ctx: CallContext, timeout: float | None = None) -> bytes:
        # like a real provider, it enforces the timeout of a whole call itself
        try:
            await asyncio.wait_for(self._step(body, ctx, timeout), timeout)
        except TimeoutError:
            raise GatewayError(504, f"provider {self.name!r} did not answer within {timeout}s",
                               code="upstream_timeout", error_class="timeout") from None
        return f"answer from {self.name}".encode()

    async def embeddings(self, body: dict[str, Any], ctx: CallContext, timeout: float | None = None) -> bytes:
        await self._step(body, ctx, timeout)
        return f"vectors from {self.name}".encode()

    async def open_chat_stream(self, body: dict[str, Any], ctx: CallContext, timeout: float | None = None) -> Any:
        step = await self._step(body, ctx, timeout)
        chunks = step if isinstance(step, list) else [b"data: 1\n\n", b"data: [DONE]\n\n"]
        stream = FakeStream(chunks)
        self.streams.append(stream)
        return stream


class Sleeps(list):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


POLICY = CircuitPolicy(failures=3, window=30, cooldown=30)


def attempt(provider: str, route: str | None = None, **kw: Any) -> Attempt:
    kw.setdefault("backoff", FAST)
    kw.setdefault("circuit", POLICY)
    return Attempt(provider, kw.pop("model", None), route or f"s.targets[{provider}]", key=provider, **kw)


def make(*providers: FakeProvider, seed: int = 0) -> tuple[Executor, Sleeps, Metrics]:
    sleeps = Sleeps()
    metrics = Metrics(InProcessSink())
    ex = Executor({p.name: p for p in providers}, metrics, sleep=sleeps, rng=random.Random(seed))
    return ex, sleeps, metrics


def counters(metrics: Metrics, name: str) -> dict[tuple[str, ...], float]:
    return dict(metrics.local._counters.get(name, {}))


BASE = CallContext("", "", "req-1")
BODY = {"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}


def plan(*attempts: Attempt) -> Plan:
    return Plan(list(attempts), "s", None, "gpt-4")


async def test_retries_then_fallback_counts() -> None:
    a = FakeProvider("a", err(503), err(503), err(503))
    b = FakeProvider("b")
    ex, sleeps, metrics = make(a, b)
    result, outcome = await ex.chat(plan(attempt("a", retry=2), attempt("b", model="m-b")), dict(BODY), BASE)
    assert result == b"answer from b"
    assert len(a.calls) == 3 and len(b.calls) == 1
    assert outcome.attempts == 4 and outcome.attempt.provider == "b" and outcome.model == "m-b"
    assert outcome.tried == ["s.targets[a]"] * 3
    assert len(sleeps) == 2  # between the three tries on `a`; none before moving on to `b`
    assert counters(metrics, "raygate_retries_total") == {("a",): 2}
    assert counters(metrics, "raygate_fallbacks_total") == {("a",): 1}
    assert counters(metrics, "raygate_upstream_attempts_total") == {("a", "overloaded"): 3, ("b", "success"): 1}
    assert a.calls[0][0] == "gpt-4"  # no model on the target: the request's model


async def test_default_retry_is_zero_so_fallback_moves_on_at_once() -> None:
    a, b = FakeProvider("a", err(500)), FakeProvider("b")
    ex, sleeps, _ = make(a, b)
    _, outcome = await ex.chat(plan(attempt("a"), attempt("b")), dict(BODY), BASE)
    assert outcome.attempts == 2 and sleeps == []


async def test_exponential_backoff_with_jitter_and_cap() -> None:
    a = FakeProvider("a", *[err(502)] * 7)
    ex, sleeps, _ = make(a, FakeProvider("b"), seed=42)
    await ex.chat(plan(attempt("a", retry=6, circuit=None), attempt("b")), dict(BODY), BASE)
    assert len(sleeps) == 6
    for n, delay in enumerate(sleeps, start=1):
        full = min(8.0, 0.5 * 2 ** (n - 1))
        assert full / 2 <= delay <= full, (n, delay)
    assert sleeps[-1] <= 8.0 and sleeps[-2] <= 8.0 and sleeps[-1] >= 4.0
    assert len(set(sleeps)) == len(sleeps)  # jittered


def test_backoff_function() -> None:
    ex = Executor({}, rng=random.Random(1))
    assert ex.backoff(1, None, Backoff(0.5, 8, 30)) <= 0.5
    assert 4 <= ex.backoff(20, None, Backoff(0.5, 8, 30)) <= 8
    assert ex.backoff(1, None, Backoff(0, 8, 30)) == 0
    assert ex.backoff(1, err(429, retry_after=3), Backoff(0.5, 8, 30)) == 3
    assert ex.backoff(1, err(429, retry_after=300), Backoff(0.5, 8, 30)) == 30
    assert ex.backoff(1, err(429, retry_after=3), Backoff(0.5, 8, 0)) <= 0.5  # cap 0: ignored
    assert ex.backoff(1, err(429, retry_after=0.01), Backoff(0.5, 8, 30)) >= 0.25  # backoff if longer


async def test_retry_after_is_honoured_up_to_the_cap() -> None:
    a = FakeProvider("a", err(429, retry_after=3), err(429, retry_after=120), "ok")
    ex, sleeps, _ = make(a)
    _, outcome = await ex.chat(plan(attempt("a", retry=2)), dict(BODY), BASE)
    assert sleeps == [3.0, 30.0]
    assert outcome.attempts == 3


async def test_non_retryable_errors_stop_the_chain() -> None:
    for failure in (err(400), err(404), err(413), err(401), err(400, message="content_filter triggered")):
        a, b = FakeProvider("a", failure), FakeProvider("b")
        ex, sleeps, _ = make(a, b)
        with pytest.raises(GatewayError) as info:
            await ex.chat(plan(attempt("a", retry=3), attempt("b")), dict(BODY), BASE)
        assert info.value is failure
        assert b.calls == [] and len(a.calls) == 1 and sleeps == []
        assert info.value.headers["x-raygate-attempts"] == "1"


async def test_on_status_codes_replaces_the_default_set() -> None:
    # only 429 moves on: a 503 is returned as is
    a, b = FakeProvider("a", err(503)), FakeProvider("b")
    ex, _, _ = make(a, b)
    with pytest.raises(GatewayError) as info:
        await ex.chat(plan(attempt("a", on_status_codes=frozenset({429})), attempt("b")), dict(BODY), BASE)
    assert info.value.status == 503 and b.calls == []
    # listing 400 moves on after a context-length error
    ctx_err = err(400, message="This model's maximum context length is 8192 tokens")
    assert ctx_err.error_class == "context_length_exceeded"
    a, b = FakeProvider("a", ctx_err), FakeProvider("b")
    ex, _, _ = make(a, b)
    _, outcome = await ex.chat(plan(attempt("a", on_status_codes=frozenset({400})), attempt("b")), dict(BODY), BASE)
    assert outcome.attempt.provider == "b"


async def test_exhausted_error_lists_every_attempt_without_secrets() -> None:
    a = FakeProvider("a", err(503, message="key sk-live-SECRET rejected"), err(503))
    b = FakeProvider("b", GatewayError(504, "provider 'b' did not answer", code="upstream_timeout",
                                       error_class="timeout"))
    ex, _, _ = make(a, b)
    with pytest.raises(GatewayError) as info:
        await ex.chat(plan(attempt("a", retry=1, route="prod.targets[0]"),
                           attempt("b", model="claude", route="prod.targets[1]")), dict(BODY), BASE)
    e = info.value
    assert e.status == 504 and e.code == "upstream_timeout" and e.type == "timeout_error"
    assert e.message.startswith("every target of 's' failed (3 attempts): ")
    parts = e.message.split(": ", 1)[1].split("; ")
    assert parts[0].startswith("prod.targets[0] (a/gpt-4): 503 overloaded after ")
    assert parts[1].startswith("prod.targets[0] (a/gpt-4): 503 overloaded after ")
    assert parts[2].startswith("prod.targets[1] (b/claude): 504 timeout after ")
    assert parts[2].endswith("s")
    assert "SECRET" not in e.message and "boom" not in e.message
    assert e.headers["x-raygate-attempts"] == "3"


async def test_circuit_open_target_is_skipped_and_listed() -> None:
    a, b = FakeProvider("a", *[err(503)] * 3), FakeProvider("b")
    ex, _, metrics = make(a, b)
    for _ in range(3):
        await ex.chat(plan(attempt("a"), attempt("b")), dict(BODY), BASE)
    assert ex.circuits.state("a") == "open"
    _, outcome = await ex.chat(plan(attempt("a"), attempt("b")), dict(BODY), BASE)
    assert len(a.calls) == 3  # skipped
    assert outcome.attempts == 1 and outcome.tried == ["s.targets[a]"]
    assert counters(metrics, "raygate_circuit_state_changes_total") == {("a", "open"): 1}
    # everything open: 503 circuit_open with a Retry-After, each target listed
    for _ in range(3):
        ex.circuits.record("b", False, POLICY)
    with pytest.raises(GatewayError) as info:
        await ex.chat(plan(attempt("a"), attempt("b")), dict(BODY), BASE)
    e = info.value
    assert e.status == 503 and e.code == "circuit_open"
    assert "(0 attempts, 2 skipped)" in e.message
    assert "s.targets[a] (a/gpt-4): circuit open; s.targets[b] (b/gpt-4): circuit open" in e.message
    assert 0 < e.retry_after <= 30 and "retry-after" in e.response_headers()


async def test_breaker_counts_target_faults_only() -> None:
    a = FakeProvider("a", err(400), err(400), err(400), err(400))
    ex, _, _ = make(a)
    for _ in range(4):
        with pytest.raises(GatewayError):
            await ex.chat(plan(attempt("a")), dict(BODY), BASE)
    assert ex.circuits.state("a") == "closed"


async def test_half_open_probe_recovers() -> None:
    clock = [0.0]
    a = FakeProvider("a", *[err(503)] * 3)
    ex, _, _ = make(a, FakeProvider("b"))
    ex.circuits.clock = lambda: clock[0]
    for _ in range(3):
        await ex.chat(plan(attempt("a"), attempt("b")), dict(BODY), BASE)
    clock[0] = 31.0
    _, outcome = await ex.chat(plan(attempt("a"), attempt("b")), dict(BODY), BASE)
    assert outcome.attempt.provider == "a" and ex.circuits.state("a") == "closed"


async def test_per_attempt_timeout_moves_on() -> None:
    a, b = FakeProvider("a", ("sleep", 5.0)), FakeProvider("b")
    ex, _, _ = make(a, b)
    t0 = time.perf_counter()
    _, outcome = await ex.chat(plan(attempt("a", timeout=0.05), attempt("b")), dict(BODY), BASE)
    assert time.perf_counter() - t0 < 1.0
    assert outcome.attempt.provider == "b"
    assert a.calls[0][1] == 0.05  # the provider is told the timeout too


async def test_override_params_and_body_isolation() -> None:
    a, b = FakeProvider("a", err(503)), FakeProvider("b")
    ex, _, _ = make(a, b)
    body = dict(BODY)
    await ex.chat(plan(attempt("a", override_params={"temperature": 0}), attempt("b")), body, BASE)
    assert a.calls[0][2]["temperature"] == 0 and "temperature" not in b.calls[0][2]
    assert body == BODY and a.calls[0][2] is not body


async def test_plain_plan_is_one_call_without_breaker() -> None:
    a = FakeProvider("a", err(503))
    ex, sleeps, metrics = make(a)
    with pytest.raises(GatewayError):
        await ex.chat(Plan([Attempt("a", "m", "default_provider")]), dict(BODY), BASE)
    assert len(a.calls) == 1 and sleeps == [] and ex.circuits.breakers == {}
    assert counters(metrics, "raygate_upstream_attempts_total") == {}


async def test_embeddings_follow_the_strategy() -> None:
    a, b = FakeProvider("a", err(503)), FakeProvider("b")
    ex, _, _ = make(a, b)
    result, outcome = await ex.embeddings(plan(attempt("a"), attempt("b")), {"input": "x"}, BASE)
    assert result == b"vectors from b" and outcome.attempts == 2


# --- streams -------------------------------------------------------------------------------------

async def collect(stream: Any) -> list[bytes]:
    return [c async for c in stream]


async def test_stream_falls_back_before_the_first_byte() -> None:
    cut_early = [stream_cut("a", "reset")]  # ends before any chunk
    a = FakeProvider("a", err(503), cut_early, [("sleep", 5.0), b"late"])
    b = FakeProvider("b")
    ex, _, _ = make(a, b)
    stream, outcome = await ex.chat_stream(plan(attempt("a", retry=2, timeout=0.05), attempt("b")), dict(BODY), BASE)
    assert outcome.attempt.provider == "b" and outcome.attempts == 4
    assert isinstance(stream, RoutedStream)
    assert await collect(stream) == [b"data: 1\n\n", b"data: [DONE]\n\n"]
    assert a.streams[-1].closed  # the timed-out stream was closed
    assert ex.stats.inflight == {"a": 0, "b": 0}


async def test_stream_failure_after_first_byte_is_raised_and_recorded() -> None:
    a = FakeProvider("a", [b"data: 1\n\n", b"data: 2\n\n", stream_cut("a", "reset")])
    b = FakeProvider("b")
    ex, _, metrics = make(a, b)
    stream, outcome = await ex.chat_stream(plan(attempt("a"), attempt("b")), dict(BODY), BASE)
    assert outcome.attempt.provider == "a"
    got = []
    with pytest.raises(GatewayError) as info:
        async for chunk in stream:
            got.append(chunk)
    assert got == [b"data: 1\n\n", b"data: 2\n\n"]
    assert info.value.error_class == "stream_cut"
    assert b.calls == []  # no fallback once bytes went out
    assert ex.circuits.breakers["a"].failures  # counted against the breaker
    assert counters(metrics, "raygate_upstream_attempts_total")[("a", "stream_cut")] == 1
    assert ex.stats.inflight["a"] == 0


async def test_stream_idle_timeout() -> None:
    a = FakeProvider("a", [b"data: 1\n\n", ("sleep", 5.0), b"data: 2\n\n"])
    ex, _, _ = make(a)
    stream, _ = await ex.chat_stream(plan(attempt("a", idle_timeout=0.05)), dict(BODY), BASE)
    t0 = time.perf_counter()
    with pytest.raises(GatewayError) as info:
        await collect(stream)
    assert info.value.status == 504 and "next chunk" in info.value.message
    assert time.perf_counter() - t0 < 1.0


async def test_stream_all_fail_before_first_byte() -> None:
    a = FakeProvider("a", err(429, retry_after=1))
    b = FakeProvider("b", err(503))
    ex, sleeps, _ = make(a, b)
    with pytest.raises(GatewayError) as info:
        await ex.chat_stream(plan(attempt("a"), attempt("b")), dict(BODY), BASE)
    assert info.value.status == 503 and "(2 attempts)" in info.value.message


async def test_inflight_counts_streams_until_they_end() -> None:
    a = FakeProvider("a")
    ex, _, _ = make(a)
    stream, _ = await ex.chat_stream(plan(attempt("a")), dict(BODY), BASE)
    assert ex.stats.inflight["a"] == 1
    await collect(stream)
    assert ex.stats.inflight["a"] == 0
    assert stream.usage == {"total_tokens": 3}


def test_shared_board_from_router() -> None:
    board = CircuitBoard()
    ex = Executor({}, Metrics(InProcessSink()), board)
    assert ex.circuits is board and board.on_change is not None


async def test_retries_stop_when_the_breaker_opens_mid_way() -> None:
    a = FakeProvider("a", *[err(502)] * 7)
    ex, sleeps, _ = make(a, FakeProvider("b"))
    _, outcome = await ex.chat(plan(attempt("a", retry=6), attempt("b")), dict(BODY), BASE)
    assert len(a.calls) == 3  # the third failure opened the circuit (failures=3)
    assert outcome.attempt.provider == "b" and outcome.attempts == 4

"""Routing and reliability over HTTP with the official openai SDK, against the in-process gateway
and a local upstream that fails on command (tests/support/mockservers/faulty_upstream.py).

Each test gets its own targets on the shared faulty upstream (named after the test) and its own
gateway, so scripts, logs and circuit breakers never leak between tests.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.mockservers.faulty_upstream import FaultyUpstream

pytestmark = pytest.mark.timeout(60)

MSG = [{"role": "user", "content": "hello"}]
SECRET = "sk-upstream-SECRET-123"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultyUpstream]:
    with FaultyUpstream() as up:
        yield up


@pytest.fixture
def names(request: pytest.FixtureRequest) -> Any:
    """Unique upstream target names for this test: names("azure") -> "<test>-azure"."""
    prefix = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[-40:]
    return lambda role: f"{prefix}-{role}"


def providers(upstream: FaultyUpstream, names: Any, *roles: str, **extra: Any) -> dict[str, Any]:
    return {role: {"type": "openai", "base_url": upstream.url(names(role)), "api_key": SECRET, **extra}
            for role in roles}


SEED_STRATEGIES = {
    "gpt4-pool": {"type": "load_balance", "providers": [{"provider": "openai-primary", "weight": 1},
                                                        {"provider": "azure-gpt4", "weight": 1}]},
    "production-fallback": {"type": "fallback", "targets": [
        {"provider": "azure-gpt4", "timeout": 10, "retry": 2},
        {"provider": "anthropic-primary", "model": "claude-sonnet-4", "timeout": 15}]},
    "smart-router": {"type": "conditional", "rules": [
        {"condition": "request.messages[0].content.length > 4000",
         "target": {"provider": "anthropic-primary", "model": "claude-sonnet-4"}},
        {"condition": "request.user == 'code-assistant'", "target": {"provider": "openai-primary", "model": "gpt-4o"}},
        {"condition": "default", "target": {"provider": "azure-gpt4", "model": "gpt-4o-mini"}}]},
}
SEED_ROLES = ("openai-primary", "azure-gpt4", "anthropic-primary")


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=20)


def chat(c: openai.OpenAI, config: Any = None, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    extra_body = {"config": config} if config is not None else None
    return c.chat.completions.with_raw_response.create(model=kw.pop("model", "gpt-4"), messages=kw.pop("messages", MSG),
                                                       extra_body=extra_body, extra_headers=headers, **kw)


def metrics(url: str) -> str:
    return httpx.get(url.removesuffix("/v1") + "/metrics").text


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


# --- the seed examples, as written -----------------------------------------------------------------

def test_seed_load_balance_spreads_over_both(gateway: Any, upstream: FaultyUpstream, names: Any) -> None:
    url = gateway({"providers": providers(upstream, names, *SEED_ROLES), "strategies": SEED_STRATEGIES})
    c = client(url)
    routes = Counter()
    for _ in range(40):
        raw = chat(c, "gpt4-pool")
        routes[(raw.headers["x-raygate-route"], raw.headers["x-raygate-provider"])] += 1
        assert raw.headers["x-raygate-attempts"] == "1"
        assert raw.parse().model == "gpt-4"
    assert set(routes) == {("gpt4-pool.providers[0]", "openai-primary"), ("gpt4-pool.providers[1]", "azure-gpt4")}
    assert min(routes.values()) >= 8
    assert len(upstream.calls(names("openai-primary"))) + len(upstream.calls(names("azure-gpt4"))) == 40


def test_seed_fallback_retries_then_moves_on(gateway: Any, upstream: FaultyUpstream, names: Any) -> None:
    upstream.script(names("azure-gpt4"), default="status:503")
    url = gateway({"providers": providers(upstream, names, *SEED_ROLES), "strategies": SEED_STRATEGIES})
    raw = chat(client(url), "production-fallback")
    completion = raw.parse()
    assert completion.choices[0].message.content.startswith(names("anthropic-primary"))
    assert completion.model == "claude-sonnet-4"
    assert raw.headers["x-raygate-provider"] == "anthropic-primary"
    assert raw.headers["x-raygate-model"] == "claude-sonnet-4"
    assert raw.headers["x-raygate-route"] == "production-fallback.targets[1]"
    assert raw.headers["x-raygate-attempts"] == "4"  # 1 + retry 2 on azure, then anthropic
    azure = upstream.calls(names("azure-gpt4"))
    assert len(azure) == 3 and len(upstream.calls(names("anthropic-primary"))) == 1
    # default backoff: base 0.5 s, jittered into [0.5, 1] of the full value: >= 0.25 s, then >= 0.5 s
    gaps = [b.t - a.t for a, b in zip(azure, azure[1:])]
    assert gaps[0] >= 0.24 and gaps[1] >= 0.49, gaps
    assert gaps[0] <= 1.5 and gaps[1] <= 2.5, gaps  # loose: a busy 2-core box


def test_seed_conditional_routes_by_rule(gateway: Any, upstream: FaultyUpstream, names: Any) -> None:
    url = gateway({"providers": providers(upstream, names, *SEED_ROLES), "strategies": SEED_STRATEGIES})
    c = client(url)
    long = chat(c, "smart-router", messages=[{"role": "user", "content": "x" * 4001}], user="code-assistant")
    assert (long.headers["x-raygate-provider"], long.headers["x-raygate-model"]) == ("anthropic-primary",
                                                                                      "claude-sonnet-4")
    assert long.headers["x-raygate-route"] == "smart-router.rules[0].target"
    code = chat(c, "smart-router", user="code-assistant")
    assert (code.headers["x-raygate-provider"], code.parse().model) == ("openai-primary", "gpt-4o")
    other = chat(c, "smart-router", user="someone")
    assert (other.headers["x-raygate-provider"], other.parse().model) == ("azure-gpt4", "gpt-4o-mini")
    assert other.headers["x-raygate-route"] == "smart-router.rules[2].target"
    # the header picks the strategy too
    via_header = chat(c, headers={"x-raygate-config": "smart-router"}, user="code-assistant")
    assert via_header.headers["x-raygate-model"] == "gpt-4o"
    assert upstream.calls(names("openai-primary"))[0].model == "gpt-4o"


# --- failure handling ---------------------------------------------------------------------------------

FAST = {"base": 0.05, "cap": 0.2, "retry_after_cap": 1.0}


def test_timeout_moves_on_quickly(gateway: Any, upstream: FaultyUpstream, names: Any) -> None:
    upstream.script(names("slow"), default="ok:3")
    url = gateway({"providers": providers(upstream, names, "slow", "fast"), "strategies": {"chain": {
        "type": "fallback", "targets": [{"provider": "slow", "timeout": 0.2}, {"provider": "fast"}]}}})
    t0 = time.perf_counter()
    raw = chat(client(url), "chain")
    assert time.perf_counter() - t0 < 1.5
    assert raw.headers["x-raygate-provider"] == "fast" and raw.headers["x-raygate-attempts"] == "2"


def test_retries_and_backoff_counts(gateway: Any, upstream: FaultyUpstream, names: Any) -> None:
    upstream.script(names("flaky"), "status:503", "status:502", "status:500", "ok")
    url = gateway({"providers": providers(upstream, names, "flaky"), "strategies": {"r": {
        "type": "single", "backoff": FAST, "targets": [{"provider": "flaky", "retry": 3}]}}})
    raw = chat(client(url), "r")
    assert raw.headers["x-raygate-attempts"] == "4"
    calls = upstream.calls(names("flaky"))
    assert [c.step for c in calls] == ["status:503", "status:502", "status:500", "ok"]
    gaps = [b.t - a.t for a, b in zip(calls, calls[1:])]
    for n, gap in enumerate(gaps, start=1):
        assert gap >= min(0.2, 0.05 * 2 ** (n - 1)) / 2 - 0.005, gaps
    text = metrics(url)
    assert metric(text, "raygate_retries_total", provider="flaky") == 3
    assert metric(text, "raygate_upstream_attempts_total", provider="flaky", outcome="success") == 1
    assert metric(text, "raygate_upstream_attempts_total", provider="flaky") == 4


def test_retry_after_is_honoured(gateway: Any, upstream: FaultyUpstream, names: Any) -> None:
    upstream.script(names("limited"), "status:429:0.4", "ok")
    url = gateway({"providers": providers(upstream, names, "limited"), "strategies": {"r": {
        "type": "single", "backoff": FAST, "targets": [{"provider": "limited", "retry": 1}]}}})
    raw = chat(client(url), "r")
    calls = upstream.calls(names("limited"))
    assert raw.headers["x-raygate-attempts"] == "2" and calls[1].t - calls[0].t >= 0.39


def test_connection_reset_and_truncated_body_fall_back(gateway: Any, upstream: FaultyUpstream, names: Any) -> None:
    upstream.script(names("bad"), "reset", "cut:0")
    url = gateway({"providers": providers(upstream, names, "bad", "good"), "strategies": {"chain": {
        "type": "fallback", "backoff": FAST, "targets": [{"provider": "bad", "retry": 1}, {"provider": "good"}]}}})
    raw = chat(client(url), "chain")
    assert raw.headers["x-raygate-provider"] == "good" and raw.headers["x-raygate-attempts"] == "3"


def test_non_retryable_errors_are_returned_at_once(gateway: Any, upstream: FaultyUpstream, names: Any) -> None:
    upstream.script(names("primary"), default="ctx")
    url = gateway({"providers": providers(upstream, names, "primary", "big"), "strategies": {
        "plain": {"type": "fallback", "targets": [{"provider": "primary", "retry": 2}, {"provider": "big"}]},
        "on-400": {"type": "fallback", "on_status_codes": [400, 429],
                   "targets": [{"provider": "primary"}, {"provider": "big"}]}}})
    c = client(url)
    with pytest.raises(openai.BadRequestError) as info:
        chat(c, "plain")
    assert info.value.code == "context_length_exceeded"
    assert info.value.response.headers["x-raygate-attempts"] == "1"
    assert upstream.calls(names("big")) == [] and len(upstream.calls(names("primary"))) == 1
    # listing 400 in on_status_codes moves on after a context-length error
    raw = chat(c, "on-400")
    assert raw.headers["x-raygate-provider"] == "big"


def test_every_target_fails_one_error_listing_attempts(gateway: Any, upstream: FaultyUpstream, names: Any) -> None:
    upstream.script(names("a"), default="status:503")
    upstream.script(names("b"), default="ok:3")
    url = gateway({"providers": providers(upstream, names, "a", "b"), "strategies": {"chain": {
        "type": "fallback", "backoff": FAST,
        "targets": [{"provider": "a", "retry": 1}, {"provider": "b", "model": "m-b", "timeout": 0.2}]}}})
    with pytest.raises(openai.APIStatusError) as info:
        chat(client(url), "chain")
    e = info.value
    assert e.status_code == 504 and e.code == "upstream_timeout"
    message = e.body["message"] if isinstance(e.body, dict) else str(e)
    assert message.startswith("every target of 'chain' failed (3 attempts): ")
    assert re.search(r"chain\.targets\[0\] \(a/gpt-4\): 503 overloaded after \d+\.\d\ds; "
                     r"chain\.targets\[0\] \(a/gpt-4\): 503 overloaded after \d+\.\d\ds; "
                     r"chain\.targets\[1\] \(b/m-b\): 504 timeout after 0\.2\ds$", message), message
    assert SECRET not in message and "injected" not in message
    assert e.response.headers["x-raygate-attempts"] == "3"


def test_circuit_breaker_opens_skips_and_recovers(gateway: Any, upstream: FaultyUpstream, names: Any) -> None:
    upstream.script(names("flaky"), default="status:500")
    url = gateway({"providers": providers(upstream, names, "flaky", "backup"), "strategies": {"chain": {
        "type": "fallback", "circuit_breaker": {"failures": 2, "window": 10, "cooldown": 0.5},
        "targets": [{"provider": "flaky"}, {"provider": "backup"}]}}})
    c = client(url)
    for _ in range(2):
        assert chat(c, "chain").headers["x-raygate-attempts"] == "2"
    # open: flaky is skipped without a call
    for _ in range(3):
        raw = chat(c, "chain")
        assert raw.headers["x-raygate-provider"] == "backup" and raw.headers["x-raygate-attempts"] == "1"
    assert len(upstream.calls(names("flaky"))) == 2
    # after the cooldown one probe goes through; it succeeds and closes the circuit
    upstream.script(names("flaky"), default="ok")
    time.sleep(0.6)
    raw = chat(c, "chain")
    assert raw.headers["x-raygate-provider"] == "flaky"
    assert chat(c, "chain").headers["x-raygate-provider"] == "flaky"
    text = metrics(url)
    assert metric(text, "raygate_circuit_state_changes_total", target="flaky", state="open") == 1
    assert metric(text, "raygate_circuit_state_changes_total", target="flaky", state="half_open") == 1
    assert metric(text, "raygate_circuit_state_changes_total", target="flaky", state="closed") == 1
    assert metric(text, "raygate_fallbacks_total", from_provider="flaky") == 5
    assert metric(text, "raygate_upstream_attempts_total", provider="flaky", outcome="circuit_open") == 3


def test_circuit_open_everywhere_is_listed(gateway: Any, upstream: FaultyUpstream, names: Any) -> None:
    upstream.script(names("only"), default="status:503")
    url = gateway({"providers": providers(upstream, names, "only"), "strategies": {"s": {
        "type": "single", "circuit_breaker": {"failures": 1, "cooldown": 30}, "targets": [{"provider": "only"}]}}})
    c = client(url)
    with pytest.raises(openai.APIStatusError):
        chat(c, "s")
    with pytest.raises(openai.APIStatusError) as info:
        chat(c, "s")
    assert info.value.status_code == 503 and info.value.code == "circuit_open"
    assert "s.targets[0] (only/gpt-4): circuit open" in str(info.value.body)
    assert int(info.value.response.headers["retry-after"]) > 0
    assert len(upstream.calls(names("only"))) == 1


# --- streams -------------------------------------------------------------------------------------------

def stream_chat(c: openai.OpenAI, config: Any) -> tuple[Any, str]:
    raw = c.chat.completions.with_raw_response.create(model="gpt-4", messages=MSG, stream=True,
                                                      extra_body={"config": config})
    text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)
    return raw.headers, text


def test_stream_falls_back_before_the_first_byte(gateway: Any, upstream: FaultyUpstream, names: Any) -> None:
    # 503 before the stream; a stream whose connection drops before any chunk; a stream that
    # stalls past the time-to-first-byte budget: all still fall back
    upstream.script(names("bad"), "status:503", "cut:0", "stall:0:3")
    url = gateway({"providers": providers(upstream, names, "bad", "good"), "strategies": {"chain": {
        "type": "fallback", "backoff": FAST,
        "targets": [{"provider": "bad", "retry": 2, "timeout": 0.3}, {"provider": "good"}]}}})
    t0 = time.perf_counter()
    headers, text = stream_chat(client(url), "chain")
    assert time.perf_counter() - t0 < 2.0
    assert text == names("good") + " says hi from the faulty upstream"
    assert headers["x-raygate-provider"] == "good" and headers["x-raygate-attempts"] == "4"
    assert headers["x-raygate-route"] == "chain.targets[1]"
    assert [c.stream for c in upstream.calls(names("bad"))] == [True, True, True]


def test_stream_error_event_after_the_first_byte(gateway: Any, upstream: FaultyUpstream, names: Any) -> None:
    upstream.script(names("cutter"), default="cut:3")
    url = gateway({"providers": providers(upstream, names, "cutter", "good"), "strategies": {"chain": {
        "type": "fallback", "targets": [{"provider": "cutter"}, {"provider": "good"}]}}})
    c = client(url)
    stream = c.chat.completions.create(model="gpt-4", messages=MSG, stream=True, extra_body={"config": "chain"})
    got = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            got.append(chunk.choices[0].delta.content)
    assert got[1:] == [names("cutter"), " says"]  # bytes went out: no fallback, an error event instead
    assert "ended the stream before it was complete" in str(info.value)
    assert upstream.calls(names("good")) == []
    text = metrics(url)
    assert metric(text, "raygate_stream_errors_total", provider="cutter") == 1
    assert metric(text, "raygate_upstream_attempts_total", provider="cutter", outcome="stream_cut") == 1


def test_stream_idle_timeout_ends_with_error_event(gateway: Any, upstream: FaultyUpstream, names: Any) -> None:
    upstream.script(names("staller"), default="stall:3:3")
    url = gateway({"providers": providers(upstream, names, "staller"), "strategies": {"s": {
        "type": "single", "targets": [{"provider": "staller", "idle_timeout": 0.3}]}}})
    t0 = time.perf_counter()
    with pytest.raises(openai.APIError) as info:
        stream_chat(client(url), "s")
    assert time.perf_counter() - t0 < 2.0
    assert "next chunk" in str(info.value)


# --- inline configs ---------------------------------------------------------------------------------------

def test_portkey_config_in_body_and_header(gateway: Any, upstream: FaultyUpstream, names: Any) -> None:
    upstream.script(names("primary"), default="status:429")
    url = gateway({"providers": providers(upstream, names, "primary", "secondary")})
    portkey = {"strategy": {"mode": "fallback", "on_status_codes": [429]},
               "retry": {"attempts": 1, "use_retry_after_header": False}, "request_timeout": 5000,
               "targets": [{"provider": "primary"},
                           {"provider": "secondary", "override_params": {"model": "gpt-4o-mini", "temperature": 0}}]}
    c = client(url)
    raw = chat(c, portkey)
    assert raw.headers["x-raygate-route"] == "config.targets[1]" and raw.headers["x-raygate-attempts"] == "3"
    assert raw.parse().model == "gpt-4o-mini"
    sent = upstream.calls(names("secondary"))[-1].body
    assert sent["temperature"] == 0 and "config" not in sent
    raw = chat(c, headers={"x-raygate-config": json.dumps(portkey)})
    assert raw.headers["x-raygate-provider"] == "secondary"
    raw = chat(c, json.dumps({"strategy": {"mode": "conditional",
                                           "conditions": [{"query": {"metadata.tier": {"$eq": "pro"}}, "then": "p"}],
                                           "default": "s"},
                              "targets": [{"name": "p", "provider": "secondary"}, {"name": "s", "provider": "primary"}]}),
               metadata={"tier": "pro"})
    assert raw.headers["x-raygate-provider"] == "secondary"


def test_invalid_inline_config_is_a_400(gateway: Any, upstream: FaultyUpstream, names: Any) -> None:
    url = gateway({"providers": providers(upstream, names, "p")})
    c = client(url)
    with pytest.raises(openai.BadRequestError) as info:
        chat(c, {"provider": "p", "api_key": "sk-attacker"})
    assert info.value.code == "invalid_config" and info.value.param == "config"
    with pytest.raises(openai.NotFoundError) as nf:
        chat(c, "no-such-strategy")
    assert nf.value.code == "strategy_not_found"
    assert upstream.calls(names("p")) == []
    # the gateway is still healthy
    assert httpx.get(url.removesuffix("/v1") + "/health").status_code == 200


def test_plain_requests_are_untouched(gateway: Any, upstream: FaultyUpstream, names: Any) -> None:
    upstream.script(names("p"), "status:503")
    url = gateway({"providers": providers(upstream, names, "p"), "default_provider": "p"})
    c = client(url)
    with pytest.raises(openai.InternalServerError):
        chat(c)  # no strategy: one attempt, no retry
    raw = chat(c)
    assert raw.headers["x-raygate-route"] == "default_provider" and raw.headers["x-raygate-attempts"] == "1"
    assert len(upstream.calls(names("p"))) == 2

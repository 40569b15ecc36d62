"""Circuit breaking across two ingress replicas of a real Ray Serve app.

Every replica routes from its own breaker board and syncs with the `raygate-circuits` actor every
0.5 s, so failures seen anywhere open the circuit everywhere, without an actor call per request.
Phase 1 drives failures through HTTP (the replicas report them); phase 2 opens the circuit from
the actor alone, which no replica has seen fail locally, so only the shared view can explain a
skip; each phase then recovers through a half-open probe.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.mockservers.faulty_upstream import FaultyUpstream

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]

MSG = [{"role": "user", "content": "hi"}]
COOLDOWN = 6.0  # long enough that the skip phase ends before the half-open probe
FAILURES = 3
KEY = "rt-flaky"  # the target key: the provider name (no model on the target)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultyUpstream]:
    with FaultyUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def app(deploy_gateway: Any, upstream: FaultyUpstream) -> Any:
    config = {
        "providers": {
            KEY: {"type": "openai", "base_url": upstream.url("rt-flaky"), "api_key": "sk-x", "timeout": 5},
            "rt-backup": {"type": "openai", "base_url": upstream.url("rt-backup"), "api_key": "sk-x", "timeout": 5},
        },
        "strategies": {"chain": {
            "type": "fallback",
            "circuit_breaker": {"failures": FAILURES, "window": 30, "cooldown": COOLDOWN},
            "targets": [{"provider": KEY}, {"provider": "rt-backup"}]}},
        "serve": {"ingress_replicas": 2},
    }
    return deploy_gateway(config, name="rtcb")


def actor_view() -> dict[str, Any]:
    import ray

    actor = ray.get_actor("raygate-circuits", namespace="raygate")
    return ray.get(actor.view.remote(), timeout=10)


def report_failures(n: int) -> None:
    import ray

    actor = ray.get_actor("raygate-circuits", namespace="raygate")
    now = time.time()
    ray.get(actor.sync.remote([(KEY, False, now, FAILURES, 30.0, COOLDOWN)] * n), timeout=10)


def wait_for(predicate: Any, timeout: float, step: float = 0.2) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def ask(c: openai.OpenAI) -> str:
    raw = c.chat.completions.with_raw_response.create(model="gpt-4", messages=MSG, extra_body={"config": "chain"})
    return raw.headers["x-raygate-provider"]


def recover(c: openai.OpenAI, upstream: FaultyUpstream) -> None:
    """After the cooldown a probe reaches the healthy target and the circuit closes on every replica."""
    upstream.script("rt-flaky", default="ok")
    time.sleep(COOLDOWN + 0.2)
    assert wait_for(lambda: ask(c) == KEY, timeout=10)
    assert wait_for(lambda: KEY not in actor_view(), timeout=5)
    time.sleep(1.2)  # both replicas adopt the closed state
    assert all(ask(c) == KEY for _ in range(10))


def running_replicas(app_name: str) -> int:
    from ray import serve

    status = serve.status().applications[app_name].deployments["Ingress"]
    return status.replica_states.get("RUNNING", 0)


def test_circuit_opens_skips_and_recovers_across_two_replicas(app: Any, upstream: FaultyUpstream) -> None:
    assert wait_for(lambda: running_replicas(app.name) == 2, timeout=30)
    c = openai.OpenAI(base_url=app.base_url, api_key="unused", max_retries=0, timeout=20)
    assert ask(c) == KEY  # healthy to begin with

    # phase 1: failures through HTTP (spread over whichever replicas serve them) open the shared circuit
    upstream.script("rt-flaky", default="status:500")
    sent = 0
    while KEY not in actor_view() and sent < 20:
        assert ask(c) == "rt-backup"  # fallback answers meanwhile
        sent += 1
        time.sleep(0.1)
    assert actor_view()[KEY][0] == "open", "replicas did not report failures to the actor"
    time.sleep(1.2)  # every replica adopts the view
    before = len(upstream.calls("rt-flaky"))
    for _ in range(20):
        assert ask(c) == "rt-backup"
    assert len(upstream.calls("rt-flaky")) == before, "a replica still called the open target"
    recover(c, upstream)

    # phase 2: the circuit opens from the actor alone; no replica saw these failures
    upstream.script("rt-flaky", default="status:500")
    report_failures(FAILURES)
    assert actor_view()[KEY][0] == "open"
    time.sleep(1.2)
    before = len(upstream.calls("rt-flaky"))
    for _ in range(20):
        assert ask(c) == "rt-backup"
    assert len(upstream.calls("rt-flaky")) == before, "a replica ignored the shared circuit state"
    recover(c, upstream)

    # the actor counted the transitions once (not once per replica) into the cluster-wide metrics
    def counted() -> bool:
        text = httpx.get(app.url + "/metrics", timeout=10).text
        return f'raygate_circuit_state_changes_total{{target="{KEY}",state="open"}} 2' in text

    assert wait_for(counted, timeout=10)


def test_router_deployment_balances_around_a_shared_open_circuit(deploy_gateway: Any,
                                                                 upstream: FaultyUpstream) -> None:
    """placement.router: deployment — the Plan crosses a handle, and the router deployment's
    balancer skips a member tripped elsewhere (here: straight in the actor)."""
    import ray

    from deployments.router.circuit import circuit_actor

    upstream.script("rt-lb-bad", default="status:500")
    app = deploy_gateway({
        "providers": {
            "rt-lb-bad": {"type": "openai", "base_url": upstream.url("rt-lb-bad"), "api_key": "sk-x"},
            "rt-lb-good": {"type": "openai", "base_url": upstream.url("rt-lb-good"), "api_key": "sk-x"},
        },
        "strategies": {"pool": {"type": "load_balance",
                                "providers": [{"provider": "rt-lb-bad"}, {"provider": "rt-lb-good"}]}},
        "placement": {"router": "deployment"},
        "serve": {"ingress_replicas": 1},
    }, name="rtlb")
    actor = circuit_actor()
    ray.get(actor.sync.remote([("rt-lb-bad", False, time.time(), 5, 30.0, 30.0)] * 5), timeout=10)
    c = openai.OpenAI(base_url=app.base_url, api_key="unused", max_retries=0, timeout=20)
    for _ in range(20):
        raw = c.chat.completions.with_raw_response.create(model="gpt-4", messages=MSG, extra_body={"config": "pool"})
        assert raw.headers["x-raygate-provider"] == "rt-lb-good"
        assert raw.headers["x-raygate-route"] == "pool.providers[1]"
    assert upstream.calls("rt-lb-bad") == []

"""Stage deployments are autoscaled: a Provider deployment behind a slow upstream, and a SemanticCache
deployment on the redis backend, grow past one replica under sustained concurrency and shrink back to
one when the load ends (real Serve app)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest

from tests.support.mockservers.recording_openai import RecordingUpstream
from tests.support.services import REDIS_URL, redis_prefix

pytestmark = pytest.mark.ray
MSG = [{"role": "user", "content": "scale me"}]
CLIENTS = 12  # each keeps one request in flight; target 2 per replica -> Serve wants 6, capped at 3
FAST = {"upscale_delay_s": 1, "downscale_delay_s": 2, "look_back_period_s": 11}
SLOW_MODEL = "up/slow-0.6"  # the upstream answers after 0.6 s


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingUpstream]:
    up = RecordingUpstream().start()
    yield up
    up.stop()


def replicas(app: str, deployment: str) -> dict[str, int]:
    from ray import serve

    status = serve.status().applications[app].deployments[deployment]
    return {str(getattr(state, "value", state)): n for state, n in status.replica_states.items() if n}


def wait_for(what: Callable[[], bool], within: float, describe: Callable[[], Any]) -> None:
    deadline = time.time() + within
    while not what():
        assert time.time() < deadline, f"not within {within} s: {describe()}"
        time.sleep(0.5)


def grows_under_load_and_shrinks_back(app: Any, deployment: str, clients: int,
                                      ask: Callable[[openai.OpenAI, int, int], None]) -> tuple[float, float]:
    """Keep `clients` requests in flight until `deployment` runs 2+ replicas, stop, wait for 1 again.
    Returns (seconds of load until it grew, seconds from then until it was back to one)."""
    assert replicas(app.name, deployment) == {"RUNNING": 1}
    stop, answered = threading.Event(), [0] * clients

    def load(i: int) -> None:
        client = openai.OpenAI(base_url=app.base_url, api_key="none", max_retries=0, timeout=30)
        while not stop.is_set():
            ask(client, i, answered[i])
            answered[i] += 1

    started = time.time()
    with ThreadPoolExecutor(clients) as pool:
        running = [pool.submit(load, i) for i in range(clients)]
        try:
            wait_for(lambda: replicas(app.name, deployment).get("RUNNING", 0) >= 2, 120,
                     lambda: replicas(app.name, deployment))
        finally:
            stop.set()
        for r in running:
            r.result()  # a failed request under load fails the test here
    grown = time.time()
    assert all(answered), answered
    wait_for(lambda: replicas(app.name, deployment) == {"RUNNING": 1}, 120,
             lambda: replicas(app.name, deployment))
    return grown - started, time.time() - grown


def test_provider_deployment_scales_out_under_load_and_back(deploy_gateway: Any,
                                                             upstream: RecordingUpstream) -> None:
    cfg = {
        "providers": {"up": {"type": "openai", "base_url": upstream.base_url, "api_key": "k"}},
        "default_provider": "up",
        "placement": {"providers": "deployment"},
        "serve": {"ingress_replicas": 1,
                  "stages": {"max_replicas": 3, "target_ongoing_requests": 2, **FAST}},
    }
    app = deploy_gateway(cfg, name="autoscale")

    def ask(client: openai.OpenAI, i: int, n: int) -> None:
        assert client.chat.completions.create(model=SLOW_MODEL, messages=MSG).choices[0].message.content

    grew, shrank = grows_under_load_and_shrinks_back(app, "Provider:up", CLIENTS, ask)
    print(f"Provider:up grew after {grew:.1f} s of load, one replica again {shrank:.1f} s later")


def test_semantic_cache_deployment_scales_out_under_load_and_back(deploy_gateway: Any) -> None:
    """Every request is a semantic lookup (and, as a miss, an insert) in the SemanticCache deployment;
    its replicas share the index through Redis, so a second replica (with its own model) can join."""
    with redis_prefix() as prefix:
        cfg = {
            "providers": {"sandbox": {"type": "mock"}}, "default_provider": "sandbox",
            "serve": {"ingress_replicas": 1,
                      "stage_overrides": {"SemanticCache": {"max_replicas": 2, "target_ongoing_requests": 1,
                                                            **FAST}}},
            "cache": {"enabled": True, "mode": "semantic", "backend": "redis", "url": REDIS_URL,
                      "prefix": prefix, "sync_interval_s": 0.1},
        }
        app = deploy_gateway(cfg, name="autoscalesem")

        def ask(client: openai.OpenAI, i: int, n: int) -> None:
            # numbers differ, so every request misses: a lookup and an insert each
            text = f"Client {i} question {n}: what is the square root of {i * 1000 + n}?"
            assert client.chat.completions.create(model="mock", messages=[{"role": "user", "content": text}])

        grew, shrank = grows_under_load_and_shrinks_back(app, "SemanticCache", 8, ask)
        print(f"SemanticCache grew after {grew:.1f} s of load, one replica again {shrank:.1f} s later")

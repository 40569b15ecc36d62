"""Stage deployments are autoscaled: a Provider deployment behind a slow upstream grows past one
replica under sustained concurrency and shrinks back to one when the load ends (real Serve app)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest

from tests.support.mockservers.recording_openai import RecordingUpstream

pytestmark = pytest.mark.ray
MSG = [{"role": "user", "content": "scale me"}]
CLIENTS = 12  # each keeps one request in flight; target 2 per replica -> Serve wants 6, capped at 3
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


def test_provider_deployment_scales_out_under_load_and_back(deploy_gateway: Any,
                                                             upstream: RecordingUpstream) -> None:
    cfg = {
        "providers": {"up": {"type": "openai", "base_url": upstream.base_url, "api_key": "k"}},
        "default_provider": "up",
        "placement": {"providers": "deployment"},
        "serve": {"ingress_replicas": 1,
                  "stages": {"max_replicas": 3, "target_ongoing_requests": 2, "upscale_delay_s": 1,
                             "downscale_delay_s": 2, "look_back_period_s": 12}},
    }
    app = deploy_gateway(cfg, name="autoscale")
    started = time.time()
    assert replicas(app.name, "Provider:up") == {"RUNNING": 1}
    stop, answered = threading.Event(), [0] * CLIENTS

    def load(i: int) -> None:
        client = openai.OpenAI(base_url=app.base_url, api_key="none", max_retries=0, timeout=30)
        while not stop.is_set():
            assert client.chat.completions.create(model=SLOW_MODEL, messages=MSG).choices[0].message.content
            answered[i] += 1

    with ThreadPoolExecutor(CLIENTS) as pool:
        clients = [pool.submit(load, i) for i in range(CLIENTS)]
        try:
            wait_for(lambda: replicas(app.name, "Provider:up").get("RUNNING", 0) >= 2, 120,
                     lambda: replicas(app.name, "Provider:up"))
        finally:
            stop.set()
        for c in clients:
            c.result()  # a failed request under load fails the test here
    grown = time.time()
    assert all(answered), answered
    wait_for(lambda: replicas(app.name, "Provider:up") == {"RUNNING": 1}, 120,
             lambda: replicas(app.name, "Provider:up"))
    print(f"grew after {grown - started:.1f} s of load, one replica again {time.time() - grown:.1f} s later")

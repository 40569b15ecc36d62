"""A rate limit held across two ingress replicas of a real Ray Serve app, through the openai SDK.

Both replicas lease from the same bucket actor (`raygate-ratelimit-0`), so a burst spread over
them is admitted no more than one token bucket would admit: over the burst's T seconds, at most
`limit + limit/60 * T` requests; and no fewer than the limit minus one lease per replica (what a
replica may still hold unspent when the bucket runs dry). Refusals are 429 `rate_limit_exceeded`
with Retry-After, and counted once cluster-wide in `raygate_rate_limited_total`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import openai
import pytest

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]

KEY = "rl-ray-key"
LIMIT = 60  # requests per minute: one more a second
REPLICAS, LEASE = 2, 3  # the lease: lease_fraction 0.05 of 60
MSG = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def app(deploy_gateway: Any) -> Any:
    return deploy_gateway({
        "gateway": {"api_keys": [{"id": "rl-ray-team", "key": KEY}]},
        "providers": {"mock": {"type": "mock", "latency_ms": 5}},
        "default_provider": "mock",
        "rate_limits": [{"scope": "key", "requests_per_minute": LIMIT}],
        "serve": {"ingress_replicas": REPLICAS},
    }, name="rlgw")


async def _burst(base_url: str, n: int, concurrency: int) -> tuple[int, list[int], float]:
    client = openai.AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0)
    gate = asyncio.Semaphore(concurrency)
    ok, retry_afters = 0, []

    async def one() -> None:
        nonlocal ok
        async with gate:
            try:
                await client.chat.completions.create(model="mock", messages=MSG)
                ok += 1
            except openai.RateLimitError as err:
                assert err.code == "rate_limit_exceeded"
                retry_afters.append(int(err.response.headers["retry-after"]))

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(n)))
    elapsed = time.monotonic() - started
    await client.close()
    return ok, retry_afters, elapsed


def _lessees() -> list[str]:
    import ray

    actor = ray.get_actor("raygate-ratelimit-0", namespace="raygate")
    view = ray.get(actor.view.remote(), timeout=10)
    return view["lessees"]


def _refusals_counted(url: str) -> float:
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith('raygate_rate_limited_total{scope="key"}'):
            return float(line.split()[-1])
    return 0.0


async def test_the_limit_holds_across_two_replicas(app: Any) -> None:
    ok, retry_afters, elapsed = await _burst(app.base_url, 150, 12)
    upper = LIMIT + LIMIT / 60 * elapsed
    assert LIMIT - REPLICAS * LEASE - 1 <= ok <= upper, (ok, elapsed)
    assert len(retry_afters) == 150 - ok and all(1 <= r <= 60 for r in retry_afters)
    assert len(_lessees()) >= REPLICAS  # both replicas took leases from the one bucket
    deadline = time.time() + 20  # every replica ships its counts to the metrics actor once a second
    while time.time() < deadline and _refusals_counted(app.url) < len(retry_afters):
        await asyncio.sleep(0.5)
    assert _refusals_counted(app.url) == len(retry_afters)

"""The cache on a real Ray Serve app: the SemanticCache deployment (serve.batch, FAISS) behind the
ingress, and two separately deployed gateways (their own ingress and SemanticCache replicas) that
share entries through Redis."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.cache_client import ADMIN, ask, eventually, vectors_within
from tests.support.services import REDIS_URL, redis_prefix

pytestmark = pytest.mark.ray


def config(**cache: Any) -> dict[str, Any]:
    return {"providers": {"sandbox": {"type": "mock"}}, "default_provider": "sandbox",
            "gateway": {"admin_keys": [{"id": "ops", "key": "adm-key"}]},
            "serve": {"ingress_replicas": 1},
            "cache": {"enabled": True, "mode": "semantic", **cache}}


@pytest.fixture(scope="module")
def prefix() -> Iterator[str]:
    with redis_prefix() as p:
        yield p


def test_semantic_cache_deployment(deploy_gateway: Any) -> None:
    app = deploy_gateway(config(), name="cachesem")
    ready = httpx.get(app.url + "/ready")
    assert ready.status_code == 200  # waits for the SemanticCache deployment too
    status, first, _ = ask(app.base_url, "How do I install Docker on Ubuntu?")
    assert status == "MISS"
    status, hit, headers = eventually_hit(app.base_url, "What are the steps to install Docker on Ubuntu?")
    assert hit.choices[0].message.content == first.choices[0].message.content
    assert headers["x-raygate-provider"] == "sandbox"
    assert ask(app.base_url, "How do I uninstall Docker on Ubuntu?")[0] == "MISS"
    # a streamed request replays a semantic hit as SSE from the ingress: the text that just hit (a
    # semantic hit stores no exact entry, so this is a semantic lookup again), answered with the
    # stored reply to the first question (the mock would have echoed this one)
    c = openai.OpenAI(base_url=app.base_url, api_key="none", max_retries=0)
    raw = c.chat.completions.with_raw_response.create(
        model="mock", messages=[{"role": "user", "content": "What are the steps to install Docker on Ubuntu?"}],
        stream=True, stream_options={"include_usage": True})
    chunks = list(raw.parse())
    assert raw.headers["x-raygate-cache"] == "SEMANTIC_HIT"
    replayed = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert replayed == first.choices[0].message.content == "Mock reply to: How do I install Docker on Ubuntu?"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == first.usage.total_tokens
    # concurrent semantic lookups are batched by serve.batch in the deployment
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda i: ask(app.base_url, f"Is {i} an even number?")[0], range(16)))
    assert set(statuses) <= {"MISS", "SEMANTIC_HIT"}
    stats = httpx.get(app.url + "/v1/admin/cache/stats", headers=ADMIN).json()
    sem = stats["semantic"]
    assert sem["embedded_texts"] >= 19 and sem["embed_batches"] < sem["embedded_texts"]
    assert stats["semantic_hits"] >= 1 and sem["vectors"] >= 2


def eventually_hit(url: str, text: str, within: float = 2.0) -> tuple[str | None, Any, Any]:
    start = time.time()
    while True:
        status, completion, headers = ask(url, text)
        if status == "SEMANTIC_HIT":
            return status, completion, headers
        assert time.time() - start < within, f"still {status}"
        time.sleep(0.05)


def test_two_gateways_share_entries_through_redis(deploy_gateway: Any, prefix: str) -> None:
    cfg = config(backend="redis", url=REDIS_URL, prefix=prefix, sync_interval_s=0.1)
    a = deploy_gateway(cfg, name="cachera")
    b = deploy_gateway(cfg, name="cacherb")
    assert ask(a.base_url, "What is the capital of Norway?")[0] == "MISS"
    assert eventually(b.base_url, "What is the capital of Norway?", "HIT") < 1.0
    assert vectors_within(b.url, 1, 1.0) < 1.0  # a's SemanticCache inserted; b's index followed
    assert ask(b.base_url, "Which city is the capital of Norway?")[0] == "SEMANTIC_HIT"
    # stored through b (stream), found through a
    c = openai.OpenAI(base_url=b.base_url, api_key="none", max_retries=0)
    list(c.chat.completions.create(model="mock", messages=[{"role": "user", "content": "Explain Kubernetes pods"}],
                                   stream=True))
    assert eventually(a.base_url, "Explain Kubernetes pods", "HIT") < 1.0
    removed = httpx.post(a.url + "/v1/admin/cache/invalidate", json={"pattern": "norway"}, headers=ADMIN).json()
    assert removed["removed"] == 1
    assert ask(b.base_url, "Which city is the capital of Norway?")[0] == "MISS"

"""The response cache through the official openai SDK against the in-process gateway (no Ray).

Exact mode with the memory backend; semantic mode with the in-process SemanticStage and the real
all-MiniLM-L6-v2 (loaded once per process and shared by every server in the session).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

ADMIN = {"authorization": "Bearer adm-key"}
BASE: dict[str, Any] = {
    "providers": {"sandbox": {"type": "mock"}, "other": {"type": "mock"}},
    "default_provider": "sandbox",
    "gateway": {"api_keys": [{"id": "team-a", "key": "key-a"}, {"id": "team-b", "key": "key-b"}],
                "admin_keys": [{"id": "ops", "key": "adm-key"}]},
}


def config(**cache: Any) -> dict[str, Any]:
    return {**BASE, "cache": {"enabled": True, **cache}}


def client(url: str, key: str = "key-a") -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0)


def ask(c: openai.OpenAI, text: str, *, system: str | None = None, model: str = "mock", **kw: Any):
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    raw = c.chat.completions.with_raw_response.create(model=model, messages=messages, **kw)
    return raw.headers.get("x-raygate-cache"), raw.parse(), raw.headers


def ask_stream(c: openai.OpenAI, text: str, **kw: Any):
    raw = c.chat.completions.with_raw_response.create(
        model="mock", messages=[{"role": "user", "content": text}], stream=True, **kw)
    chunks = list(raw.parse())
    content = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    return raw.headers.get("x-raygate-cache"), chunks, content, raw.headers


def wait_idle(server: Any) -> None:
    deadline = time.time() + 10
    while server.gateway.cache.pending and time.time() < deadline:
        time.sleep(0.01)


def stats(server: Any) -> dict[str, Any]:
    return httpx.get(server.url + "/v1/admin/cache/stats", headers=ADMIN).json()


# -- exact mode ---------------------------------------------------------------------------------------

def test_exact_hit_and_miss(gateway_server):
    srv = gateway_server(config())
    c = client(srv.base_url)
    status, first, headers = ask(c, "What is Ray Serve?")
    assert status == "MISS" and headers["x-raygate-provider"] == "sandbox"
    status, again, headers = ask(c, "What is Ray Serve?")
    assert status == "HIT" and headers["x-raygate-provider"] == "sandbox"
    assert again.choices[0].message.content == first.choices[0].message.content
    assert again.id != first.id
    assert (again.usage.prompt_tokens, again.usage.completion_tokens) == (first.usage.prompt_tokens,
                                                                          first.usage.completion_tokens)
    assert again.usage.model_extra["estimated_cost"] == 0.0  # a hit costs nothing (docs/spend.md)
    assert ask(c, "What is Ray Core?")[0] == "MISS"


def test_streams_are_stored_and_replayed_in_either_form(gateway_server):
    srv = gateway_server(config())
    c = client(srv.base_url)
    status, chunks, content, _ = ask_stream(c, "stream me a reply please")
    assert status == "MISS" and content == "Mock reply to: stream me a reply please"
    status, completion, headers = ask(c, "stream me a reply please")  # stored from a stream
    assert status == "HIT" and completion.choices[0].message.content == content
    assert completion.usage.total_tokens > 0  # usage kept although the client did not ask for it
    ask(c, "now the other way round")
    status, chunks, replayed, headers = ask_stream(c, "now the other way round",
                                                    stream_options={"include_usage": True})
    assert status == "HIT" and replayed == "Mock reply to: now the other way round"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert len({ch.id for ch in chunks}) == 1 and headers["x-raygate-provider"] == "sandbox"
    _, no_usage, _, _ = ask_stream(c, "now the other way round")
    assert all(ch.usage is None for ch in no_usage)


def test_scope_isolation(gateway_server):
    srv = gateway_server(config())
    c = client(srv.base_url)
    assert ask(c, "Tell me about Oslo", system="Be brief.", temperature=0)[0] == "MISS"
    assert ask(c, "Tell me about Oslo", system="Be brief.", temperature=0)[0] == "HIT"
    assert ask(c, "Tell me about Oslo", system="Be verbose.", temperature=0)[0] == "MISS"  # system prompt
    assert ask(c, "Tell me about Oslo", system="Be brief.", temperature=0.9)[0] == "MISS"  # sampling
    assert ask(c, "Tell me about Oslo", system="Be brief.", temperature=0, model="other-model")[0] == "MISS"
    assert ask(c, "Tell me about Oslo", system="Be brief.", temperature=0, model="other/mock")[0] == "MISS"
    history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
               {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Tell me about Oslo"}]
    raw = c.chat.completions.with_raw_response.create(model="mock", messages=history, temperature=0)
    assert raw.headers["x-raygate-cache"] == "MISS"  # earlier turns
    # stream and bookkeeping fields are not part of the scope
    assert ask(c, "Tell me about Oslo", system="Be brief.", temperature=0, user="someone")[0] == "HIT"


def test_entries_are_per_gateway_key_unless_shared(gateway_server):
    srv = gateway_server(config())
    assert ask(client(srv.base_url, "key-a"), "secret plans")[0] == "MISS"
    assert ask(client(srv.base_url, "key-b"), "secret plans")[0] == "MISS"
    shared = gateway_server(config(share_across_keys=True))
    assert ask(client(shared.base_url, "key-a"), "public facts")[0] == "MISS"
    assert ask(client(shared.base_url, "key-b"), "public facts")[0] == "HIT"


def test_ttl_expiry(gateway_server):
    srv = gateway_server(config(ttl=0.6))
    c = client(srv.base_url)
    assert ask(c, "short lived")[0] == "MISS"
    assert ask(c, "short lived")[0] == "HIT"
    time.sleep(0.8)
    assert ask(c, "short lived")[0] == "MISS"  # expired; stored again
    # a request's own ttl is also the oldest entry it accepts: the entry is ~0.1 s old, well within
    # the section's 0.6 s, so the same request without a ttl hits and one with ttl 0.05 does not
    time.sleep(0.1)
    assert ask(c, "short lived")[0] == "HIT"
    assert ask(c, "short lived", extra_body={"cache": {"ttl": 0.05}})[0] == "MISS"
    assert stats(srv)["expirations"] >= 1


def test_lru_eviction(gateway_server):
    srv = gateway_server(config(max_size=2))
    c = client(srv.base_url)
    for q in ("one", "two"):
        assert ask(c, q)[0] == "MISS"
    assert ask(c, "one")[0] == "HIT"  # "two" is now least recently used
    assert ask(c, "three")[0] == "MISS"  # evicts "two"
    assert ask(c, "one")[0] == "HIT"
    assert ask(c, "two")[0] == "MISS"
    s = stats(srv)
    assert s["entries"] == 2 and s["evictions"] == 2


def test_errors_and_uncacheable_answers_are_never_cached(gateway_server):
    srv = gateway_server(config())
    c = client(srv.base_url)
    with pytest.raises(openai.InternalServerError):
        ask(c, "fragile question", extra_headers={"x-raygate-mock-fail": "500"})
    assert ask(c, "fragile question")[0] == "MISS"  # the error was not stored
    with pytest.raises(openai.APIError):
        ask_stream(c, "cut stream question", extra_headers={"x-raygate-mock-fail": "cut"})
    assert ask_stream(c, "cut stream question")[0] == "MISS"  # the failed stream was not stored
    assert ask(c, "many choices", n=2)[0] == "BYPASS"
    assert ask(c, "many choices", n=2)[0] == "BYPASS"
    assert ask(c, "many choices")[0] == "MISS"
    assert stats(srv)["entries"] == 3


def test_per_request_controls(gateway_server):
    srv = gateway_server({**BASE, "cache": {"enabled": False}})
    c = client(srv.base_url)
    status, _, headers = ask(c, "not cached by default")
    assert status is None  # caching not in play: no header at all
    assert ask(c, "opt in", extra_body={"cache": True})[0] == "MISS"
    assert ask(c, "opt in", extra_body={"cache": True})[0] == "HIT"
    assert ask(c, "opt in")[0] is None
    assert ask(c, "opt in", extra_headers={"x-raygate-cache": "true"})[0] == "HIT"
    assert ask(c, "opt in", extra_headers={"x-raygate-cache": "refresh"})[0] == "REFRESH"
    assert ask(c, "opt in", extra_body={"cache": {"force_refresh": True}})[0] == "REFRESH"
    assert ask(c, "opt in", extra_body={"cache": {"mode": "exact", "ttl": 600}})[0] == "HIT"
    on = gateway_server(config())
    c2 = client(on.base_url)
    ask(c2, "opt out")
    assert ask(c2, "opt out", extra_body={"cache": False})[0] == "BYPASS"
    assert ask(c2, "opt out", extra_headers={"x-raygate-cache": "false"})[0] == "BYPASS"
    with pytest.raises(openai.BadRequestError) as info:
        ask(c2, "opt out", extra_body={"cache": {"mode": "fuzzy"}})
    assert info.value.body["param"] == "cache"
    with pytest.raises(openai.BadRequestError):
        ask(c2, "opt out", extra_headers={"x-raygate-cache": "sometimes"})


def test_admin_stats_and_invalidate(gateway_server):
    srv = gateway_server(config())
    c = client(srv.base_url)
    ask(c, "How do I scale Kubernetes deployments?")
    ask(c, "How do I scale Kubernetes deployments?")
    ask(c, "kubernetes on the other provider", model="other/mock")
    ask(c, "Docker volumes explained")
    ask(c, "Docker volumes explained")
    ask(c, "Docker volumes explained")
    s = stats(srv)
    assert (s["entries"], s["hits"], s["misses"], s["semantic_hits"]) == (3, 3, 3, 0)
    assert s["hit_rate"] == 0.5
    rows = {(r["provider"], r["model"]): r for r in s["by_provider_model"]}
    assert rows[("sandbox", "mock")]["hits"] == 3 and rows[("other", "mock")]["misses"] == 1
    assert {r["provider"] for r in s["by_provider"]} == {"sandbox", "other"}
    assert httpx.get(srv.url + "/v1/admin/cache/stats").status_code == 401
    assert httpx.get(srv.url + "/v1/admin/cache/stats", headers={"authorization": "Bearer key-a"}).status_code in (401, 403)

    def invalidate(body: dict[str, Any]) -> httpx.Response:
        return httpx.post(srv.url + "/v1/admin/cache/invalidate", json=body, headers=ADMIN)

    r = invalidate({"pattern": "KUBERNETES", "provider": "sandbox"})
    assert r.status_code == 200 and r.json()["removed"] == 1
    assert ask(c, "How do I scale Kubernetes deployments?")[0] == "MISS"
    assert ask(c, "kubernetes on the other provider", model="other/mock")[0] == "HIT"
    assert invalidate({"provider": "other"}).json()["removed"] == 1
    assert invalidate({"pattern": r"docker\s+vol", "regex": True}).json()["removed"] == 1
    assert invalidate({"all": True}).json()["removed"] == 1
    assert stats(srv)["entries"] == 0
    assert invalidate({}).status_code == 400
    assert invalidate({"pattern": "(", "regex": True}).status_code == 400
    log = httpx.get(srv.url + "/v1/admin/cache/invalidations", headers=ADMIN).json()["data"]
    assert len(log) == 4 and log[0]["admin"] == "ops" and log[0]["filter"] == {"all": True}
    assert log[-1]["filter"] == {"pattern": "KUBERNETES", "regex": False, "provider": "sandbox"}


def test_metrics_count_lookups(gateway_server):
    srv = gateway_server(config())
    c = client(srv.base_url)
    ask(c, "metric me")
    ask(c, "metric me")
    text = httpx.get(srv.url + "/metrics").text
    assert 'raygate_cache_lookups_total{result="hit"} 1' in text
    assert 'raygate_cache_lookups_total{result="miss"} 1' in text


# -- semantic mode (real model, in-process stage) -------------------------------------------------------

def test_semantic_hits_misses_and_streams(gateway_server):
    srv = gateway_server(config(mode="semantic"))
    c = client(srv.base_url)
    status, first, _ = ask(c, "How do I install Docker on Ubuntu?")
    assert status == "MISS"
    wait_idle(srv)
    status, hit, headers = ask(c, "What are the steps to install Docker on Ubuntu?")
    assert status == "SEMANTIC_HIT" and hit.choices[0].message.content == first.choices[0].message.content
    assert float(headers["x-raygate-cache-similarity"]) >= 0.84
    assert ask(c, "How do I install Docker on Ubuntu?")[0] == "HIT"  # exact match first
    # near-duplicates with another meaning
    assert ask(c, "How do I uninstall Docker on Ubuntu?")[0] == "MISS"
    assert ask(c, "How do I install Docker on Windows?")[0] == "MISS"
    assert ask(c, "Write a poem about the sea")[0] == "MISS"
    wait_idle(srv)
    status, chunks, content, _ = ask_stream(c, "Could you write a poem about the sea?",
                                            stream_options={"include_usage": True})
    assert status == "SEMANTIC_HIT" and content == "Mock reply to: Write a poem about the sea"
    assert chunks[-1].usage is not None
    # a different system prompt is another scope: no semantic match across it
    assert ask(c, "What are the steps to install Docker on Ubuntu?", system="Answer in French.")[0] == "MISS"
    s = stats(srv)
    assert s["semantic_hits"] == 2 and s["hits"] == 1 and s["semantic"]["vectors"] == s["entries"]


def test_semantic_invalidation_removes_vectors(gateway_server):
    srv = gateway_server(config(mode="semantic"))
    c = client(srv.base_url)
    ask(c, "What is the capital of Norway?")
    wait_idle(srv)
    assert ask(c, "Which city is the capital of Norway?")[0] == "SEMANTIC_HIT"
    r = httpx.post(srv.url + "/v1/admin/cache/invalidate", json={"pattern": "norway"}, headers=ADMIN)
    assert r.json()["removed"] == 1  # a hit stores nothing new
    assert stats(srv)["semantic"]["vectors"] == 0
    assert ask(c, "Which city is the capital of Norway?")[0] == "MISS"


def test_strategy_cache_setting(gateway_server):
    srv = gateway_server({**BASE, "strategies": {
        "cached-chain": {"type": "fallback", "cache": {"mode": "simple", "max_age": 60},
                         "targets": [{"provider": "sandbox"}, {"provider": "other"}]},
        "plain-chain": {"type": "fallback", "targets": [{"provider": "sandbox"}, {"provider": "other"}]}},
        "models": {"cached": "cached-chain", "plain": "plain-chain"}})
    c = client(srv.base_url)
    assert ask(c, "strategy question", model="cached")[0] == "MISS"
    assert ask(c, "strategy question", model="cached")[0] == "HIT"
    assert ask(c, "strategy question", model="plain")[0] is None  # no cache in play
    assert ask(c, "strategy question", model="cached", extra_body={"cache": False})[0] == "BYPASS"
    # Portkey-style inline config with a cache block
    inline = {"strategy": {"mode": "fallback"}, "targets": [{"provider": "sandbox"}], "cache": {"mode": "simple"}}
    statuses = [ask(c, "inline question", extra_body={"config": inline})[0] for _ in range(2)]
    assert statuses == ["MISS", "HIT"]

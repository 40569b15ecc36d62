"""Rate limits through the official openai SDK (strict response validation) against the in-process
gateway: 429 `rate_limit_exceeded` with Retry-After and x-ratelimit-* headers, the headers on
successful (and streamed) responses, the decision on the record, settling to the actual usage,
the refusal metric."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from serve_app.lifecycle import RequestRecord

KEY, BATCH = "rl-key", "rl-batch-key"
MSG = [{"role": "user", "content": "count these four words"}]


class Records:
    def __init__(self) -> None:
        self.seen: list[RequestRecord] = []

    def submit(self, rec: RequestRecord) -> None:
        self.seen.append(rec)


def config(rate_limits: Any) -> dict[str, Any]:
    return {"gateway": {"api_keys": [{"id": "team", "key": KEY}, {"id": "batch-jobs", "key": BATCH}]},
            "providers": {"mock": {"type": "mock"}}, "default_provider": "mock", "rate_limits": rate_limits}


def client(server: Any, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0,
                         _strict_response_validation=True)


def test_refused_with_429_retry_after_and_headers_and_counted(gateway_server: Any) -> None:
    server = gateway_server(config([{"scope": "key", "requests_per_minute": 3},
                                    {"scope": {"key": "batch-jobs"}, "requests_per_minute": 6}]))
    records = Records()
    server.gateway.sinks.append(records)
    c = client(server)
    remaining = []
    for _ in range(3):
        raw = c.chat.completions.with_raw_response.create(model="mock", messages=MSG)
        assert raw.headers["x-ratelimit-limit-requests"] == "3"
        remaining.append(int(raw.headers["x-ratelimit-remaining-requests"]))
        raw.parse()
    assert remaining == [2, 1, 0]
    with pytest.raises(openai.RateLimitError) as err:
        c.chat.completions.create(model="mock", messages=MSG)
    resp = err.value.response
    assert err.value.code == "rate_limit_exceeded" and err.value.type == "rate_limit_error"
    assert resp.json()["error"]["param"] is None and "key" in err.value.message
    assert resp.headers["retry-after"] == "20"  # 3 per minute: the next request fits in 20 s
    assert resp.headers["x-ratelimit-limit-requests"] == "3"
    assert resp.headers["x-ratelimit-remaining-requests"] == "0"
    assert "x-ratelimit-limit-tokens" not in resp.headers  # no token limit configured for this key
    refused = records.seen[-1]
    assert refused.status == 429 and refused.error_code == "rate_limit_exceeded" and refused.attempts == []
    assert refused.facts["rate_limit"] == {"decision": "refuse", "scope": "key", "limit": "requests",
                                           "retry_after": pytest.approx(20, abs=0.1)}
    assert records.seen[0].facts["rate_limit"] == {"decision": "allow"}
    # the batch key has its own, larger limit; the other key being empty does not touch it
    b = client(server, BATCH)
    for _ in range(6):
        b.chat.completions.create(model="mock", messages=MSG)
    with pytest.raises(openai.RateLimitError):
        b.chat.completions.create(model="mock", messages=MSG)
    text = httpx.get(server.url + "/metrics").text
    assert 'raygate_rate_limited_total{scope="key"} 2' in text
    assert BATCH not in text and "batch-jobs" not in text.split("raygate_rate_limited_total")[-1]


def test_token_limits_reserve_then_settle_to_the_actual_usage(gateway_server: Any) -> None:
    server = gateway_server(config([{"scope": "user", "tokens_per_minute": 1000}]))
    records = Records()
    server.gateway.sinks.append(records)
    c = client(server)
    raw = c.chat.completions.with_raw_response.create(model="mock", messages=MSG, max_tokens=500,
                                                      user="alice")
    usage = raw.parse().usage
    assert raw.headers["x-ratelimit-limit-tokens"] == "1000"
    assert "x-ratelimit-limit-requests" not in raw.headers
    reserved = records.seen[-1].facts["rate_limit"]["tokens_reserved"]
    assert reserved == 6 + 3 + 500  # 22 characters, one message, max_tokens
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) == 1000 - reserved
    # a second reservation of 500 no longer fits until the first one settles to its small actual usage
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            raw = c.chat.completions.with_raw_response.create(model="mock", messages=MSG, max_tokens=500,
                                                              user="alice")
            break
        except openai.RateLimitError:
            time.sleep(0.05)
    used = usage.prompt_tokens + usage.completion_tokens
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) <= 1000 - used - reserved + 1
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) >= 1000 - used - reserved - 2  # refill since
    # bigger than the whole bucket: refused outright, no Retry-After
    with pytest.raises(openai.RateLimitError) as err:
        c.chat.completions.create(model="mock", messages=MSG, max_tokens=5000, user="bob")
    assert "retry-after" not in err.value.response.headers and "1000 tokens per minute" in err.value.message
    # a different user has a bucket of its own
    c.chat.completions.create(model="mock", messages=MSG, max_tokens=500, user="carol")


def test_streams_carry_the_headers_and_settle_when_they_end(gateway_server: Any) -> None:
    server = gateway_server(config([{"scope": "ip", "requests_per_minute": 100, "tokens_per_minute": 5000}]))
    records = Records()
    server.gateway.sinks.append(records)
    c = client(server)
    with c.chat.completions.with_streaming_response.create(model="mock", messages=MSG, stream=True,
                                                           max_tokens=50) as resp:
        assert resp.headers["x-ratelimit-limit-requests"] == "100"
        assert resp.headers["x-ratelimit-limit-tokens"] == "5000"
        assert "".join(ch.choices[0].delta.content or "" for ch in resp.parse() if ch.choices)
    rec = records.seen[-1]
    assert rec.client_ip == "127.0.0.1" and rec.facts["rate_limit"]["decision"] == "allow"
    stage = server.gateway.chain.stages[0]
    assert stage.name == "rate_limit" and stage.pending == {}  # settled and forgotten


def test_without_rate_limits_there_is_no_stage_and_no_headers(gateway_server: Any) -> None:
    server = gateway_server(config([]))
    assert "rate_limit" not in server.gateway.chain.names
    raw = client(server).chat.completions.with_raw_response.create(model="mock", messages=MSG)
    assert not [h for h in raw.headers if h.startswith("x-ratelimit")]

"""usage.estimated_cost on every answer and the record's cost fact, through the in-process gateway."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import openai
import pytest

from deployments.spend.cost_stage import splice_cost
from tests.support.gateway_server import GatewayServer

M = 1e-6
# the mock counts words: "one two three four" is 4 prompt tokens; the reply "Mock reply to: ..." 7 tokens
PROMPT = "one two three four"
COST = 4 * 100 * M + 7 * 300 * M  # at the config price below


@pytest.fixture(scope="module")
def server() -> Iterator[GatewayServer]:
    s = GatewayServer({
        "gateway": {"api_keys": [{"id": "app", "key": "sk-app"}], "admin_keys": [{"id": "ops", "key": "sk-ops"}]},
        "providers": {"m": {"type": "mock"}, "unpriced": {"type": "mock"}},
        "models": {"mock": "m", "other": {"provider": "unpriced", "model": "x"}},
        "pricing": {"m": {"*": {"input": 100, "output": 300}}},
        "cache": {"enabled": False, "mode": "exact"},
    }).start()
    yield s
    s.stop()


def _client(s: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=s.base_url, api_key="sk-app", max_retries=0)


def _stored(s: GatewayServer, request_id: str) -> dict:
    async def get() -> dict:
        for _ in range(200):
            row = await s.gateway.records.get(request_id)
            if row is not None:
                return row
            await asyncio.sleep(0.02)
        raise AssertionError(f"record {request_id} not stored")
    return asyncio.run(get())


def test_a_json_answer_carries_its_cost_and_the_record_the_fact(server: GatewayServer) -> None:
    raw = _client(server).chat.completions.with_raw_response.create(
        model="mock", messages=[{"role": "user", "content": PROMPT}], extra_headers={"x-request-id": "cost-json"})
    reply = raw.parse()
    assert reply.usage.prompt_tokens == 4 and reply.usage.completion_tokens == 7
    assert reply.usage.model_extra["estimated_cost"] == pytest.approx(COST)
    fact = _stored(server, "cost-json")["facts"]["cost"]
    assert fact == {"usd": pytest.approx(COST), "source": "config"}


def test_the_final_usage_chunk_of_a_stream_carries_the_cost(server: GatewayServer) -> None:
    chunks = list(_client(server).chat.completions.create(
        model="mock", messages=[{"role": "user", "content": PROMPT}], stream=True,
        stream_options={"include_usage": True}, extra_headers={"x-request-id": "cost-stream"}))
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].model_extra["estimated_cost"] == pytest.approx(COST)
    assert _stored(server, "cost-stream")["facts"]["cost"]["usd"] == pytest.approx(COST)


def test_a_stream_without_the_usage_chunk_still_records_its_cost(server: GatewayServer) -> None:
    list(_client(server).chat.completions.create(
        model="mock", messages=[{"role": "user", "content": PROMPT}], stream=True,
        extra_headers={"x-request-id": "cost-stream-nousage"}))
    assert _stored(server, "cost-stream-nousage")["facts"]["cost"]["usd"] == pytest.approx(COST)


def test_a_cache_hit_costs_nothing_and_records_the_saving(server: GatewayServer) -> None:
    client = _client(server)
    body = {"model": "mock", "messages": [{"role": "user", "content": PROMPT + " cached"}], "extra_body": {"cache": True}}
    first = client.chat.completions.create(**body, extra_headers={"x-request-id": "cost-miss"})
    hit = client.chat.completions.with_raw_response.create(**body, extra_headers={"x-request-id": "cost-hit"})
    assert hit.headers["x-raygate-cache"] == "HIT"
    assert hit.parse().usage.model_extra["estimated_cost"] == 0.0
    paid = first.usage.model_extra["estimated_cost"]
    assert paid == pytest.approx(5 * 100 * M + 8 * 300 * M)
    assert _stored(server, "cost-hit")["facts"]["cost"] == {"usd": 0.0, "saved_usd": pytest.approx(paid)}


def test_an_unknown_price_is_null_and_counted(server: GatewayServer) -> None:
    reply = _client(server).chat.completions.create(model="other", messages=[{"role": "user", "content": PROMPT}],
                                                    extra_headers={"x-request-id": "cost-unknown"})
    assert reply.usage.model_extra["estimated_cost"] is None
    assert _stored(server, "cost-unknown")["facts"]["cost"]["usd"] is None
    metrics = httpx.get(server.url + "/metrics").text
    assert 'raygate_cost_unknown_total{provider="unpriced",model="x"} 1' in metrics
    assert 'raygate_spend_total{provider="m",model="mock"}' in metrics


def test_embeddings_carry_their_cost(server: GatewayServer) -> None:
    raw = httpx.post(server.base_url + "/embeddings", json={"model": "mock", "input": "a b c"},
                     headers={"authorization": "Bearer sk-app"})
    assert raw.status_code == 200
    usage = raw.json()["usage"]
    assert usage["estimated_cost"] == pytest.approx(usage["prompt_tokens"] * 100 * M)


def test_splice_handles_spacing_and_empty_usage() -> None:
    assert splice_cost(b'{"a":1,"usage": {"prompt_tokens": 3}}', 0.5) == \
        b'{"a":1,"usage": {"estimated_cost":0.5,"prompt_tokens": 3}}'
    assert splice_cost(b'{"usage":{}}', None) == b'{"usage":{"estimated_cost":null}}'
    assert splice_cost(b'{"usage":null}', 1.0) == b'{"usage":null}'

"""The request lifecycle without Ray: the chain's order, and one finished record for every way a request ends.

The chain tests use stand-in stages; the record tests run the real HttpApp + Gateway in-process
(tests/support/gateway_server.py) behind the official openai SDK, with a sink that keeps every
finished record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from serve_app.chain import build_chain
from serve_app.lifecycle import Chain, Exchange, Reply, RequestRecord, Stage, submit_all, usage_counts
from tests.support.gateway_server import GatewayServer

KEY = "gw-lifecycle-key"
ADMIN = "gw-lifecycle-admin"
MSG = [{"role": "user", "content": "hello lifecycle"}]


# -- the chain --------------------------------------------------------------------------------------
class Step(Stage):
    def __init__(self, name: str, log: list[str], answer: bool = False, boom: bool = False) -> None:
        self.name, self.log, self.answer, self.boom = name, log, answer, boom

    async def before(self, ex: Exchange) -> Any:
        self.log.append(f"{self.name}.before")
        if self.boom:
            raise RuntimeError(self.name)
        return Reply(b"from " + self.name.encode(), {}) if self.answer else None

    async def after(self, ex: Exchange, answer: Any) -> Any:
        self.log.append(f"{self.name}.after")
        answer.headers[self.name] = "1"
        return answer


class BeforeOnly(Stage):
    name = "plain"

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def before(self, ex: Exchange) -> Any:
        self.log.append("plain.before")
        return None


def _exchange() -> Exchange:
    return Exchange(RequestRecord("r1"), {"model": "m"}, "chat", False)


def _upstream(log: list[str]) -> Any:
    async def call(ex: Exchange) -> Reply:
        log.append("upstream")
        return Reply(b"upstream", {})
    return call


async def test_before_in_order_after_in_reverse() -> None:
    log: list[str] = []
    chain = Chain([Step("a", log), BeforeOnly(log), Step("b", log)])
    answer = await chain.run(_exchange(), _upstream(log))
    assert log == ["a.before", "plain.before", "b.before", "upstream", "b.after", "a.after"]
    assert answer.body == b"upstream" and answer.headers == {"b": "1", "a": "1"}


async def test_a_stage_that_answers_skips_the_call_and_later_stages() -> None:
    log: list[str] = []
    chain = Chain([Step("outer", log), Step("hit", log, answer=True), Step("inner", log)])
    answer = await chain.run(_exchange(), _upstream(log))
    assert log == ["outer.before", "hit.before", "outer.after"]  # not its own after, not inner's
    assert answer.body == b"from hit" and answer.headers == {"outer": "1"}


async def test_a_stage_that_raises_stops_the_chain() -> None:
    log: list[str] = []
    chain = Chain([Step("a", log), Step("bad", log, boom=True), Step("c", log)])
    with pytest.raises(RuntimeError, match="bad"):
        await chain.run(_exchange(), _upstream(log))
    assert log == ["a.before", "bad.before"]


def test_an_absent_stage_is_not_in_the_chain() -> None:
    from serve_app.config import parse_config

    cfg = parse_config({"providers": {"m": {"type": "mock"}}})
    assert build_chain(cfg, {"router": object(), "cache": None}).names == ["route"]
    assert build_chain(cfg, {"router": object(), "cache": object()}).names == ["route", "cache"]


def test_a_broken_sink_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def submit(self, rec: RequestRecord) -> None:
            raise ValueError("disk on fire")

    kept: list[RequestRecord] = []

    class Keep:
        def submit(self, rec: RequestRecord) -> None:
            kept.append(rec)

    rec = RequestRecord("r2")
    submit_all([Broken(), Keep()], rec)
    assert kept == [rec] and "disk on fire" in caplog.text


def test_usage_counts_by_kind() -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17,
             "prompt_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 2},
             "completion_tokens_details": {"reasoning_tokens": 3}}
    assert usage_counts(usage) == {"input": 10, "cached_input": 4, "cache_write": 2, "output": 7, "reasoning": 3}
    assert usage_counts({"prompt_tokens": 5, "total_tokens": 5}) == {
        "input": 5, "cached_input": 0, "cache_write": 0, "output": 0, "reasoning": 0}
    assert usage_counts(None) is None


def test_a_record_finishes_once() -> None:
    rec = RequestRecord("r3")
    assert rec.close(200) is True
    assert rec.close(500) is False and rec.status == 200


# -- every way a request ends: exactly one record ----------------------------------------------------
class Kept:
    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def submit(self, rec: RequestRecord) -> None:
        self.records.append(rec)

    def one(self, request_id: str, wait: float = 5.0) -> RequestRecord:
        deadline = time.time() + wait
        while time.time() < deadline:
            found = [r for r in self.records if r.request_id == request_id]
            if found:
                time.sleep(0.05)  # a second finish would land now
                found = [r for r in self.records if r.request_id == request_id]
                assert len(found) == 1, f"{len(found)} records for {request_id}"
                return found[0]
            time.sleep(0.01)
        raise AssertionError(f"no record for {request_id}")


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[GatewayServer, Kept]]:
    config = {
        "gateway": {"api_keys": [{"id": "team-a", "key": KEY}], "admin_keys": [{"id": "ops", "key": ADMIN}],
                    "trusted_proxies": ["127.0.0.1"]},
        "providers": {"mock": {"type": "mock"}, "slow": {"type": "mock", "chunk_delay_ms": 300}},
        "default_provider": "mock",
        "cache": {"enabled": False},
    }
    server = GatewayServer(config).start()
    kept = Kept()
    server.gateway.sinks.append(kept)
    yield server, kept
    server.stop()


@pytest.fixture
def client(served: tuple[GatewayServer, Kept]) -> openai.OpenAI:
    return openai.OpenAI(base_url=served[0].base_url, api_key=KEY, max_retries=0, _strict_response_validation=True)


def _rid(name: str) -> dict[str, str]:
    return {"x-request-id": f"{name}-{time.time_ns()}"}


def test_success(client: openai.OpenAI, served: tuple[GatewayServer, Kept]) -> None:
    h = _rid("ok")
    out = client.chat.completions.create(model="mock", messages=MSG, extra_headers={
        **h, "x-raygate-metadata": '{"trace_id": "t-1", "user_id": "u-9"}', "x-forwarded-for": "203.0.113.7"})
    rec = served[1].one(h["x-request-id"])
    assert (rec.kind, rec.via, rec.status, rec.stream) == ("chat", "http", 200, False)
    assert (rec.provider, rec.model, rec.requested_model, rec.key_id) == ("mock", "mock", "mock", "team-a")
    assert rec.metadata == {"trace_id": "t-1", "user_id": "u-9"}
    assert rec.client_ip == "203.0.113.7"  # the peer (127.0.0.1) is a trusted proxy
    assert rec.usage == {"input": out.usage.prompt_tokens, "cached_input": 0, "cache_write": 0,
                         "output": out.usage.completion_tokens, "reasoning": 0}
    assert [(a["provider"], a["status"]) for a in rec.attempts] == [("mock", 200)]
    assert rec.error_type is None and rec.cache is None
    assert rec.latency_ms is not None and rec.latency_ms > 0 and rec.done_at >= rec.received_at


def test_stream_success(client: openai.OpenAI, served: tuple[GatewayServer, Kept]) -> None:
    h = _rid("stream")
    chunks = list(client.chat.completions.create(model="mock", messages=MSG, stream=True, extra_headers=h))
    rec = served[1].one(h["x-request-id"])
    assert rec.status == 200 and rec.stream is True and len(chunks) > 1
    assert rec.ttft_ms is not None and rec.ttft_ms <= rec.latency_ms
    assert rec.usage is not None and rec.usage["output"] > 0  # known even though the client did not ask


def test_upstream_error_before_the_first_byte(client: openai.OpenAI, served: tuple[GatewayServer, Kept]) -> None:
    h = _rid("e503")
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="mock", messages=MSG, stream=True,
                                       extra_headers={**h, "x-raygate-mock-fail": "503"})
    rec = served[1].one(h["x-request-id"])
    assert rec.status == 503 and rec.provider == "mock" and rec.error_message
    assert [a["status"] for a in rec.attempts] == [503]


def test_error_event_mid_stream(client: openai.OpenAI, served: tuple[GatewayServer, Kept]) -> None:
    h = _rid("cut")
    with pytest.raises(openai.APIError) as info:
        for _ in client.chat.completions.create(model="mock", messages=MSG, stream=True,
                                                extra_headers={**h, "x-raygate-mock-fail": "cut"}):
            pass
    rec = served[1].one(h["x-request-id"])
    assert rec.status >= 500 and rec.first_byte_at is not None
    assert rec.error_code is not None and rec.error_code in str(info.value.body or info.value)


def test_client_disconnect_mid_stream(served: tuple[GatewayServer, Kept]) -> None:
    h = _rid("gone")
    body = {"model": "slow/mock", "messages": [{"role": "user", "content": "one two three four five six"}],
            "stream": True}
    with httpx.Client(timeout=10) as http:
        with http.stream("POST", served[0].base_url + "/chat/completions", json=body,
                         headers={**h, "authorization": f"Bearer {KEY}"}) as resp:
            next(resp.iter_raw())  # the first chunk, then hang up
    rec = served[1].one(h["x-request-id"])
    assert rec.status == 499 and rec.provider == "slow"


def test_bad_json_and_bad_key_are_recorded(served: tuple[GatewayServer, Kept]) -> None:
    with httpx.Client(timeout=10) as http:
        h1, h2 = _rid("badjson"), _rid("badkey")
        r1 = http.post(served[0].base_url + "/chat/completions", content=b"{nope",
                       headers={**h1, "authorization": f"Bearer {KEY}", "content-type": "application/json"})
        r2 = http.post(served[0].base_url + "/chat/completions", json={"model": "mock", "messages": MSG},
                       headers={**h2, "authorization": "Bearer wrong"})
    assert (r1.status_code, r2.status_code) == (400, 401)
    bad_json, bad_key = served[1].one(h1["x-request-id"]), served[1].one(h2["x-request-id"])
    assert (bad_json.status, bad_json.error_code) == (400, "invalid_json")
    assert (bad_key.status, bad_key.error_code, bad_key.key_id) == (401, "invalid_api_key", None)


def test_requests_that_are_not_calls_leave_no_record(served: tuple[GatewayServer, Kept]) -> None:
    before = len(served[1].records)
    with httpx.Client(timeout=10) as http:
        http.get(served[0].url + "/health")
        http.get(served[0].base_url + "/models", headers={"authorization": f"Bearer {KEY}"})
        http.get(served[0].base_url + "/nope")
    time.sleep(0.1)
    assert len(served[1].records) == before


def test_embeddings(client: openai.OpenAI, served: tuple[GatewayServer, Kept]) -> None:
    h = _rid("emb")
    client.embeddings.create(model="mock", input=["a b c"], encoding_format="float", extra_headers=h)
    rec = served[1].one(h["x-request-id"])
    assert (rec.kind, rec.status, rec.provider) == ("embeddings", 200, "mock") and rec.usage["input"] > 0


def test_cache_hit(client: openai.OpenAI, served: tuple[GatewayServer, Kept]) -> None:
    opt_in = {"cache": {"mode": "exact", "ttl": 60}}
    first, second = _rid("miss"), _rid("hit")
    question = [{"role": "user", "content": f"cache me {time.time_ns()}"}]
    client.chat.completions.create(model="mock", messages=question, extra_body=opt_in, extra_headers=first)
    client.chat.completions.create(model="mock", messages=question, extra_body=opt_in, extra_headers=second)
    miss, hit = served[1].one(first["x-request-id"]), served[1].one(second["x-request-id"])
    assert miss.cache == "miss" and len(miss.attempts) == 1
    assert (hit.cache, hit.route, hit.provider, hit.status, hit.attempts) == ("exact", "cache", "mock", 200, [])


def test_a_mixed_burst_gives_one_record_per_request(served: tuple[GatewayServer, Kept]) -> None:
    async def burst() -> list[str]:
        client = openai.AsyncOpenAI(base_url=served[0].base_url, api_key=KEY, max_retries=0)
        ids: list[str] = []

        async def one(i: int) -> None:
            h = _rid(f"burst{i}")
            ids.append(h["x-request-id"])
            try:
                if i % 3 == 0:
                    stream = await client.chat.completions.create(model="mock", messages=MSG, stream=True,
                                                                  extra_headers=h)
                    async for _ in stream:
                        pass
                elif i % 3 == 1:
                    await client.chat.completions.create(model="mock", messages=MSG, extra_headers=h)
                else:
                    await client.chat.completions.create(model="mock", messages=MSG,
                                                         extra_headers={**h, "x-raygate-mock-fail": "429"})
            except openai.APIError:
                pass

        await asyncio.gather(*(one(i) for i in range(30)))
        await client.close()
        return ids

    ids = asyncio.run(burst())
    records = [served[1].one(i) for i in ids]
    assert sorted(r.status for r in records) == sorted([200] * 20 + [429] * 10)


def test_a_stored_record_is_read_back_by_admins(client: openai.OpenAI, served: tuple[GatewayServer, Kept]) -> None:
    h = _rid("stored")
    url = served[0].base_url + "/admin/logs/" + h["x-request-id"]
    admin = {"authorization": f"Bearer {ADMIN}"}
    with httpx.Client(timeout=10) as http:
        missing = http.get(url, headers=admin)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "log_not_found"
        client.chat.completions.create(model="mock", messages=MSG, extra_headers={
            **h, "x-raygate-metadata": '{"session_id": "s-1"}'})
        kept = served[1].one(h["x-request-id"])
        deadline = time.time() + 10
        while (got := http.get(url, headers=admin)).status_code == 404 and time.time() < deadline:
            time.sleep(0.05)
        assert got.status_code == 200, got.text
        assert got.json() == {**kept.to_dict(), "metadata": {"session_id": "s-1"}}
        assert http.get(url, headers={"authorization": f"Bearer {KEY}"}).status_code == 401  # not an admin key


def test_admin_calls_and_denied_admin_calls_are_audited(served: tuple[GatewayServer, Kept]) -> None:
    events: list[dict[str, Any]] = []

    class Keep:
        def submit(self, event: dict[str, Any]) -> None:
            events.append(event)

    served[0].gateway.auditors.append(Keep())
    with httpx.Client(timeout=10) as http:
        ok = http.post(served[0].base_url + "/admin/cache/invalidate", json={"all": True},
                       headers={"authorization": f"Bearer {ADMIN}"})
        denied = http.post(served[0].base_url + "/admin/cache/invalidate", json={"all": True},
                           headers={"authorization": "Bearer nope"})
    assert (ok.status_code, denied.status_code) == (200, 401)
    assert [(e["actor"], e["action"], e["outcome"]) for e in events] == [
        ("ops", "POST /v1/admin/cache/invalidate", "ok"), (None, "POST /v1/admin/cache/invalidate", "denied 401")]
    assert events[0]["body"] == {"all": True} and events[1]["client_ip"] == "127.0.0.1"

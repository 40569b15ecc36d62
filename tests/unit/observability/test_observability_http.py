"""Observability end to end, without Ray: a burst of mixed requests through the real HttpApp + Gateway
(official openai SDK as the client), then the logs API, /metrics, the OTLP traces and the audit log.

The burst: successes (two keys, one storing bodies), upstream errors, a cache hit, a guardrail block
(a stand-in guardrail stage, as the guardrails work will add one: a verdict fact, a mask callable),
a stream, and calls that carry the client's W3C `traceparent` to an upstream that records headers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from serve_app.errors import GatewayError
from serve_app.lifecycle import Chain, Exchange, Stage
from tests.support.gateway_server import GatewayServer
from tests.support.mockservers.recording_openai import RecordingUpstream
from tests.support.otlp_receiver import OtlpReceiver

KEY_A, KEY_B, ADMIN = "gw-obs-key-a", "gw-obs-key-b", "gw-obs-admin"
CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
SERVER, CLIENT = 2, 3  # OTLP span kinds


class StandInGuardrail(Stage):
    """What the guardrails stage will do: a verdict fact, a block (400), a mask for stored bodies."""

    name = "guardrails"

    async def before(self, ex: Exchange) -> Any:
        text = " ".join(str(m.get("content")) for m in ex.body.get("messages", []))
        ex.state["mask"] = lambda s: s.replace("555-0199", "[PHONE]")
        if "BLOCKME" in text:
            ex.record.fact("guardrails", [{"name": "topic", "verdict": "block"}])
            raise GatewayError(400, "blocked by guardrail topic", code="content_filter")
        ex.record.fact("guardrails", [{"name": "topic", "verdict": "pass"}])
        return None


@pytest.fixture(scope="module")
def env() -> Iterator[dict[str, Any]]:
    receiver = OtlpReceiver().start()
    upstream = RecordingUpstream().start()
    config = {
        "gateway": {
            "api_keys": [{"id": "team-a", "key": KEY_A}, {"id": "team-b", "key": KEY_B}],
            "admin_keys": [{"id": "ops", "key": ADMIN}],
        },
        "providers": {
            "mock": {"type": "mock"},
            "rec": {"type": "openai", "base_url": upstream.base_url, "api_key": "sk-upstream-secret-1"},
        },
        "default_provider": "mock",
        "cache": {"enabled": True, "mode": "exact"},
        "pricing": {"mock": {"*": {"input": 1000, "output": 2000}}, "rec": {"*": {"input": 500, "output": 500}}},
        "observability": {
            "logging": {"keys": {"team-a": {"bodies": True}}, "max_body_bytes": 300},
            "tracing": {"enabled": True, "endpoint": receiver.endpoint, "export_interval_ms": 50},
        },
    }
    server = GatewayServer(config)
    chain = server.gateway.chain
    stages = list(chain.stages)
    stages.insert(1, StandInGuardrail())  # after bodies, before route
    server.gateway.chain = Chain(stages, chain.observer)
    server.start()
    yield {"server": server, "receiver": receiver, "upstream": upstream, "burst": run_burst(server, upstream)}
    server.stop()
    upstream.stop()
    receiver.stop()


def _client(server: GatewayServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0)


def run_burst(server: GatewayServer, upstream: RecordingUpstream) -> dict[str, dict[str, Any]]:
    """Every request of the burst by request id: what it was and what the client saw."""
    a, b = _client(server, KEY_A), _client(server, KEY_B)
    burst: dict[str, dict[str, Any]] = {}

    def call(
        name: str,
        client: openai.OpenAI,
        content: str,
        *,
        model: str = "mock",
        stream: bool = False,
        headers: dict[str, str] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        rid = f"obs-{name}-{time.time_ns()}"
        extra = {"x-request-id": rid, **(headers or {})}
        if metadata:
            extra["x-raygate-metadata"] = __import__("json").dumps(metadata)
        status = 200
        try:
            out = client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": content}],
                stream=stream,
                extra_headers=extra,
            )
            if stream:
                list(out)
        except openai.APIStatusError as err:
            status = err.status_code
        burst[rid] = {
            "name": name,
            "status": status,
            "key": "team-a" if client is a else "team-b",
            "metadata": metadata or {},
        }

    for i in range(3):
        call(
            f"ok{i}",
            a,
            f"hello {i}, call 555-0199",
            metadata={"user_id": f"u{i % 2}", "session_id": "s-1", "trace_id": f"app-trace-{i}"},
        )
    call("okb", b, "hello from b", metadata={"user_id": "u9"})
    for i in range(2):
        call(f"err{i}", a, f"fail {i}", headers={"x-raygate-mock-fail": "500"})
    call("miss", b, "cache me")
    call("hit", b, "cache me")
    call("block", a, "please BLOCKME now")
    call("stream", a, "stream me", stream=True)
    call("traced", a, "to the recording upstream", model="rec/up-a", headers={"traceparent": TRACEPARENT})
    call(
        "traced-stream",
        a,
        "stream to the recording upstream",
        model="rec/up-a",
        stream=True,
        headers={"traceparent": TRACEPARENT.replace(CLIENT_SPAN, "00f067aa0ba902b7")},
    )
    return burst


def admin_get(server: GatewayServer, path: str, **params: Any) -> httpx.Response:
    return httpx.get(
        server.url + path, params=params, headers={"authorization": f"Bearer {ADMIN}"}, timeout=30
    )


def logs(server: GatewayServer, **params: Any) -> dict[str, Any]:
    resp = admin_get(server, "/v1/admin/logs", **params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _stored(env: dict[str, Any]) -> list[dict[str, Any]]:
    """All stored records, once every request of the burst is stored (writes are batched)."""
    server, burst = env["server"], env["burst"]
    deadline = time.time() + 20
    while True:
        data = logs(server, limit=1000)["data"]
        if {r["request_id"] for r in data} >= set(burst) or time.time() > deadline:
            return data
        time.sleep(0.05)


# -- the logs API --------------------------------------------------------------------------------------------
def test_the_logs_api_returns_exactly_the_burst(env: dict[str, Any]) -> None:
    burst = env["burst"]
    data = _stored(env)
    assert {r["request_id"] for r in data} == set(burst)
    assert [r["received_at"] for r in data] == sorted((r["received_at"] for r in data), reverse=True)
    for r in data:
        sent = burst[r["request_id"]]
        assert r["status"] == sent["status"], sent["name"]
        assert r["key_id"] == sent["key"] and r["metadata"] == sent["metadata"]
    by_name = {burst[r["request_id"]]["name"]: r for r in data}
    assert by_name["err0"]["status"] == 500 and by_name["err0"]["attempts"][0]["status"] == 500
    assert by_name["hit"]["cache"] == "exact" and by_name["miss"]["cache"] == "miss"
    assert by_name["block"]["facts"]["guardrails"] == [{"name": "topic", "verdict": "block"}]
    assert by_name["traced"]["provider"] == "rec"
    # the record names its trace; a request that carried a traceparent is in the client's trace
    assert by_name["traced"]["facts"]["trace"]["trace_id"] == CLIENT_TRACE
    assert by_name["ok0"]["facts"]["trace"]["trace_id"] != CLIENT_TRACE


def test_filters(env: dict[str, Any]) -> None:
    server, burst = env["server"], env["burst"]
    _stored(env)

    def names(**params: Any) -> set[str]:
        return {burst[r["request_id"]]["name"] for r in logs(server, limit=1000, **params)["data"]}

    assert names(status="error") == {"err0", "err1", "block"}
    assert names(status="success") == set(n["name"] for n in burst.values()) - {"err0", "err1", "block"}
    assert names(provider="rec") == {"traced", "traced-stream"}
    assert names(model="mock", key="team-b") == {"okb", "miss", "hit"}
    assert names(user_id="u0") == {"ok0", "ok2"}
    assert names(session_id="s-1") == {"ok0", "ok1", "ok2"}
    assert names(trace_id="app-trace-1") == {"ok1"}
    everything = logs(server, limit=1000)["data"]
    middle = sorted(r["received_at"] for r in everything)[len(everything) // 2]
    newer = {r["request_id"] for r in everything if r["received_at"] >= middle}
    assert {r["request_id"] for r in logs(server, limit=1000, since=middle)["data"]} == newer
    assert {r["request_id"] for r in logs(server, limit=1000, until=middle)["data"]} == (
        {r["request_id"] for r in everything} - newer
    )


def test_pagination_is_stable_and_complete(env: dict[str, Any]) -> None:
    server = env["server"]
    everything = [r["request_id"] for r in _stored(env)]
    pages, cursor = [], None
    while True:
        page = logs(server, limit=3, **({"cursor": cursor} if cursor else {}))
        pages.append([r["request_id"] for r in page["data"]])
        assert len(page["data"]) <= 3
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert [rid for p in pages for rid in p] == everything  # same order, nothing twice, nothing missed
    assert len(pages) == -(-len(everything) // 3)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"status": "bad"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"cursor": "!!!"}, "cursor"),
        ({"colour": "red"}, "colour"),
        ({"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "until"),
        ({"provider": ""}, "provider"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_parameter(
    env: dict[str, Any], params: dict[str, str], param: str
) -> None:
    resp = admin_get(env["server"], "/v1/admin/logs", **params)
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == param and resp.json()["error"]["type"] == "invalid_request_error"


def test_the_logs_api_is_for_admin_keys_only(env: dict[str, Any]) -> None:
    resp = httpx.get(env["server"].url + "/v1/admin/logs", headers={"authorization": f"Bearer {KEY_A}"})
    assert resp.status_code in (401, 403)
    resp = httpx.post(
        env["server"].url + "/v1/admin/logs", json={}, headers={"authorization": f"Bearer {ADMIN}"}
    )
    assert resp.status_code == 405


def test_bodies_only_for_keys_that_log_them_masked_and_cut(env: dict[str, Any]) -> None:
    burst = env["burst"]
    by_name = {burst[r["request_id"]]["name"]: r for r in _stored(env)}
    ok = by_name["ok0"]["facts"]["bodies"]
    assert "[PHONE]" in ok["request"]["text"] and "555-0199" not in ok["request"]["text"]
    assert '"hello 0, call [PHONE]"' in ok["request"]["text"] and ok["request"]["truncated"] is False
    response = ok["response"]
    assert response["truncated"] is True and response["bytes"] > 300  # the completion JSON is longer
    assert len(response["text"].encode()) <= 300 and response["text"].startswith('{"id":')
    stream = by_name["stream"]["facts"]["bodies"]["response"]
    assert stream["text"].startswith("data: ") and stream["bytes"] > 0
    assert "bodies" not in by_name["okb"]["facts"]  # team-b does not log bodies
    assert "bodies" not in by_name["block"]["facts"]  # no answer: nothing stored


# -- /metrics ------------------------------------------------------------------------------------------------
def _metrics(server: GatewayServer) -> dict[str, float]:
    text = httpx.get(server.url + "/metrics").text
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_metrics_match_the_burst(env: dict[str, Any]) -> None:
    _stored(env)
    m = _metrics(env["server"])
    # 12 requests: ok0-2, okb, miss, hit, stream (mock); err0-1 (mock, 500); block (400);
    # traced, traced-stream (rec)
    assert m['raygate_requests_total{provider="mock",model="mock",status="200"}'] == 7
    assert m['raygate_requests_total{provider="mock",model="mock",status="500"}'] == 2
    assert m['raygate_requests_total{provider="",model="",status="400"}'] == 1  # the block, before routing
    assert m['raygate_requests_total{provider="rec",model="up-a",status="200"}'] == 2
    assert m['raygate_cache_hits_total{kind="exact"}'] == 1
    assert m['raygate_guardrail_verdicts_total{guardrail="topic",verdict="block"}'] == 1
    assert m['raygate_guardrail_verdicts_total{guardrail="topic",verdict="pass"}'] == 11
    spent: dict[tuple[str, str], float] = {}  # the cost stage's facts, as stored
    for r in _stored(env):
        usd = ((r.get("facts") or {}).get("cost") or {}).get("usd")
        if usd:
            spent[(r["provider"], r["model"])] = spent.get((r["provider"], r["model"]), 0.0) + usd
    assert set(spent) == {("mock", "mock"), ("rec", "up-a")}
    for (provider, model), usd in spent.items():
        assert m[f'raygate_spend_total{{provider="{provider}",model="{model}"}}'] == pytest.approx(usd)
    assert m['raygate_request_errors_total{type="mock_error"}'] == 2  # the upstream's error type
    assert m['raygate_request_errors_total{type="invalid_request_error"}'] == 1
    assert m["raygate_in_flight_requests"] == 0
    assert m['raygate_stage_duration_seconds_count{stage="guardrails",phase="before"}'] == 12
    assert m['raygate_stage_duration_seconds_count{stage="route",phase="before"}'] == 11
    assert m['raygate_stage_duration_seconds_count{stage="bodies",phase="after"}'] == 9  # every answered one
    assert m['raygate_upstream_attempt_duration_seconds_count{provider="mock",outcome="success"}'] == 6
    assert m['raygate_upstream_attempt_duration_seconds_count{provider="mock",outcome="server_error"}'] == 2
    assert m['raygate_time_to_first_token_seconds_count{provider="rec",model="up-a"}'] == 2
    assert m['raygate_tokens_total{type="input",model="up-a"}'] == 6  # 3 + 3 from the recording upstream


# -- traces --------------------------------------------------------------------------------------------------
def _request_spans(traces: dict[str, list[dict[str, Any]]], request_id: str) -> tuple[dict[str, Any], list]:
    """A request's root span and its children; outside the client's shared trace, nothing else is there."""
    roots = [
        s
        for spans in traces.values()
        for s in spans
        if s["name"] == "raygate chat" and s["attributes"].get("raygate.request_id") == request_id
    ]
    assert len(roots) == 1, f"{len(roots)} root spans for {request_id}"
    root = roots[0]
    trace = traces[root["trace_id"]]
    children = [s for s in trace if s["parent_span_id"] == root["span_id"]]
    if root["trace_id"] != CLIENT_TRACE:
        assert len(trace) == 1 + len(
            children
        )  # every other span is a child of the root: one trace per request
    return root, children


def test_one_trace_per_request_with_stage_attempt_and_stream_spans(env: dict[str, Any]) -> None:
    burst, receiver = env["burst"], env["receiver"]
    _stored(env)
    # a request's spans all end before its root span, so once every root is in, the traces are complete
    traces = receiver.wait_for(
        lambda t: len([s for spans in t.values() for s in spans if s["name"] == "raygate chat"]) >= len(burst)
    )
    roots = [s for spans in traces.values() for s in spans if s["name"] == "raygate chat"]
    assert sorted(s["attributes"]["raygate.request_id"] for s in roots) == sorted(burst)
    for rid, sent in burst.items():
        root, spans = _request_spans(traces, rid)
        assert root["kind"] == SERVER and root["attributes"]["http.response.status_code"] == sent["status"]
        children = {s["name"] for s in spans}
        assert len(children) == len(spans)  # one span per stage phase, attempt, stream
        name = sent["name"]
        if name == "block":
            assert children == {"bodies.before", "guardrails.before"} and root["status"] == 2  # ERROR
        elif name == "hit":
            assert children == {
                "bodies.before",
                "guardrails.before",
                "cost.before",
                "route.before",
                "cache.before",
                "cost.after",
                "bodies.after",
            }
        else:
            attempt_names = {c for c in children if c.startswith("chat ")}
            assert attempt_names == {"chat up-a" if name.startswith("traced") else "chat mock"}
            afters = {"cache.after", "cost.after", "bodies.after"} if sent["status"] == 200 else set()
            assert (
                children - attempt_names - {"stream"}
                == {"bodies.before", "guardrails.before", "cost.before", "route.before", "cache.before"} | afters
            )
            assert ("stream" in children) == (name in ("stream", "traced-stream"))
            attempt = next(s for s in spans if s["name"] in attempt_names)
            assert attempt["kind"] == CLIENT and attempt["attributes"]["gen_ai.operation.name"] == "chat"
            assert attempt["attributes"]["gen_ai.system"] == (
                "openai" if name.startswith("traced") else "mock"
            )
            assert attempt["attributes"]["http.response.status_code"] == sent["status"]
        if sent["status"] == 200 and name != "hit":
            assert root["attributes"]["gen_ai.usage.output_tokens"] > 0
            assert root["attributes"]["gen_ai.response.model"] in ("mock", "up-a")
        if sent["metadata"].get("trace_id"):
            assert root["attributes"]["raygate.metadata.trace_id"] == sent["metadata"]["trace_id"]


def test_the_clients_traceparent_is_the_parent_and_goes_upstream(env: dict[str, Any]) -> None:
    burst, receiver, upstream = env["burst"], env["receiver"], env["upstream"]
    traced = {sent["name"]: rid for rid, sent in burst.items() if sent["name"].startswith("traced")}
    traces = receiver.wait_for(lambda t: CLIENT_TRACE in t and len(t[CLIENT_TRACE]) >= 12)
    spans = traces[CLIENT_TRACE]
    roots = {s["attributes"]["raygate.request_id"]: s for s in spans if s["name"] == "raygate chat"}
    assert set(roots) == set(traced.values())  # both requests joined the client's trace
    assert roots[traced["traced"]]["parent_span_id"] == CLIENT_SPAN
    assert roots[traced["traced-stream"]]["parent_span_id"] == "00f067aa0ba902b7"
    sent = [{k.lower(): v for k, v in r["headers"].items()} for r in upstream.requests]
    upstream_parents = [h["traceparent"] for h in sent]
    attempts = [s for s in spans if s["name"] == "chat up-a"]
    assert sorted(upstream_parents) == sorted(f"00-{CLIENT_TRACE}-{a['span_id']}-01" for a in attempts)
    assert all("sk-upstream-secret-1" not in str(s["attributes"]) for s in spans)


# -- the audit log -------------------------------------------------------------------------------------------
def test_the_audit_log_records_an_invalidation_and_a_denied_call(env: dict[str, Any]) -> None:
    server = env["server"]
    resp = httpx.post(
        server.url + "/v1/admin/cache/invalidate",
        json={"all": True},
        headers={"authorization": f"Bearer {ADMIN}"},
    )
    assert resp.status_code == 200, resp.text
    denied = httpx.post(
        server.url + "/v1/admin/cache/invalidate",
        json={"all": True},
        headers={"authorization": "Bearer sk-wrong-admin-key"},
    )
    assert denied.status_code in (401, 403)
    deadline = time.time() + 20
    while True:
        events = admin_get(server, "/v1/admin/audit").json()["data"]
        if len(events) >= 2 or time.time() > deadline:
            break
        time.sleep(0.05)
    invalidation = next(e for e in events if e["outcome"] == "ok")
    assert invalidation["actor"] == "ops" and invalidation["action"] == "POST /v1/admin/cache/invalidate"
    assert invalidation["body"] == {"all": True} and invalidation["client_ip"] == "127.0.0.1"
    refused = next(e for e in events if e["outcome"].startswith("denied"))
    assert refused["actor"] is None and "sk-wrong-admin-key" not in str(events)
    assert events[0]["id"] > events[-1]["id"]  # newest first
    only_ok = admin_get(server, "/v1/admin/audit", outcome="ok", actor="ops").json()["data"]
    assert [e["id"] for e in only_ok] == [invalidation["id"]]
    assert admin_get(server, "/v1/admin/audit", outcome="maybe").status_code == 400
    for method in ("POST", "PUT", "DELETE", "PATCH"):  # append-only: no route changes a record
        r = httpx.request(
            method, server.url + "/v1/admin/audit", json={}, headers={"authorization": f"Bearer {ADMIN}"}
        )
        assert r.status_code == 405

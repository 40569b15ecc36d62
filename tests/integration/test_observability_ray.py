"""Observability on a real Serve app with providers as their own deployments: one trace per request whose
spans cross from the ingress replica into the Provider deployment (context carried in the CallContext),
the upstream sees the deployment span's traceparent, and the logs and audit APIs answer through the
writer actor."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.mockservers.recording_openai import RecordingUpstream
from tests.support.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.ray

KEY, ADMIN = "gw-obs-ray-key", "gw-obs-ray-admin"
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CLIENT_TRACE}-00f067aa0ba902b7-01"
SERVER, CLIENT = 2, 3


@pytest.fixture(scope="module")
def parts() -> Iterator[tuple[OtlpReceiver, RecordingUpstream]]:
    receiver, upstream = OtlpReceiver().start(), RecordingUpstream().start()
    yield receiver, upstream
    upstream.stop()
    receiver.stop()


def test_spans_cross_into_the_provider_deployment(
    deploy_gateway: Any, parts: tuple[OtlpReceiver, Any]
) -> None:
    receiver, upstream = parts
    app = deploy_gateway(
        {
            "gateway": {
                "api_keys": [{"id": "team-a", "key": KEY}],
                "admin_keys": [{"id": "ops", "key": ADMIN}],
            },
            "providers": {
                "rec": {"type": "openai", "base_url": upstream.base_url, "api_key": "sk-ray-upstream-x"}
            },
            "default_provider": "rec",
            "placement": {"providers": "deployment"},
            "serve": {"ingress_replicas": 1},
            "cache": {"enabled": True},
            "observability": {
                "tracing": {"enabled": True, "endpoint": receiver.endpoint, "export_interval_ms": 100},
                "metrics": {"prefix": "portkey"},
            },
        },
        name="obs-ray",
    )
    client = openai.OpenAI(base_url=app.base_url, api_key=KEY, max_retries=0)
    rids = {f"obs-ray-{kind}-{time.time_ns()}": kind for kind in ("plain", "stream")}
    for rid, kind in rids.items():
        out = client.chat.completions.create(
            model="up-a",
            messages=[{"role": "user", "content": f"hello {kind}"}],
            stream=kind == "stream",
            extra_headers={
                "x-request-id": rid,
                "traceparent": TRACEPARENT,
                "x-raygate-metadata": '{"trace_id": "app-7"}',
            },
        )
        if kind == "stream":
            list(out)
    spans = receiver.wait_for(
        lambda t: (
            len([s for s in t.get(CLIENT_TRACE, ()) if s["name"] in ("raygate chat", "provider rec")]) >= 4
        )
    )[CLIENT_TRACE]
    by_id = {s["span_id"]: s for s in spans}
    roots = [s for s in spans if s["name"] == "raygate chat"]
    assert sorted(r["attributes"]["raygate.request_id"] for r in roots) == sorted(rids)
    served = [s for s in spans if s["name"] == "provider rec"]
    assert len(served) == 2
    headers = [{k.lower(): v for k, v in r["headers"].items()} for r in upstream.requests]
    for span in served:  # provider deployment span -> ingress attempt span -> request root -> client
        assert span["kind"] == SERVER
        attempt = by_id[span["parent_span_id"]]
        assert attempt["name"] == "chat up-a" and attempt["kind"] == CLIENT
        root = by_id[attempt["parent_span_id"]]
        assert root["name"] == "raygate chat" and root["parent_span_id"] == "00f067aa0ba902b7"
        assert f"00-{CLIENT_TRACE}-{span['span_id']}-01" in [h["traceparent"] for h in headers]
    stream_root = next(r for r in roots if rids[r["attributes"]["raygate.request_id"]] == "stream")
    assert any(s["name"] == "stream" and s["parent_span_id"] == stream_root["span_id"] for s in spans)

    admin = {"authorization": f"Bearer {ADMIN}"}
    deadline = time.time() + 30
    while True:  # records reach storage in batches, through the writer actor
        page = httpx.get(f"{app.url}/v1/admin/logs", params={"trace_id": "app-7"}, headers=admin).json()
        if len(page["data"]) == 2 or time.time() > deadline:
            break
        time.sleep(0.1)
    assert {r["request_id"] for r in page["data"]} == set(rids)
    assert all(r["facts"]["trace"]["trace_id"] == CLIENT_TRACE for r in page["data"])
    assert (
        httpx.post(f"{app.url}/v1/admin/cache/invalidate", json={"all": True}, headers=admin).status_code
        == 200
    )
    while True:
        events = httpx.get(f"{app.url}/v1/admin/audit", params={"actor": "ops"}, headers=admin).json()["data"]
        if events or time.time() > deadline:
            break
        time.sleep(0.1)
    assert events[0]["action"] == "POST /v1/admin/cache/invalidate" and events[0]["outcome"] == "ok"
    text = httpx.get(f"{app.url}/metrics").text
    assert (
        'portkey_requests_total{provider="rec",model="up-a",status="200"} 2' in text
        and "raygate_" not in text
    )

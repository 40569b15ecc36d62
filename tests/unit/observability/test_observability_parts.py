"""The observability pieces on their own: config, what is wired when (off costs nothing), the metrics
prefix and label bounds, the separate metrics port, the traceparent checks and the stage observer."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from deployments.observability.config import TracingConfig
from deployments.observability.stage_timing import ChainObserver
from deployments.observability.traceparent import valid_traceparent
from deployments.observability.tracing import Tracing
from serve_app.config import ConfigError, parse_config
from serve_app.ingress import assemble_gateway
from serve_app.lifecycle import Chain, Exchange, Reply, RequestRecord, Stage
from serve_app.metrics import MAX_LABEL_VALUES, InProcessSink, LocalMetrics, RecordMetrics, Snapshot
from tests.support.gateway_server import free_port

BASE = {
    "gateway": {"api_keys": [{"id": "team-a", "key": "k-a"}]},
    "providers": {"m": {"type": "mock"}},
    "default_provider": "m",
    "storage": {"enabled": False},
}


def _config(**observability: Any) -> Any:
    return parse_config({**BASE, "observability": observability}, "gw.yaml")


# -- config --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("section", "path", "reason"),
    [
        (
            {"logging": {"keys": {"nobody": {"bodies": True}}}},
            "observability.logging.keys.nobody",
            "unknown gateway key",
        ),
        (
            {"logging": {"max_body_bytes": 10}},
            "observability.logging.max_body_bytes",
            "greater than or equal",
        ),
        ({"tracing": {"endpoint": "jaeger:4317"}}, "observability.tracing.endpoint", "http:// or https://"),
        ({"tracing": {"sample_rate": 2}}, "observability.tracing.sample_rate", "less than or equal"),
        ({"metrics": {"prefix": "9bad"}}, "observability.metrics.prefix", "Prometheus metric name prefix"),
        ({"metrics": {"port": 8000}}, "observability.metrics.port", "is gateway.port"),
        ({"tracing": {"colour": 1}}, "observability.tracing.colour", "unknown key"),
    ],
)
def test_config_errors_name_file_key_and_reason(section: dict[str, Any], path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        _config(**section)
    assert str(err.value).startswith(f"gw.yaml: {path}: ") and reason in str(err.value)


def test_the_otlp_protocol_follows_the_endpoint() -> None:
    assert TracingConfig(endpoint="http://jaeger:4317").wire == "grpc"
    assert TracingConfig(endpoint="http://jaeger:4318").wire == "http/protobuf"
    assert TracingConfig(endpoint="https://otel.example/v1/traces").wire == "http/protobuf"
    assert TracingConfig(endpoint="http://c:4318", protocol="grpc").wire == "grpc"


def test_exporters_for_both_protocols() -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    from deployments.observability.tracing import make_exporter

    grpc = make_exporter(TracingConfig(endpoint="http://127.0.0.1:4317"))
    http = make_exporter(TracingConfig(endpoint="http://127.0.0.1:4318"))
    assert isinstance(grpc, Grpc) and isinstance(http, Http)
    assert http._endpoint == "http://127.0.0.1:4318/v1/traces"
    grpc.shutdown()
    http.shutdown()


# -- off costs nothing ---------------------------------------------------------------------------------------
def test_tracing_off_wires_nothing_on_the_request_path() -> None:
    gw = assemble_gateway(_config())
    assert gw.executor.tracing is None and not any(isinstance(s, Tracing) for s in gw.sinks)
    assert isinstance(gw.chain.observer, ChainObserver) and gw.chain.observer.tracing is None  # metrics only
    assert "bodies" not in gw.chain.names  # no bodies stage: no key stores bodies
    off = assemble_gateway(_config(metrics={"enabled": False}))
    assert off.chain.observer is None and not any(isinstance(s, RecordMetrics) for s in off.sinks)


def test_tracing_on_wires_the_sink_executor_and_observer() -> None:
    gw = assemble_gateway(
        _config(
            tracing={"enabled": True, "endpoint": "http://127.0.0.1:4318"},
            logging={"keys": {"team-a": {"bodies": True}}},
        )
    )
    try:
        assert isinstance(gw.sinks[0], Tracing) and gw.executor.tracing is gw.sinks[0]
        assert gw.chain.observer.tracing is gw.sinks[0] and gw.chain.names[0] == "bodies"
    finally:
        gw.sinks[0].shutdown()


def test_valid_traceparent() -> None:
    good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert valid_traceparent(good) == good
    for bad in (
        None,
        "",
        good.upper(),
        good[:-1],
        "01" + good[2:],
        "00-" + "0" * 32 + good[35:],
        good.replace("b7ad6b7169203331", "0" * 16),
        good + "\r\nx-evil: 1",
    ):
        assert valid_traceparent(bad) is None, bad


# -- the stage observer and spans (in memory) ----------------------------------------------------------------
class _Step(Stage):
    def __init__(self, name: str, boom: bool = False) -> None:
        self.name, self.boom = name, boom

    async def before(self, ex: Exchange) -> Any:
        if self.boom:
            raise ValueError("no")
        return None

    async def after(self, ex: Exchange, answer: Any) -> Any:
        return answer


async def _upstream(ex: Exchange) -> Reply:
    return Reply(b"{}", {})


async def test_the_observer_times_every_phase_and_makes_spans() -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing(TracingConfig(enabled=True, export_interval_ms=10), {}, exporter=exporter)
    local = LocalMetrics()
    chain = Chain([_Step("a"), _Step("b")], ChainObserver(local, tracing))
    rec = RequestRecord(
        "r-1", headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    )
    ex = Exchange(rec, {"model": "m", "temperature": 0.2}, "chat", False)
    await chain.run(ex, _upstream)
    rec.close(200)
    tracing.submit(rec)
    tracing.flush()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"a.before", "b.before", "b.after", "a.after", "raygate chat"}
    root = spans["raygate chat"]
    assert (
        root.parent.span_id == 0xB7AD6B7169203331
        and root.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    )
    assert root.attributes["gen_ai.request.temperature"] == 0.2
    assert all(spans[n].parent.span_id == root.context.span_id for n in ("a.before", "b.after"))
    assert rec.facts["trace"] == {
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "span_id": f"{root.context.span_id:016x}",
    }
    delta = local.take()
    assert delta["hist"]["raygate_stage_duration_seconds"][("a", "before")][-2] == 0  # counted, not +Inf
    assert sum(delta["hist"]["raygate_stage_duration_seconds"][("b", "after")][:-1]) == 1
    failing = Chain([_Step("a"), _Step("bad", boom=True)], ChainObserver(None, tracing))
    rec2 = RequestRecord("r-2")
    with pytest.raises(ValueError):
        await failing.run(Exchange(rec2, {}, "chat", False), _upstream)
    rec2.close(500)
    tracing.submit(rec2)
    tracing.flush()
    bad = [s for s in exporter.get_finished_spans() if s.name == "bad.before"]
    assert len(bad) == 1 and bad[0].status.status_code.name == "ERROR"
    tracing.shutdown()


async def test_unsampled_requests_make_no_spans_but_still_pass_the_trace_on() -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing(TracingConfig(enabled=True, sample_rate=0.0), {}, exporter=exporter)
    chain = Chain([_Step("a")], ChainObserver(None, tracing))
    rec = RequestRecord("r-3")
    from deployments.providers.base import CallContext

    ex = Exchange(rec, {}, "chat", False)
    ex.call = CallContext("", "", "r-3")
    await chain.run(ex, _upstream)
    rec.close(200)
    tracing.submit(rec)
    tracing.flush()
    assert exporter.get_finished_spans() == () and "trace" not in rec.facts
    assert valid_traceparent(ex.call.traceparent) and int(ex.call.traceparent[-2:], 16) & 1 == 0  # unsampled
    tracing.shutdown()


# -- metrics -------------------------------------------------------------------------------------------------
def _finished(**fields: Any) -> RequestRecord:
    rec = RequestRecord("r")
    for k, v in fields.items():
        setattr(rec, k, v)
    rec.close(fields.get("status", 200))
    return rec


def test_the_prefix_is_applied_when_rendering() -> None:
    local = LocalMetrics()
    RecordMetrics(local).submit(_finished(provider="p", model="m", latency_ms=12.0))
    snap = Snapshot()
    snap.merge(local.take())
    text = snap.render("portkey")
    assert 'portkey_requests_total{provider="p",model="m",status="200"} 1' in text
    assert "raygate_" not in text and "# TYPE portkey_request_duration_seconds histogram" in text
    assert 'raygate_requests_total{provider="p",model="m",status="200"} 1' in snap.render()


def test_client_chosen_models_are_bounded() -> None:
    local = LocalMetrics()
    sink = RecordMetrics(local)
    for i in range(MAX_LABEL_VALUES + 50):
        sink.submit(_finished(provider="p", model=f"model-{i}"))
    models = {labels[1] for labels in local.take()["counters"]["raygate_requests_total"]}
    assert len(models) == MAX_LABEL_VALUES + 1 and "other" in models


def test_cost_refusals_and_verdicts_are_read_defensively() -> None:
    local = LocalMetrics()
    sink = RecordMetrics(local)
    for cost in (0.5, {"usd": 0.25}, {"total": 1}, "free", {"eur": 3}, -1, True, None):
        rec = _finished(provider="p", model="m")
        if cost is not None:
            rec.facts["cost"] = cost
        sink.submit(rec)
    sink.submit(_finished(status=429, error_code="rate_limit_exceeded"))
    sink.submit(_finished(status=402, error_code="budget_exceeded"))
    sink.submit(
        _finished(status=429, attempts=[{"provider": "p", "status": 429, "duration_ms": 1}])
    )  # upstream's
    weird = _finished(provider="p", model="m")
    weird.facts["guardrails"] = {"pii": "mask", "jailbreak": {"verdict": "pass"}, "x" * 100: "block"}
    sink.submit(weird)
    counters = local.take()["counters"]
    assert counters["raygate_spend_total"] == {("p", "m"): 1.75}
    assert counters["raygate_refusals_total"] == {("rate_limit",): 1, ("budget",): 1}
    assert counters["raygate_guardrail_verdicts_total"] == {
        ("pii", "mask"): 1,
        ("jailbreak", "pass"): 1,
        ("other", "block"): 1,
    }


def test_in_flight_counts_begun_and_unfinished_requests() -> None:
    gw = assemble_gateway(_config())
    recs = [gw.begin("chat", {}) for _ in range(3)]
    gw.begin(None, {})  # not recorded (health, admin): not counted
    assert gw.metrics.local.in_flight == 3
    gw.finish(recs[0], 200)
    gw.finish(recs[0], 500)  # a record finishes once
    assert gw.metrics.local.in_flight == 2
    assert gw.metrics.local.take()["gauges"]["raygate_in_flight_requests"] == {(): 2}


async def test_the_separate_metrics_port() -> None:
    from deployments.observability.metrics_server import MetricsServer
    from serve_app.metrics import Metrics

    metrics = Metrics(InProcessSink(), prefix="portkey")
    metrics.local.request("p", "m", 200, 0.1)
    port = free_port()
    servers = [MetricsServer(metrics, "127.0.0.1", port), MetricsServer(metrics, "127.0.0.1", port)]
    for s in servers:  # two replicas on one node share the port
        await s.start()
    try:
        assert all(s._runner is not None for s in servers)
        async with httpx.AsyncClient() as client:
            resp = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
        assert 'portkey_requests_total{provider="p",model="m",status="200"} 1' in resp.text
    finally:
        for s in servers:
            await s.close()

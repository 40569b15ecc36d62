"""OpenTelemetry traces: one trace per request, a span per stage, per upstream attempt and for the stream.

    raygate chat                    SERVER  (from the client's `traceparent`, if any; received_at .. done_at)
    ├── route.before / cache.before / ...   one per stage phase (the chain observer)
    ├── chat <model>                CLIENT  one per upstream attempt; its id is the upstream's `traceparent`
    │   └── provider <name>         SERVER  in a Provider deployment (placement.providers: deployment)
    └── stream                      from the stream's opening to its end

Spans are linked by W3C `traceparent` strings, also across processes: the request's goes into the
`CallContext` (`ctx.traceparent`), each attempt replaces it with its own span's, and the provider
sends it upstream as the `traceparent` header. A deployment that receives a CallContext starts its
span under it. Attributes follow the OpenTelemetry GenAI semantic conventions (`gen_ai.*`); no key,
no body and no message text is put on a span.

Nothing here runs when tracing is off: the gateway, the chain and the executor hold None instead.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .config import TracingConfig
from .traceparent import valid_traceparent

log = logging.getLogger("raygate.tracing")

# provider type -> `gen_ai.system` where the semantic conventions name it differently; else the type
GENAI_SYSTEM = {
    "bedrock": "aws.bedrock",
    "azure-openai": "az.ai.openai",
    "google": "gcp.gemini",
    "mistral": "mistral_ai",
    "ray-serve": "ray_serve",
}
OPERATION = {"chat": "chat", "embeddings": "embeddings", "stream": "chat"}
_PROPAGATOR = TraceContextTextMapPropagator()


def traceparent_of(span: Any) -> str:
    sc = span.get_span_context()
    return f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{int(sc.trace_flags):02x}"


def parent_context(traceparent: str | None, tracestate: str | None = None) -> Any:
    """An OTel Context holding the remote parent named by `traceparent` (None: a new trace)."""
    if valid_traceparent(traceparent) is None:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return _PROPAGATOR.extract(carrier)


def _ns(epoch_s: float) -> int:
    return int(epoch_s * 1e9)


def make_exporter(cfg: TracingConfig) -> SpanExporter:
    """The OTLP exporter for `tracing.endpoint` over gRPC or http/protobuf."""
    headers = dict(cfg.headers) or None
    if cfg.wire == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        parts = urlsplit(cfg.endpoint)
        return Grpc(
            endpoint=f"{parts.hostname}:{parts.port or 4317}",
            insecure=parts.scheme == "http",
            headers=headers,
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    url = cfg.endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    return Http(endpoint=url, headers=headers)


class RequestTrace:
    """A request's live spans, kept on its record (`record.trace`) from the chain to its finish."""

    __slots__ = ("root", "context", "stream")

    def __init__(self, root: Any) -> None:
        self.root = root
        self.context = trace.set_span_in_context(root)
        self.stream: Any = None


class Tracing:
    """A process's tracer: builds the spans; as a sink (`submit`) it ends a finished request's trace."""

    def __init__(
        self,
        cfg: TracingConfig,
        provider_types: dict[str, str] | None = None,
        exporter: SpanExporter | None = None,
    ) -> None:
        self.cfg = cfg
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": cfg.service_name}),
            sampler=ParentBased(TraceIdRatioBased(cfg.sample_rate)),
        )
        self.provider.add_span_processor(
            BatchSpanProcessor(exporter or make_exporter(cfg), schedule_delay_millis=cfg.export_interval_ms)
        )
        self.tracer = self.provider.get_tracer("raygate")
        self.systems = {name: GENAI_SYSTEM.get(t, t) for name, t in (provider_types or {}).items()}

    # -- the request (root) span ------------------------------------------------------------------
    def begin(self, ex: Any) -> RequestTrace:
        """The request's root span (started at `received_at`); the CallContext carries its traceparent."""
        rec = ex.record
        if rec.trace is not None:
            return rec.trace
        rt = rec.trace = self._root(rec)
        body = ex.body
        root = rt.root
        if root.is_recording():
            for attr, field in (
                ("gen_ai.request.max_tokens", "max_tokens"),
                ("gen_ai.request.temperature", "temperature"),
                ("gen_ai.request.top_p", "top_p"),
            ):
                value = body.get(field)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    root.set_attribute(attr, value)
        if ex.call is not None:
            ex.call.traceparent = traceparent_of(root)
        return rt

    def _root(self, rec: Any) -> RequestTrace:
        headers = rec.headers
        parent = parent_context(headers.get("traceparent"), headers.get("tracestate"))
        root = self.tracer.start_span(
            f"raygate {rec.kind}", context=parent, kind=SpanKind.SERVER, start_time=_ns(rec.received_at)
        )
        if root.is_recording():  # the log record names its trace (sampled ones only: the others are not kept)
            sc = root.get_span_context()
            rec.fact("trace", {"trace_id": f"{sc.trace_id:032x}", "span_id": f"{sc.span_id:016x}"})
        return RequestTrace(root)

    # -- stages and the stream ----------------------------------------------------------------------
    def stage(
        self, rec: Any, name: str, phase: str, start_ns: int, end_ns: int, error: BaseException | None
    ) -> None:
        rt = rec.trace
        if rt is None or not rt.root.is_recording():
            return
        span = self.tracer.start_span(
            f"{name}.{phase}",
            context=rt.context,
            start_time=start_ns,
            attributes={"raygate.stage": name, "raygate.stage.phase": phase},
        )
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end(end_time=end_ns)

    def stream_opened(self, rec: Any) -> None:
        rt = rec.trace
        if rt is not None and rt.stream is None and rt.root.is_recording():
            rt.stream = self.tracer.start_span("stream", context=rt.context)

    # -- upstream attempts --------------------------------------------------------------------------
    def attempt(self, ctx: Any, route: str, kind: str) -> Any:
        """A CLIENT span for one upstream call under `ctx.traceparent`; `ctx.traceparent` becomes its own."""
        operation = OPERATION.get(kind, kind)
        span = self.tracer.start_span(
            f"{operation} {ctx.model}", context=parent_context(ctx.traceparent), kind=SpanKind.CLIENT
        )
        if span.is_recording():
            span.set_attributes(
                {
                    "gen_ai.operation.name": operation,
                    "gen_ai.system": self.systems.get(ctx.provider, ctx.provider),
                    "gen_ai.request.model": ctx.model,
                    "raygate.provider": ctx.provider,
                    "raygate.route": route,
                }
            )
        ctx.traceparent = traceparent_of(span)
        return span

    @staticmethod
    def end_attempt(span: Any, status: int | None, error_class: str | None) -> None:
        if span.is_recording():
            if status is not None:
                span.set_attribute("http.response.status_code", status)
            if error_class is not None:
                span.set_attribute("error.type", error_class)
                span.set_status(Status(StatusCode.ERROR, error_class))
        span.end()

    def served(self, ctx: Any, what: str) -> Any:
        """A deployment's SERVER span for a call it received (its CallContext names the caller's span)."""
        span = self.tracer.start_span(
            f"{what} {ctx.provider}",
            context=parent_context(ctx.traceparent),
            kind=SpanKind.SERVER,
            attributes={"raygate.provider": ctx.provider, "gen_ai.request.model": ctx.model},
        )
        ctx.traceparent = traceparent_of(span)
        return span

    # -- the finished request: a sink -----------------------------------------------------------------
    def submit(self, rec: Any) -> None:
        rt = rec.trace
        if rt is None:  # ended before the chain (401, 413, bad JSON): its trace is the root span alone
            rt = rec.trace = self._root(rec)
        end = _ns(rec.done_at or time.time())
        if rt.stream is not None:
            if rec.first_byte_at is not None:
                rt.stream.add_event("first_byte", timestamp=_ns(rec.first_byte_at))
            rt.stream.end(end_time=end)
        root = rt.root
        if root.is_recording():
            root.set_attributes(self._outcome(rec))
            if rec.status >= 400 or rec.status == 0:
                root.set_status(Status(StatusCode.ERROR, rec.error_type or str(rec.status)))
        root.end(end_time=end)

    def _outcome(self, rec: Any) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": OPERATION.get(rec.kind, rec.kind),
            "http.response.status_code": rec.status,
            "raygate.request_id": rec.request_id,
            "raygate.via": rec.via,
            "raygate.stream": rec.stream,
            "raygate.attempts": len(rec.attempts),
        }
        for attr, value in (
            ("gen_ai.request.model", rec.requested_model),
            ("gen_ai.response.model", rec.model),
            ("raygate.provider", rec.provider),
            ("raygate.route", rec.route),
            ("raygate.cache", rec.cache),
            ("raygate.key_id", rec.key_id),
            ("client.address", rec.client_ip),
            ("error.type", rec.error_type),
            ("raygate.ttft_ms", rec.ttft_ms),
        ):
            if value is not None:
                attrs[attr] = value
        if rec.provider is not None:
            attrs["gen_ai.system"] = self.systems.get(rec.provider, rec.provider)
        usage = rec.usage
        if usage:
            attrs["gen_ai.usage.input_tokens"] = usage.get("input", 0)
            attrs["gen_ai.usage.output_tokens"] = usage.get("output", 0)
            attrs["raygate.usage.cached_input_tokens"] = usage.get("cached_input", 0)
            attrs["raygate.usage.reasoning_tokens"] = usage.get("reasoning", 0)
        metadata = rec.metadata
        for key in ("trace_id", "session_id"):  # so logs and traces join on the client's ids
            value = metadata.get(key) if isinstance(metadata, dict) else None
            if isinstance(value, str | int):
                attrs[f"raygate.metadata.{key}"] = str(value)
        return attrs

    def flush(self, timeout_ms: int = 5000) -> bool:
        return self.provider.force_flush(timeout_ms)

    def shutdown(self) -> None:
        self.provider.shutdown()

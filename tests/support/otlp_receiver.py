"""An OTLP/HTTP trace receiver (POST /v1/traces, protobuf) in a background thread, for the tracing tests.

It decodes each ExportTraceServiceRequest with opentelemetry-proto, as a collector (Jaeger, Tempo)
would, and keeps every span as a plain dict; 127.0.0.1 only, so Ray replicas on this machine reach it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support.gateway_server import free_port


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


class OtlpReceiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}/v1/traces"
        self.spans: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    async def _traces(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-protobuf":
            return web.Response(status=415)
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        got = []
        for resource_spans in message.resource_spans:
            service = {a.key: _value(a.value) for a in resource_spans.resource.attributes}.get("service.name")
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    got.append(
                        {
                            "service": service,
                            "name": s.name,
                            "trace_id": s.trace_id.hex(),
                            "span_id": s.span_id.hex(),
                            "parent_span_id": s.parent_span_id.hex() or None,
                            "kind": s.kind,
                            "start": s.start_time_unix_nano,
                            "end": s.end_time_unix_nano,
                            "status": s.status.code,
                            "attributes": {a.key: _value(a.value) for a in s.attributes},
                            "events": [e.name for e in s.events],
                        }
                    )
        with self._lock:
            self.spans.extend(got)
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def serve() -> None:
            app = web.Application()
            app.router.add_post("/v1/traces", self._traces)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
            self._ready.set()

        self._loop.run_until_complete(serve())
        self._loop.run_forever()

    def start(self) -> OtlpReceiver:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("OTLP receiver did not start")
        return self

    def stop(self) -> None:
        async def down() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(down(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def traces(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            spans = list(self.spans)
        out: dict[str, list[dict[str, Any]]] = {}
        for span in spans:
            out.setdefault(span["trace_id"], []).append(span)
        return out

    def wait_for(self, done: Any, timeout: float = 30.0) -> dict[str, list[dict[str, Any]]]:
        """The traces once `done(traces)` is true (exports arrive in batches), else an AssertionError."""
        deadline = time.time() + timeout
        while True:
            traces = self.traces()
            if done(traces):
                return traces
            if time.time() > deadline:
                raise AssertionError(
                    f"the receiver has {sum(map(len, traces.values()))} spans in "
                    f"{len(traces)} traces; expected more"
                )
            time.sleep(0.05)

"""Wires the `observability:` settings into one replica's Gateway (called by assemble_gateway).

Each piece is added only when configured, so what is off costs nothing on the request path:
tracing off leaves `executor.tracing` None and no tracing sink; metrics and tracing both off leave
the chain without an observer (its untimed loop).
"""

from __future__ import annotations

import asyncio
from typing import Any

from serve_app.metrics import RecordMetrics

from .admin import AdminReads
from .audit import AuditSink
from .metrics_server import MetricsServer
from .retention import RetentionService
from .stage_timing import ChainObserver


class TracingService:
    """Flushes and stops a replica's span exporter when the replica shuts down."""

    def __init__(self, tracing: Any) -> None:
        self.tracing = tracing

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await asyncio.to_thread(self.tracing.shutdown)


def attach_observability(gateway: Any, config: Any) -> None:
    obs = config.observability
    gateway.metrics.prefix = obs.metrics.prefix
    if not obs.metrics.enabled:
        gateway.sinks = [s for s in gateway.sinks if not isinstance(s, RecordMetrics)]
    tracing = None
    if obs.tracing.enabled:
        from .tracing import Tracing  # OpenTelemetry's SDK is imported only when tracing is on

        tracing = Tracing(obs.tracing, {name: p.type for name, p in config.providers.items()})
        gateway.sinks.insert(0, tracing)  # before storage: it adds the trace ids to the record
        gateway.executor.tracing = tracing
        gateway.background.append(TracingService(tracing))
    local = gateway.metrics.local if obs.metrics.enabled else None
    if local is not None or tracing is not None:
        gateway.chain.observer = ChainObserver(local, tracing)
    gateway.admin_routes.update(AdminReads(gateway).routes())
    if config.storage.enabled:
        if obs.audit.enabled:
            audit = AuditSink(gateway)
            gateway.auditors.append(audit)
            gateway.background.append(audit)
        retention = obs.logging.retention
        if retention.max_age_days is not None or retention.max_rows is not None:
            gateway.background.append(RetentionService(gateway, retention))
    if obs.metrics.enabled and obs.metrics.port is not None:
        gateway.background.append(MetricsServer(gateway.metrics, obs.metrics.host, obs.metrics.port))

"""The chain's observer: each stage's before/after timed into the per-stage histogram and, when tracing
is on, a span. Set on the Chain only when metrics or tracing want it (`Chain.observer`); without it the
chain runs its untimed loop."""

from __future__ import annotations

import time
from typing import Any

from serve_app.lifecycle import StreamReply

STAGE_SECONDS = "raygate_stage_duration_seconds"


class ChainObserver:
    __slots__ = ("local", "tracing")

    def __init__(self, local: Any = None, tracing: Any = None) -> None:
        self.local = local  # serve_app.metrics.LocalMetrics, or None (metrics off)
        self.tracing = tracing  # deployments.observability.tracing.Tracing, or None (tracing off)

    def begin(self, ex: Any) -> None:
        if self.tracing is not None:
            self.tracing.begin(ex)

    def stage(self, ex: Any, name: str, phase: str, start_ns: int, error: BaseException | None) -> None:
        end_ns = time.time_ns()
        if self.local is not None:
            self.local.observe(STAGE_SECONDS, (name, phase), (end_ns - start_ns) / 1e9)
        if self.tracing is not None:
            self.tracing.stage(ex.record, name, phase, start_ns, end_ns, error)

    def answered(self, ex: Any, answer: Any) -> None:
        if self.tracing is not None and type(answer) is StreamReply:
            self.tracing.stream_opened(ex.record)

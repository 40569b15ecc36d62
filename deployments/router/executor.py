"""Runs a Plan's attempts against providers, in the caller's replica.

A non-streamed call returns the first success; a stream is returned once it is open (upstream
answered 200), so any failure before the first byte can still move on to the next attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deployments.providers.base import CallContext
from serve_app.errors import GatewayError

from .router import Attempt, Plan


@dataclass(slots=True)
class Outcome:
    """What the executor reports about the call that answered (or the last that failed)."""

    attempt: Attempt
    model: str
    attempts: int = 1
    tried: list[str] = field(default_factory=list)


class Executor:
    def __init__(self, providers: dict[str, Any]) -> None:
        self.providers = providers

    def _prepare(self, attempt: Attempt, body: dict[str, Any], base: CallContext) -> tuple[Any, dict[str, Any], CallContext]:
        provider = self.providers[attempt.provider]
        model = provider.default_model(attempt.model)
        payload = body if attempt.override_params is None else {**body, **attempt.override_params}
        ctx = CallContext(attempt.provider, model, base.request_id, base.include_usage, base.created,
                          base.client_headers, base.metadata)
        return provider, payload, ctx

    async def chat(self, plan: Plan, body: dict[str, Any], base: CallContext) -> tuple[bytes, Outcome]:
        last: GatewayError | None = None
        for i, attempt in enumerate(plan.attempts):
            provider, payload, ctx = self._prepare(attempt, body if i == len(plan.attempts) - 1 else dict(body), base)
            try:
                result = await provider.chat(payload, ctx, attempt.timeout)
                return result, Outcome(attempt, ctx.model, i + 1)
            except GatewayError as err:
                last = err
                if not err.retryable:
                    raise
        assert last is not None
        raise last

    async def chat_stream(self, plan: Plan, body: dict[str, Any], base: CallContext) -> tuple[Any, Outcome]:
        last: GatewayError | None = None
        for i, attempt in enumerate(plan.attempts):
            provider, payload, ctx = self._prepare(attempt, body if i == len(plan.attempts) - 1 else dict(body), base)
            try:
                stream = await provider.open_chat_stream(payload, ctx, attempt.timeout)
                return stream, Outcome(attempt, ctx.model, i + 1)
            except GatewayError as err:
                last = err
                if not err.retryable:
                    raise
        assert last is not None
        raise last

    async def embeddings(self, plan: Plan, body: dict[str, Any], base: CallContext) -> tuple[bytes, Outcome]:
        attempt = plan.attempts[0]
        provider, payload, ctx = self._prepare(attempt, body, base)
        return await provider.embeddings(payload, ctx, attempt.timeout), Outcome(attempt, ctx.model)

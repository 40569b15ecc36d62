"""The router stage: turns a request's routing inputs into a Plan (ordered attempts).

Resolution order, first match wins: `config` (a strategy name, or an inline config), then
`provider` (body field or x-raygate-provider), then `<provider>/<model>` when the prefix is a
configured provider, then `models:`, then `default_provider`. No match: 404 model_not_found.
The router decides; the executor (executor.py) runs the attempts where the stream can be piped
straight to the client, so a stream never crosses a handle even when the router is a deployment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from serve_app import errors as E


@dataclass(slots=True)
class Attempt:
    """One target to call: provider, upstream model and the per-target knobs."""

    provider: str
    model: str | None
    route: str  # where it came from, e.g. "models.fast" or "production-fallback.targets[1]"
    timeout: float | None = None
    retry: int = 0
    override_params: dict[str, Any] | None = None
    on_status_codes: frozenset[int] | None = None


@dataclass(slots=True)
class Plan:
    attempts: list[Attempt]
    strategy: str | None = None
    cache: Any = None  # a cache setting from the strategy, if it has one


@dataclass(slots=True)
class RouteRequest:
    """What routing reads (serializable, so the router can live in its own deployment)."""

    model: str | None
    provider: str | None = None
    config: Any = None
    metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)


class Router:
    def __init__(self, config: Any) -> None:
        self.config = config
        self.providers = config.providers
        self.aliases: dict[str, tuple[str | None, str | None, str | None]] = {}
        for alias, target in config.models.items():
            if isinstance(target, str):
                if target in config.providers:
                    self.aliases[alias] = (target, None, None)
                else:
                    self.aliases[alias] = (None, None, target)  # a strategy name
            else:
                self.aliases[alias] = (target.provider, target.model, None)
        self.default_provider = config.default_provider
        self.strategies = self._build_strategies(config)

    def _build_strategies(self, config: Any) -> dict[str, Any]:
        return {}

    async def plan(self, req: RouteRequest) -> Plan:
        """Async so the same call works in-process and through a deployment handle."""
        return self.resolve(req)

    def resolve(self, req: RouteRequest) -> Plan:
        if req.config is not None:
            return self.plan_config(req)
        model = req.model
        if req.provider is not None:
            if req.provider not in self.providers:
                raise E.not_found(f"provider {req.provider!r} is not configured", code="provider_not_found",
                                  param="provider")
            if model and model.startswith(req.provider + "/"):
                model = model[len(req.provider) + 1:]
            return Plan([Attempt(req.provider, model, "provider")])
        if model is None:
            raise E.bad_request("missing required parameter: 'model'", param="model",
                                code="missing_required_parameter")
        prefix, sep, rest = model.partition("/")
        if sep and prefix in self.providers:
            return Plan([Attempt(prefix, rest, "provider")])
        alias = self.aliases.get(model)
        if alias is not None:
            provider, target_model, strategy = alias
            if strategy is not None:
                return self.plan_strategy(strategy, req, f"models.{model}")
            return Plan([Attempt(provider, target_model or model, f"models.{model}")])  # type: ignore[arg-type]
        if self.default_provider is not None:
            return Plan([Attempt(self.default_provider, model, "default_provider")])
        raise E.not_found(f"model {model!r} is not served by this gateway (no provider, alias or default "
                          "provider matches)")

    def plan_config(self, req: RouteRequest) -> Plan:
        if isinstance(req.config, str) and req.config in self.strategies:
            return self.plan_strategy(req.config, req, req.config)
        raise E.not_found(f"strategy {req.config!r} is not configured", code="strategy_not_found",
                          param="config")

    def plan_strategy(self, name: str, req: RouteRequest, route: str) -> Plan:
        raise E.not_found(f"strategy {name!r} is not configured", code="strategy_not_found", param="config")


class RouterDeployment:
    """The router as its own deployment (placement.router: deployment)."""

    def __init__(self, config: dict[str, Any]) -> None:
        from serve_app.config import resolve_config

        self.router = Router(resolve_config(config))

    async def plan(self, req: RouteRequest) -> Plan:
        return self.router.resolve(req)

    async def ping(self) -> bool:
        return True


class RemoteRouter:
    def __init__(self, handle: Any) -> None:
        self._handle = handle

    async def plan(self, req: RouteRequest) -> Plan:
        return await self._handle.plan.remote(req)

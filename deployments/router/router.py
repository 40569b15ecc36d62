"""The router stage: turns a request's routing inputs into a Plan (ordered attempts).

Resolution order, first match wins: `config` (a strategy name, or an inline config), then
`provider` (body field or x-raygate-provider), then `<provider>/<model>` when the prefix is a
configured provider, then `models:`, then `default_provider`. No match: 404 model_not_found.
The router decides; the executor (executor.py) runs the attempts where the stream can be piped
straight to the client, so a stream never crosses a handle even when the router is a deployment.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from typing import Any

import orjson
from pydantic import ValidationError

from serve_app import errors as E

from .balance import TargetStats
from .circuit import CircuitBoard
from .config import TargetConfig
from .plan import Attempt, Plan, RouteRequest
from .portkey import PortkeyError, from_portkey, is_portkey
from .tree import NoRoute, Node, RouteError, Runtime, compile_inline, compile_strategies

INLINE_CACHE = 256  # compiled inline configs kept per replica (clients resend the same JSON)
MAX_INLINE_BYTES = 16384


class Router:
    def __init__(self, config: Any, rng: random.Random | None = None) -> None:
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
        self.rng = rng
        # this replica's view of target health: breakers (shared with the executor in-process) and
        # in-flight/latency figures for least_busy / least_latency
        self.circuits = CircuitBoard()
        self.stats = TargetStats()
        self.runtime = Runtime(self.circuits.available, self.stats)
        self.strategies = self._build_strategies(config)
        self._inline: OrderedDict[str, Node] = OrderedDict()

    def _build_strategies(self, config: Any) -> dict[str, Node]:
        return compile_strategies(config.strategies, set(config.providers), self.rng)

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
        """`config`: a strategy name, or an inline config (an object or a JSON string)."""
        config = req.config
        if isinstance(config, str):
            if config in self.strategies:
                return self.plan_strategy(config, req, config)
            text = config.strip()
            if not text.startswith("{"):
                raise E.not_found(f"strategy {config!r} is not configured", code="strategy_not_found",
                                  param="config")
            node = self._inline_node(text, None)
        elif isinstance(config, dict):
            node = self._inline_node(None, config)
        else:
            raise E.bad_request("config must be a strategy name or a config object", param="config",
                                code="invalid_config")
        return self._plan(node, req, "config")

    def plan_strategy(self, name: str, req: RouteRequest, route: str) -> Plan:
        node = self.strategies.get(name)
        if node is None:
            raise E.not_found(f"strategy {name!r} is not configured", code="strategy_not_found", param="config")
        return self._plan(node, req, name)

    def _plan(self, node: Node, req: RouteRequest, strategy: str) -> Plan:
        try:
            attempts = node.plan(req, self.runtime)
        except NoRoute as miss:
            raise E.bad_request(f"no rule of {miss.path!r} matched the request (add a `default` rule)",
                                param="config", code="no_route_matched") from None
        return Plan(attempts, strategy, attempts[0].cache, req.model)

    def _inline_node(self, text: str | None, obj: dict[str, Any] | None) -> Node:
        """Parse, convert (Portkey shape) and compile an inline config; compiled configs are cached."""
        if text is None:
            text = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()
        hit = self._inline.get(text)
        if hit is not None:
            self._inline.move_to_end(text)
            return hit
        if len(text) > MAX_INLINE_BYTES:
            raise _invalid(f"inline config is {len(text)} bytes; the limit is {MAX_INLINE_BYTES}")
        if obj is None:
            try:
                obj = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise _invalid(f"config is not valid JSON: {exc}") from None
            if not isinstance(obj, dict):
                raise _invalid("config must be a JSON object")
        try:
            raw = from_portkey(obj) if is_portkey(obj) else obj
            cfg = TargetConfig.model_validate(raw)
            node = compile_inline(cfg, self.config.strategies, set(self.providers), self.rng)
        except PortkeyError as err:
            raise _invalid(f"{err.path}: {err.reason}") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "config" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
            reason = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
            raise _invalid(f"{where}: {reason}") from None
        except RouteError as err:
            raise _invalid(f"{err.path}: {err.reason}") from None
        self._inline[text] = node
        if len(self._inline) > INLINE_CACHE:
            self._inline.popitem(last=False)
        return node


def _invalid(message: str) -> E.GatewayError:
    return E.bad_request(f"invalid inline config: {message}", param="config", code="invalid_config")


class RouterDeployment:
    """The router as its own deployment (placement.router: deployment)."""

    def __init__(self, config: Any) -> None:  # the GatewayConfig the builder binds
        self.router = Router(config)
        from .circuit import circuit_actor

        self.router.circuits.attach(factory=circuit_actor)  # balancers skip targets tripped on any replica

    async def plan(self, req: RouteRequest) -> Plan:
        if not self.router.circuits.started:
            await self.router.circuits.begin()
        return self.router.resolve(req)

    async def ping(self) -> bool:
        return True


class RemoteRouter:
    def __init__(self, handle: Any) -> None:
        self._handle = handle

    async def plan(self, req: RouteRequest) -> Plan:
        return await self._handle.plan.remote(req)

"""The router stage: turns a request's routing inputs into a Plan (ordered attempts).

Resolution order, first match wins: `config` (a strategy name, or an inline config), then
`provider` (body field or x-raygate-provider), then `<provider>/<model>` when the prefix is a
configured provider, then `models:` aliases, then a strategy's name, then the provider whose
declared `models` list the name, then `default_provider` when it declares no list (a
pass-through). A provider that declares `models` receives only those names, whichever way it was
reached (an alias is always accepted); anything no one accepts is 404 model_not_found, naming
what was tried. Through an alias or a strategy's name, a target without its own `model` gets its
provider's own model, never the alias.
The router decides; the executor (executor.py) runs the attempts where the stream can be piped
straight to the client, so a stream never crosses a handle even when the router is a deployment.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from typing import Any

import orjson
from pydantic import ValidationError

from deployments.providers.served import ServedModels, own_model
from serve_app import errors as E

from .balance import TargetStats
from .circuit import CircuitBoard
from .config import TargetConfig
from .plan import Attempt, Plan, RouteRequest
from .portkey import PortkeyError, from_portkey, is_portkey
from .tree import NoRoute, Node, RouteError, Runtime, compile_inline, compile_strategies, model_less_targets

INLINE_CACHE = 256  # compiled inline configs kept per replica (clients resend the same JSON)
MAX_INLINE_BYTES = 16384


class Router:
    def __init__(self, config: Any, rng: random.Random | None = None) -> None:
        self.config = config
        self.providers = config.providers
        self.served = {name: ServedModels(p.models) for name, p in config.providers.items()}
        self.aliases: dict[str, tuple[str | None, str | None, str | None]] = {}
        for alias, target in config.models.items():
            if isinstance(target, str):
                if target in config.providers:
                    # the provider's own model; a pass-through with none receives the name itself
                    self.aliases[alias] = (target, own_model(config.providers[target]) or alias, None)
                else:
                    self.aliases[alias] = (None, None, target)  # a strategy name
            else:
                own = own_model(config.providers[target.provider])
                self.aliases[alias] = (target.provider, target.model or own or alias, None)
        self.default_provider = config.default_provider
        # declared name -> provider (the default provider first, then config order); globs after
        owners = [config.default_provider] if config.default_provider else []
        owners += [n for n in config.providers if n != config.default_provider]
        self.declared: dict[str, str] = {}
        for name in owners:
            for model in self.served[name].names:
                self.declared.setdefault(model, name)
        self.glob_owners = [(n, self.served[n]) for n in owners if self.served[n].pattern is not None]
        self.rng = rng
        # this replica's view of target health: breakers (shared with the executor in-process) and
        # in-flight/latency figures for least_busy / least_latency
        self.circuits = CircuitBoard()
        self.stats = TargetStats()
        self.runtime = Runtime(self.circuits.available, self.stats)
        self.strategies = self._build_strategies(config)
        # strategies a request may name as its model: every target has a model of its own
        self.nameable = {name for name, node in self.strategies.items()
                         if not model_less_targets(node, self.providers)}
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
            if model and not self.served[req.provider].accepts(model):
                raise self._unserved(model, f"provider {req.provider!r} (the request's `provider`) serves "
                                            f"only {self.served[req.provider].describe()}")
            return Plan([Attempt(req.provider, model, "provider")])
        if model is None:
            raise E.bad_request("missing required parameter: 'model'", param="model",
                                code="missing_required_parameter")
        prefix, sep, rest = model.partition("/")
        if sep and prefix in self.providers:
            if not self.served[prefix].accepts(rest):
                raise self._unserved(model, f"provider {prefix!r} (the name's prefix) serves only "
                                            f"{self.served[prefix].describe()}")
            return Plan([Attempt(prefix, rest, "provider")])
        alias = self.aliases.get(model)
        if alias is not None:
            provider, target_model, strategy = alias
            if strategy is not None:
                return self.plan_strategy(strategy, req, None)
            return Plan([Attempt(provider, target_model, f"models.{model}")])  # type: ignore[arg-type]
        if model in self.nameable:
            return self.plan_strategy(model, req, None)
        owner = self.declared.get(model) or self._glob_owner(model)
        if owner is not None:
            return Plan([Attempt(owner, model, f"providers.{owner}.models")])
        default = self.default_provider
        if default is not None and self.served[default].pass_through:
            return Plan([Attempt(default, model, "default_provider")])
        raise self._unserved(model, self._misses(model))

    def _glob_owner(self, model: str) -> str | None:
        for name, served in self.glob_owners:
            if served.accepts(model):
                return name
        return None

    def _misses(self, model: str) -> str:
        """What resolution tried for a bare name that nothing accepted (the 404's explanation)."""
        parts = ["no `models:` alias", "no provider declares it"]
        if model in self.strategies:
            parts.append(f"strategy {model!r} has targets without a model (name it with `config`)")
        default = self.default_provider
        if default is None:
            parts.append("no default_provider")
        else:
            parts.append(f"default_provider {default!r} serves only {self.served[default].describe()}")
        return ", ".join(parts)

    @staticmethod
    def _unserved(model: str, tried: str) -> E.GatewayError:
        return E.not_found(f"model {model!r} is not served by this gateway: {tried}")

    def plan_config(self, req: RouteRequest) -> Plan:
        """`config`: a strategy name, or an inline config (an object or a JSON string)."""
        config = req.config
        if isinstance(config, str):
            if config in self.strategies:
                return self.plan_strategy(config, req, req.model)
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
        return self._plan(node, req, "config", req.model)

    def plan_strategy(self, name: str, req: RouteRequest, model: str | None) -> Plan:
        """`model`: what targets without a model of their own receive (the request's model when it
        picked the strategy with `config`; None through an alias or the strategy's name, which are not
        models: then their provider's own model)."""
        node = self.strategies.get(name)
        if node is None:
            raise E.not_found(f"strategy {name!r} is not configured", code="strategy_not_found", param="config")
        return self._plan(node, req, name, model)

    def _plan(self, node: Node, req: RouteRequest, strategy: str, model: str | None) -> Plan:
        try:
            attempts = node.plan(req, self.runtime)
        except NoRoute as miss:
            raise E.bad_request(f"no rule of {miss.path!r} matched the request (add a `default` rule)",
                                param="config", code="no_route_matched") from None
        if model is not None:
            attempts = self._served_attempts(attempts, model, strategy)
        return Plan(attempts, strategy, attempts[0].cache, model)

    def _served_attempts(self, attempts: list[Attempt], model: str, strategy: str) -> list[Attempt]:
        """Targets that would receive the request's model: only those whose provider accepts it."""
        served = self.served
        if all(a.model is not None or served[a.provider].accepts(model) for a in attempts):
            return attempts  # the shared (static) list, untouched
        kept = [a for a in attempts if a.model is not None or served[a.provider].accepts(model)]
        if not kept:
            skipped = "; ".join(f"{a.route} ({a.provider} serves only {served[a.provider].describe()})"
                                for a in attempts)
            raise self._unserved(model, f"no target of {strategy!r} accepts it: {skipped}")
        return kept

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

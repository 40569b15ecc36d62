"""The route tree: strategies compiled once into nodes that turn a request into ordered Attempts.

    Leaf         one provider target            -> [its Attempt]
    Single       the first target               -> that target's attempts
    Fallback     targets in order               -> all their attempts, in order
    Balance      one member (balance.py)        -> that member's attempts (+ the others with failover)
    Conditional  first rule whose condition holds -> that target's attempts

Knobs (`timeout`, `retry`, `on_status_codes`, `override_params`, `backoff`, `circuit_breaker`,
`idle_timeout`, `cache`) flow down the tree; a node's own value wins, override_params merge (child wins).
`route` labels follow the config (`production-fallback.targets[1]`,
`smart-router.rules[0].target`, `gpt4-pool.providers[0].targets[1]`); a target that names
another strategy continues the path of the target that names it. Static subtrees (no balancer,
no condition below them) are planned once at compile time: their `plan` returns a shared list.
"""

from __future__ import annotations

import abc

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from serve_app.errors import ConfigError

from .balance import Balancer, TargetStats
from .circuit import CircuitPolicy
from .conditions import Condition, ConditionError
from .config import BackoffConfig, CircuitBreakerConfig, TargetConfig
from .plan import DEFAULT_BACKOFF, Attempt, Backoff, RouteRequest

MAX_INLINE_TARGETS = 64
MAX_INLINE_DEPTH = 8


class RouteError(ValueError):
    """A strategy that cannot be compiled: `path` is the key path inside `strategies` (or config)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}" if path else reason)


class NoRoute(LookupError):
    """No conditional rule matched the request."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(path)


@dataclass(frozen=True, slots=True)
class Knobs:
    timeout: float | None = None
    idle_timeout: float | None = None
    retry: int = 0
    on_status_codes: frozenset[int] | None = None
    override_params: dict[str, Any] | None = None
    backoff: Backoff = DEFAULT_BACKOFF
    circuit: CircuitPolicy | None = CircuitPolicy()
    cache: Any = None

    def merge(self, t: TargetConfig) -> Knobs:
        out = self
        if t.timeout is not None:
            out = replace(out, timeout=t.timeout)
        if t.idle_timeout is not None:
            out = replace(out, idle_timeout=t.idle_timeout)
        if t.retry is not None:
            out = replace(out, retry=t.retry)
        if t.on_status_codes is not None:
            out = replace(out, on_status_codes=frozenset(t.on_status_codes))
        if t.override_params:
            merged = {**(out.override_params or {}), **t.override_params}
            out = replace(out, override_params=merged)
        if t.backoff is not None:
            out = replace(out, backoff=_backoff(t.backoff))
        if t.circuit_breaker is not None:
            out = replace(out, circuit=_circuit(t.circuit_breaker))
        if t.cache is not None:
            out = replace(out, cache=t.cache)
        return out


def _backoff(b: BackoffConfig) -> Backoff:
    return Backoff(b.base, b.cap, b.retry_after_cap)


def _circuit(c: CircuitBreakerConfig) -> CircuitPolicy | None:
    return CircuitPolicy(c.failures, c.window, c.cooldown) if c.enabled else None


class Runtime:
    """What planning consults per request: circuit health and per-target stats of this replica."""

    __slots__ = ("available", "stats")

    def __init__(self, available: Callable[[str], bool] | None = None, stats: TargetStats | None = None) -> None:
        self.available = available
        self.stats = stats


# --- nodes ---------------------------------------------------------------------------------------

class Node(abc.ABC):
    __slots__ = ("route", "keys", "guarded", "static")

    route: str
    keys: tuple[str, ...]  # target keys below (primary first)
    guarded: bool  # every target below has a circuit breaker
    static: list[Attempt] | None  # the plan, when it does not depend on the request

    @abc.abstractmethod
    def plan(self, req: RouteRequest, rt: Runtime) -> list[Attempt]:
        ...

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        ...


class Leaf(Node):
    __slots__ = ("attempt",)

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt
        self.route = attempt.route
        self.keys = (attempt.key,)
        self.guarded = attempt.circuit is not None
        self.static = [attempt]

    def plan(self, req: RouteRequest, rt: Runtime) -> list[Attempt]:
        return self.static  # type: ignore[return-value]

    def describe(self) -> dict[str, Any]:
        a = self.attempt
        return {"provider": a.provider, "model": a.model, "timeout": a.timeout, "idle_timeout": a.idle_timeout,
                "retry": a.retry, "override_params": a.override_params,
                "on_status_codes": sorted(a.on_status_codes) if a.on_status_codes is not None else None,
                "backoff": a.backoff, "circuit": a.circuit, "cache": a.cache}


class _Group(Node):
    __slots__ = ("children",)

    def _init(self, route: str, children: list[Node]) -> None:
        self.route = route
        self.children = children
        keys: list[str] = []
        for c in children:
            keys.extend(k for k in c.keys if k not in keys)
        self.keys = tuple(keys)
        self.guarded = all(c.guarded for c in children)


class Single(_Group):
    __slots__ = ()

    def __init__(self, route: str, children: list[Node]) -> None:
        self._init(route, children[:1])
        self.static = children[0].static

    def plan(self, req: RouteRequest, rt: Runtime) -> list[Attempt]:
        if self.static is not None:
            return self.static
        return self.children[0].plan(req, rt)

    def describe(self) -> dict[str, Any]:
        return {"type": "single", "target": self.children[0].describe()}


class Fallback(_Group):
    __slots__ = ()

    def __init__(self, route: str, children: list[Node]) -> None:
        self._init(route, children)
        if all(c.static is not None for c in children):
            self.static = [a for c in children for a in c.static]  # type: ignore[union-attr]
        else:
            self.static = None

    def plan(self, req: RouteRequest, rt: Runtime) -> list[Attempt]:
        if self.static is not None:
            return self.static
        out: list[Attempt] = []
        for c in self.children:
            out.extend(c.plan(req, rt))
        return out

    def describe(self) -> dict[str, Any]:
        return {"type": "fallback", "targets": [c.describe() for c in self.children]}


class Balance(_Group):
    __slots__ = ("balancer", "failover")

    def __init__(self, route: str, children: list[Node], balancer: Balancer, failover: bool) -> None:
        self._init(route, children)
        self.balancer = balancer
        self.failover = failover
        self.static = None

    def plan(self, req: RouteRequest, rt: Runtime) -> list[Attempt]:
        i = self.balancer.pick(req.body, req.metadata, req.headers, rt.available, rt.stats)
        first = self.children[i].plan(req, rt)
        if not self.failover:
            return first
        out = list(first)
        for j, c in enumerate(self.children):
            if j != i and self.balancer.weights[j] > 0:
                out.extend(c.plan(req, rt))
        return out

    def describe(self) -> dict[str, Any]:
        b = self.balancer
        return {"type": "load_balance", "algorithm": b.algorithm, "failover": self.failover,
                "sticky_key": b.sticky.ast if b.sticky is not None else None,
                "members": [{"weight": w, "target": c.describe()} for w, c in zip(b.weights, self.children)]}


class Conditional(_Group):
    __slots__ = ("conditions",)

    def __init__(self, route: str, conditions: list[Condition], children: list[Node]) -> None:
        self._init(route, children)
        self.conditions = conditions
        self.static = None

    def plan(self, req: RouteRequest, rt: Runtime) -> list[Attempt]:
        body, meta, headers = req.body, req.metadata, req.headers
        for cond, child in zip(self.conditions, self.children):
            if cond.always or cond.evaluate(body, meta, headers):
                return child.plan(req, rt)
        raise NoRoute(self.route)

    def describe(self) -> dict[str, Any]:
        return {"type": "conditional",
                "rules": [{"condition": c.ast, "target": t.describe()} for c, t in zip(self.conditions, self.children)]}


# --- compiling -----------------------------------------------------------------------------------

class Compiler:
    """Config (validated TargetConfig trees) -> nodes. `inline` applies the size limits of client configs."""

    def __init__(self, strategies: dict[str, TargetConfig], providers: set[str],
                 rng: random.Random | None = None, inline: bool = False) -> None:
        self.strategies = strategies
        self.providers = providers
        self.rng = rng
        self.inline = inline
        self.count = 0

    def named(self, name: str, route: str | None = None) -> Node:
        return self.node(self.strategies[name], route or name, Knobs(), (name,), name, depth=0)

    def node(self, t: TargetConfig, route: str, knobs: Knobs, stack: tuple[str, ...], where: str,
             depth: int) -> Node:
        self.count += 1
        if self.inline and (self.count > MAX_INLINE_TARGETS or depth > MAX_INLINE_DEPTH):
            raise RouteError(where, f"inline config is too large (at most {MAX_INLINE_TARGETS} targets, "
                                    f"{MAX_INLINE_DEPTH} levels)")
        if self.inline and t.circuit_breaker is not None and t.circuit_breaker.enabled \
                and t.circuit_breaker.model_fields_set - {"enabled"}:
            # breaker state is per target and shared by every request: one client must not be
            # able to make it trip faster or stay open longer for everyone else
            raise RouteError(f"{where}.circuit_breaker", "breaker thresholds are set in the gateway's "
                                                         "strategies, not per request (only enabled: false)")
        knobs = knobs.merge(t)
        if t.provider is not None:
            return self.leaf(t, route, knobs, where)
        if t.strategy is not None:
            name = t.strategy
            if name not in self.strategies:
                raise RouteError(f"{where}.strategy", f"unknown strategy {name!r}")
            if name in stack:
                cycle = " -> ".join(stack[stack.index(name):] + (name,))
                raise RouteError(f"{where}.strategy", f"strategies refer to each other in a cycle: {cycle}")
            # errors inside the referenced strategy name its own keys (where = its name)
            return self.node(self.strategies[name], route, knobs, stack + (name,), name, depth + 1)
        kind = "load_balance" if t.type == "loadbalance" else t.type
        if kind == "conditional":
            conditions: list[Condition] = []
            children: list[Node] = []
            for i, rule in enumerate(t.rules or []):
                try:
                    conditions.append(Condition(rule.condition))
                except ConditionError as exc:
                    raise RouteError(f"{where}.rules[{i}].condition", f"cannot parse condition: {exc}") from None
                children.append(self.node(rule.target, f"{route}.rules[{i}].target", knobs, stack,
                                          f"{where}.rules[{i}].target", depth + 1))
            return Conditional(route, conditions, children)
        field, members = t.members()
        children = [self.node(m, f"{route}.{field}[{i}]", knobs, stack, f"{where}.{field}[{i}]", depth + 1)
                    for i, m in enumerate(members)]
        if kind == "single":
            return Single(route, children)
        if kind == "fallback":
            return Fallback(route, children)
        weights = [m.weight for m in members]
        if not any(w > 0 for w in weights):
            raise RouteError(f"{where}.{field}", "at least one member needs a weight above 0")
        sticky = None
        if t.sticky_key is not None:
            try:
                sticky = Condition(t.sticky_key)
            except ConditionError as exc:
                raise RouteError(f"{where}.sticky_key", f"cannot parse: {exc}") from None
        balancer = Balancer(weights, [c.keys for c in children], t.algorithm, sticky,
                            rng=self.rng, guarded=[c.guarded for c in children])
        return Balance(route, children, balancer, t.failover)

    def leaf(self, t: TargetConfig, route: str, knobs: Knobs, where: str) -> Leaf:
        provider = t.provider
        assert provider is not None
        if provider not in self.providers:
            raise RouteError(f"{where}.provider", f"unknown provider {provider!r}")
        params = knobs.override_params
        model = t.model
        if params and "model" in params:
            params = dict(params)
            param_model = params.pop("model")
            if model is None and isinstance(param_model, str):
                model = param_model
            params = params or None
        key = f"{provider}/{model}" if model else provider
        return Leaf(Attempt(provider, model, route, knobs.timeout, knobs.retry, params, knobs.on_status_codes,
                            knobs.idle_timeout, knobs.backoff, knobs.circuit, key, knobs.cache))


def model_less_targets(node: Node, providers: dict[str, Any]) -> list[str]:
    """Routes of the targets below `node` that name no model while their provider has no own model
    (such a strategy can only be used with the request's model, through `config`)."""
    from deployments.providers.served import own_model

    if isinstance(node, Leaf):
        a = node.attempt
        return [a.route] if a.model is None and own_model(providers[a.provider]) is None else []
    out: list[str] = []
    for child in getattr(node, "children", ()):
        out.extend(r for r in model_less_targets(child, providers) if r not in out)
    return out


def compile_strategies(strategies: dict[str, Any], providers: set[str],
                       rng: random.Random | None = None) -> dict[str, Node]:
    """Compile every named strategy (raises RouteError with the key path)."""
    compiler = Compiler(strategies, providers, rng)
    return {name: compiler.named(name) for name in strategies}


def compile_inline(cfg: TargetConfig, strategies: dict[str, Any], providers: set[str],
                   rng: random.Random | None = None, root: str = "config") -> Node:
    """Compile a request's inline config (size-limited); it may name configured strategies."""
    compiler = Compiler(strategies, providers, rng, inline=True)
    return compiler.node(cfg, root, Knobs(), (), root, depth=0)


def check_strategies(cfg: Any) -> None:
    """Compile every strategy once (start-up): unknown providers or strategies, cycles, conditions,
    and aliases to strategies whose targets would have no model to send."""
    try:
        nodes = compile_strategies(cfg.strategies, set(cfg.providers))
    except RouteError as err:
        raise ConfigError(cfg.source, f"strategies.{err.path}" if err.path else "strategies", err.reason) \
            from None
    for alias, target in cfg.models.items():
        if isinstance(target, str) and target in nodes:
            missing = model_less_targets(nodes[target], cfg.providers)
            if missing:
                raise ConfigError(cfg.source, f"models.{alias}",
                                  f"strategy {target!r} has targets without a model ({', '.join(missing)}) "
                                  "and their providers have no `model` of their own; an alias never goes "
                                  "upstream as a model name: give those targets a `model`")


__all__ = ["Balance", "Compiler", "Conditional", "Fallback", "Knobs", "Leaf", "NoRoute", "Node", "RouteError",
           "Runtime", "Single", "check_strategies", "compile_inline", "compile_strategies",
           "model_less_targets"]

"""Strategies -> route tree: YAML and Portkey JSON give the same tree; config errors; planning."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import orjson
import pytest
import yaml

from deployments.router.config import TargetConfig
from deployments.router.portkey import PortkeyError, from_portkey, query_expr
from deployments.router.router import Router
from deployments.router.plan import RouteRequest
from deployments.router.tree import compile_inline
from serve_app.config import ConfigError, parse_config
from serve_app.errors import GatewayError

SEED_YAML = """
providers:
  openai-primary: {type: mock}
  azure-gpt4: {type: mock}
  anthropic-primary: {type: mock}
strategies:
  gpt4-pool:
    type: load_balance
    providers:
      - provider: openai-primary
        weight: 1
      - provider: azure-gpt4
        weight: 1
  production-fallback:
    type: fallback
    targets:
      - provider: azure-gpt4
        timeout: 10          # seconds for one attempt
        retry: 2             # extra attempts on this target before moving on
      - provider: anthropic-primary
        model: claude-sonnet-4
        timeout: 15
  smart-router:
    type: conditional
    rules:
      - condition: "request.messages[0].content.length > 4000"
        target: {provider: anthropic-primary, model: claude-sonnet-4}
      - condition: "request.user == 'code-assistant'"
        target: {provider: openai-primary, model: gpt-4o}
      - condition: "default"
        target: {provider: azure-gpt4, model: gpt-4o-mini}
  pool-of-chains:
    type: load_balance
    targets:
      - type: fallback
        weight: 3
        on_status_codes: [429, 503]
        targets: [{provider: openai-primary}, {provider: azure-gpt4, override_params: {temperature: 0}}]
      - strategy: production-fallback
        weight: 1
"""

PORTKEY = {
    "gpt4-pool": {"strategy": {"mode": "loadbalance"},
                  "targets": [{"provider": "openai-primary", "weight": 1}, {"provider": "azure-gpt4", "weight": 1}]},
    "production-fallback": {
        "strategy": {"mode": "fallback"},
        "targets": [
            {"provider": "azure-gpt4", "request_timeout": 10000, "retry": {"attempts": 2}},
            {"provider": "anthropic-primary", "override_params": {"model": "claude-sonnet-4"},
             "request_timeout": 15000},
        ]},
    "smart-router": {
        "strategy": {"mode": "conditional",
                     "conditions": [
                         {"query": {"params.messages.0.content.length": {"$gt": 4000}}, "then": "long"},
                         {"query": {"params.user": {"$eq": "code-assistant"}}, "then": "code"}],
                     "default": "cheap"},
        "targets": [
            {"name": "long", "provider": "anthropic-primary", "override_params": {"model": "claude-sonnet-4"}},
            {"name": "code", "provider": "openai-primary", "override_params": {"model": "gpt-4o"}},
            {"name": "cheap", "provider": "azure-gpt4", "override_params": {"model": "gpt-4o-mini"}}]},
    "pool-of-chains": {
        "strategy": {"mode": "loadbalance"},
        "targets": [
            {"strategy": {"mode": "fallback", "on_status_codes": [429, 503]}, "weight": 3,
             "targets": [{"provider": "openai-primary"},
                         {"provider": "azure-gpt4", "override_params": {"temperature": 0}}]},
            {"strategy": {"mode": "fallback"}, "weight": 1,
             "targets": [
                 {"provider": "azure-gpt4", "request_timeout": 10000, "retry": {"attempts": 2}},
                 {"provider": "anthropic-primary", "override_params": {"model": "claude-sonnet-4"},
                  "request_timeout": 15000}]}]},
}


@pytest.fixture(scope="module")
def config() -> Any:
    return parse_config(yaml.safe_load(SEED_YAML), "seed.yaml")


@pytest.fixture
def router(config: Any) -> Router:
    return Router(config, rng=random.Random(0))


@pytest.mark.parametrize("name", list(PORTKEY))
def test_portkey_json_and_yaml_give_the_same_tree(config: Any, router: Router, name: str) -> None:
    yaml_tree = router.strategies[name].describe()
    portkey_cfg = TargetConfig.model_validate(from_portkey(PORTKEY[name]))
    portkey_tree = compile_inline(portkey_cfg, config.strategies, set(config.providers)).describe()
    assert portkey_tree == yaml_tree
    # the same through the router's inline path, as an object and as a JSON string
    req = RouteRequest("gpt-4o", config=PORTKEY[name], body={"messages": [{"role": "user", "content": "hi"}]})
    assert router.plan_config(req).strategy == "config"
    node = router._inline_node(orjson.dumps(PORTKEY[name]).decode(), None)
    assert node.describe() == yaml_tree


def test_yaml_shape_inline_config_too(config: Any, router: Router) -> None:
    inline = yaml.safe_load(SEED_YAML)["strategies"]["production-fallback"]
    node = router._inline_node(None, inline)
    assert node.describe() == router.strategies["production-fallback"].describe()


def test_seed_fallback_plan(router: Router) -> None:
    plan = router.resolve(RouteRequest("gpt-4", config="production-fallback"))
    assert plan.strategy == "production-fallback" and plan.model == "gpt-4"
    a, b = plan.attempts
    assert (a.provider, a.model, a.timeout, a.retry, a.route) == ("azure-gpt4", None, 10, 2, "production-fallback.targets[0]")
    assert (b.provider, b.model, b.timeout, b.retry, b.route) == (
        "anthropic-primary", "claude-sonnet-4", 15, 0, "production-fallback.targets[1]")
    assert a.on_status_codes is None and a.circuit is not None and a.backoff.base == 0.5
    # static subtree: the same list every time (no per-request allocation beyond the Plan)
    assert router.resolve(RouteRequest("gpt-4", config="production-fallback")).attempts is plan.attempts


def test_seed_pool_plan_spreads(router: Router) -> None:
    routes = Counter(router.resolve(RouteRequest("gpt-4", config="gpt4-pool")).attempts[0].route for _ in range(400))
    assert set(routes) == {"gpt4-pool.providers[0]", "gpt4-pool.providers[1]"}
    assert min(routes.values()) > 150


def test_seed_conditional_plan(router: Router) -> None:
    def route(body: dict[str, Any]) -> tuple[str, str | None, str]:
        a = router.resolve(RouteRequest("m", config="smart-router", body=body)).attempts[0]
        return a.provider, a.model, a.route

    long = {"messages": [{"role": "user", "content": "x" * 4001}], "user": "code-assistant"}
    assert route(long) == ("anthropic-primary", "claude-sonnet-4", "smart-router.rules[0].target")
    assert route({"messages": [{"role": "user", "content": "hi"}], "user": "code-assistant"}) == (
        "openai-primary", "gpt-4o", "smart-router.rules[1].target")
    assert route({"messages": [{"role": "user", "content": "hi"}]}) == (
        "azure-gpt4", "gpt-4o-mini", "smart-router.rules[2].target")
    assert route({}) == ("azure-gpt4", "gpt-4o-mini", "smart-router.rules[2].target")  # missing fields: false


def test_nested_routes_and_inherited_knobs(router: Router) -> None:
    seen = {}
    for _ in range(200):
        plan = router.resolve(RouteRequest("m", config="pool-of-chains"))
        seen[plan.attempts[0].route] = plan.attempts
    chain = seen["pool-of-chains.targets[0].targets[0]"]
    assert [a.route for a in chain] == ["pool-of-chains.targets[0].targets[0]", "pool-of-chains.targets[0].targets[1]"]
    assert chain[0].on_status_codes == frozenset({429, 503}) and chain[1].override_params == {"temperature": 0}
    named = seen["pool-of-chains.targets[1].targets[0]"]
    assert [a.provider for a in named] == ["azure-gpt4", "anthropic-primary"]


def test_models_alias_to_a_strategy() -> None:
    cfg = parse_config({**yaml.safe_load(SEED_YAML), "models": {"smart": "smart-router"}})
    plan = Router(cfg).resolve(RouteRequest("smart", body={"user": "code-assistant"}))
    assert plan.strategy == "smart-router" and plan.attempts[0].model == "gpt-4o"


def test_header_or_body_string_config(router: Router) -> None:
    text = orjson.dumps({"strategy": {"mode": "fallback"}, "targets": [{"provider": "azure-gpt4"},
                                                                         {"provider": "openai-primary"}]}).decode()
    plan = router.resolve(RouteRequest("m", config="  " + text))
    assert [a.route for a in plan.attempts] == ["config.targets[0]", "config.targets[1]"]
    assert router.resolve(RouteRequest("m", config=text)).attempts is plan.attempts  # compiled once, cached


@pytest.mark.parametrize("inline,status,fragment", [
    ("nope", 404, "strategy 'nope' is not configured"),
    ("{not json", 400, "not valid JSON"),
    ("[1, 2]", 404, "not configured"),
    (12, 400, "strategy name or a config object"),
    ({"provider": "nope"}, 400, "config.provider: unknown provider 'nope'"),
    ({"provider": "openai-primary", "api_key": "sk-secret"}, 400, "credentials"),
    ({"provider": "openai-primary", "custom_host": "http://169.254.169.254"}, 400, "credentials"),
    ({"provider": "openai-primary", "input_guardrails": ["x"]}, 400, "guardrails"),
    ({"provider": "openai-primary", "frobnicate": 1}, 400, "unsupported key"),
    ({"strategy": {"mode": "roundabout"}, "targets": []}, 400, "strategy.mode"),
    ({"strategy": {"mode": "fallback"}, "targets": []}, 400, "non-empty"),
    ({"strategy": {"mode": "conditional", "conditions": [{"query": {"metadata.x": {"$where": "1"}}, "then": "a"}]},
      "targets": [{"name": "a", "provider": "openai-primary"}]}, 400, "unknown operator $where"),
    ({"strategy": {"mode": "conditional", "conditions": [{"query": {"url.pathname": "/x"}, "then": "a"}]},
      "targets": [{"name": "a", "provider": "openai-primary"}]}, 400, "only metadata"),
    ({"strategy": {"mode": "conditional", "conditions": [{"query": {"metadata.x": "1"}, "then": "b"}]},
      "targets": [{"name": "a", "provider": "openai-primary"}]}, 400, "no target is named 'b'"),
    ({"type": "fallback", "targets": [{"provider": "openai-primary", "retry": 99}]}, 400, "config.targets[0].retry"),
    ({"type": "fallback", "targets": [{"strategy": "nope"}]}, 400, "unknown strategy 'nope'"),
    ({"strategy": {"mode": "fallback"}, "targets": [{"strategy": {"mode": "fallback"}, "targets": [
        {"strategy": {"mode": "fallback"}, "targets": [{"provider": "openai-primary"}]}]}] * 30}, 400, "too large"),
])
def test_inline_config_errors(router: Router, inline: Any, status: int, fragment: str) -> None:
    with pytest.raises(GatewayError) as info:
        router.resolve(RouteRequest("m", config=inline))
    assert info.value.status == status
    assert fragment in info.value.message
    assert "sk-secret" not in info.value.message
    if status == 400:
        assert info.value.param == "config"


def test_deeply_nested_inline_config_refused(router: Router) -> None:
    cfg: dict[str, Any] = {"provider": "openai-primary"}
    for _ in range(12):
        cfg = {"strategy": {"mode": "fallback"}, "targets": [cfg]}
    with pytest.raises(GatewayError, match="too large"):
        router.resolve(RouteRequest("m", config=cfg))


def test_no_rule_matches() -> None:
    cfg = parse_config({"providers": {"p": {"type": "mock"}}, "strategies": {"only-pro": {
        "type": "conditional", "rules": [{"condition": "metadata.tier == 'pro'", "target": {"provider": "p"}}]}}})
    router = Router(cfg)
    with pytest.raises(GatewayError) as info:
        router.resolve(RouteRequest("m", config="only-pro"))
    assert info.value.status == 400 and info.value.code == "no_route_matched"
    assert router.resolve(RouteRequest("m", config="only-pro", metadata={"tier": "pro"})).attempts[0].provider == "p"


def test_portkey_query_operators() -> None:
    q = {"$or": [{"metadata.tier": {"$in": ["pro", "team"]}, "params.temperature": {"$lte": 0.5}},
                 {"metadata.user-id": {"$regex": "^vip\\d+$"}}, {"params.model": {"$nin": ["a"], "$ne": "b"}},
                 {"metadata.flag": True}, {"params.n": {"$gt": 1, "$lt": 3}}, {"metadata.x": {"$gte": 2}}]}
    expr = query_expr(q, "q")
    from deployments.router.conditions import Condition

    c = Condition(expr)
    assert c.evaluate({"temperature": 0.2}, {"tier": "pro"})
    assert not c.evaluate({"temperature": 0.9}, {"tier": "pro"})
    assert c.evaluate({}, {"user-id": "vip42"})
    assert not c.evaluate({}, {"user-id": "vip"})
    assert c.evaluate({"model": "c"}, {})
    assert not c.evaluate({"model": "b"}, {})
    assert c.evaluate({}, {"flag": True})
    assert c.evaluate({"n": 2}, {}) and not c.evaluate({"n": 3}, {})
    with pytest.raises(PortkeyError):
        query_expr({"metadata.x": {"$in": "notalist"}}, "q")


def test_portkey_retry_after_switch_and_circuit() -> None:
    out = from_portkey({"provider": "p", "retry": {"attempts": 3, "on_status_codes": [429],
                                                   "use_retry_after_header": False}})
    assert out == {"provider": "p", "retry": 3, "on_status_codes": [429], "backoff": {"retry_after_cap": 0}}
    out = from_portkey({"strategy": {"mode": "loadbalance", "sticky": {"enabled": True,
                                                                        "hash_fields": ["metadata.session_id"]}},
                        "targets": [{"provider": "p"}]})
    assert out["sticky_key"] == "metadata.session_id"
    out = from_portkey({"strategy": {"mode": "loadbalance", "sticky": {"hash_fields": ["metadata.a", "params.user"]}},
                        "targets": [{"provider": "p"}]})
    assert out["sticky_key"] == "[metadata.a, request.user]"
    with pytest.raises(PortkeyError, match="gateway's strategies"):
        from_portkey({"strategy": {"mode": "fallback", "cb_config": {"failure_threshold": 1}},
                      "targets": [{"provider": "p"}]})


def test_inline_configs_cannot_tune_shared_breakers(router: Router) -> None:
    with pytest.raises(GatewayError, match="breaker thresholds"):
        router.resolve(RouteRequest("m", config={"type": "fallback", "circuit_breaker": {"failures": 1},
                                                 "targets": [{"provider": "openai-primary"}]}))
    plan = router.resolve(RouteRequest("m", config={"type": "fallback", "circuit_breaker": {"enabled": False},
                                                    "targets": [{"provider": "openai-primary"}]}))
    assert plan.attempts[0].circuit is None


# --- start-up errors name the file, the strategy and the rule ---------------------------------------

def _cfg(strategies: dict[str, Any]) -> dict[str, Any]:
    return {"providers": {"p": {"type": "mock"}, "q": {"type": "mock"}}, "strategies": strategies}


@pytest.mark.parametrize("strategies,path,fragment", [
    ({"a": {"type": "fallback", "targets": [{"strategy": "b"}]},
      "b": {"type": "fallback", "targets": [{"provider": "p"}, {"strategy": "a"}]}},
     "strategies.b.targets[1].strategy", "cycle: a -> b -> a"),
    ({"a": {"type": "fallback", "targets": [{"strategy": "a"}]}}, "strategies.a.targets[0].strategy", "cycle"),
    ({"a": {"type": "fallback", "targets": [{"provider": "p"}, {"provider": "zz"}]}},
     "strategies.a.targets[1].provider", "unknown provider 'zz'"),
    ({"a": {"type": "fallback", "targets": [{"strategy": "zz"}]}}, "strategies.a.targets[0].strategy",
     "unknown strategy 'zz'"),
    ({"r": {"type": "conditional", "rules": [
        {"condition": "default", "target": {"provider": "p"}},
        {"condition": "request.user = 'x'", "target": {"provider": "q"}}]}},
     "strategies.r.rules[1].condition", "cannot parse condition"),
    ({"r": {"type": "conditional", "rules": [
        {"condition": "request.x matches '(a+)+'", "target": {"provider": "p"}}]}},
     "strategies.r.rules[0].condition", "regex"),
    ({"lb": {"type": "load_balance", "sticky_key": "metadata.", "providers": [{"provider": "p"}]}},
     "strategies.lb.sticky_key", "cannot parse"),
    ({"lb": {"type": "load_balance", "providers": [{"provider": "p", "weight": 0}]}},
     "strategies.lb.providers", "weight above 0"),
    ({"f": {"type": "fallback", "providers": [{"provider": "p"}]}}, "strategies.f", "load_balance spelling"),
    ({"f": {"type": "fallback", "targets": [{"provider": "p"}], "rules": []}}, "strategies.f", "conditional"),
    ({"f": {"type": "fallback"}}, "strategies.f", "needs `targets`"),
    ({"f": {"type": "fallback", "model": "x", "targets": [{"provider": "p"}]}}, "strategies.f", "`model`"),
    ({"f": {"type": "fallback", "targets": [{"provider": "p", "strategy": "f"}]}}, "strategies.f.targets[0]",
     "exactly one of"),
    ({"f": {"type": "fallback", "targets": [{"provider": "p", "on_status_codes": [42]}]}},
     "strategies.f.targets[0].on_status_codes", "not an HTTP status"),
    ({"f": {"type": "fallback", "targets": [{"provider": "p", "retry": -1}]}}, "strategies.f.targets[0].retry",
     "greater than or equal"),
    ({"f": {"type": "roundabout", "targets": [{"provider": "p"}]}}, "strategies.f.type", "Input should be"),
    ({"f": {"targets": [{"provider": "p"}]}}, "strategies.f.type", "required"),
    ({"f": {"type": "fallback", "targets": [{"provider": "p", "timeout": 0}]}}, "strategies.f.targets[0].timeout",
     "greater than"),
])
def test_startup_errors(strategies: dict[str, Any], path: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_cfg(strategies), "gw.yaml")
    assert info.value.source == "gw.yaml"
    assert info.value.path == path, str(info.value)
    assert fragment in info.value.reason


def test_models_may_name_a_strategy_and_strategies_reference_each_other() -> None:
    cfg = parse_config({**_cfg({"inner": {"type": "fallback", "targets": [{"provider": "p"}]},
                                "outer": {"type": "load_balance", "targets": [{"strategy": "inner"}, {"provider": "q"}]}}),
                        "models": {"fast": "outer"}})
    assert set(Router(cfg).strategies) == {"inner", "outer"}


def test_plans_survive_a_handle_hop(router: Router) -> None:
    """With `placement.router: deployment` the Plan crosses a Serve handle (pickled)."""
    import pickle

    plan = router.resolve(RouteRequest("gpt-4", config="production-fallback"))
    copy = pickle.loads(pickle.dumps(plan))
    assert copy == plan and copy.attempts[0].circuit == plan.attempts[0].circuit
    req = RouteRequest("m", config={"provider": "openai-primary"}, metadata={"a": "b"}, body={"x": [1]})
    assert pickle.loads(pickle.dumps(req)) == req


def test_cache_settings_flow_to_the_plan() -> None:
    cfg = parse_config({"providers": {"p": {"type": "mock"}, "q": {"type": "mock"}}, "strategies": {
        "s": {"type": "fallback", "cache": {"mode": "exact", "ttl": 60},
              "targets": [{"provider": "p"}, {"provider": "q", "cache": False}]},
        "t": {"type": "fallback", "targets": [{"provider": "q", "cache": "semantic"}, {"provider": "p"}]}}})
    router = Router(cfg)
    plan = router.resolve(RouteRequest("m", config="s"))
    assert plan.cache == {"mode": "exact", "ttl": 60}
    assert [a.cache for a in plan.attempts] == [{"mode": "exact", "ttl": 60}, False]
    assert router.resolve(RouteRequest("m", config="t")).cache == "semantic"
    assert router.resolve(RouteRequest("m", config={"provider": "p", "cache": {"mode": "simple", "max_age": 5}})).cache \
        == {"mode": "simple", "max_age": 5}
    assert router.resolve(RouteRequest("m", config="  {\"provider\": \"p\"}")).cache is None

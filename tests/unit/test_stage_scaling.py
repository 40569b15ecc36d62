"""Replica counts the builder gives each deployment: `serve.ingress_replicas`, `serve.stages` and
`serve.stage_overrides` (no Ray: the options and the bound graph are inspected, not deployed)."""

from __future__ import annotations

import os
from typing import Any

import pytest
import ray

from serve_app.builder import build_app, cluster_cpus, ingress_options, stage_options
from serve_app.config import ConfigError, parse_config

PROVIDERS = {"p": {"type": "mock"}}


def cfg(**serve: Any) -> Any:
    return parse_config({"providers": PROVIDERS, "serve": serve})


def test_stage_deployments_autoscale_by_default() -> None:
    scaling = stage_options(cfg(), "Provider:p")["autoscaling_config"]
    assert scaling == {"min_replicas": 1, "initial_replicas": 1, "max_replicas": max(1, os.cpu_count() or 1),
                       "target_ongoing_requests": 64, "upscale_delay_s": 30, "downscale_delay_s": 600,
                       "look_back_period_s": 30}
    assert "num_replicas" not in stage_options(cfg(), "Router")


def test_stage_settings_and_per_deployment_overrides() -> None:
    c = cfg(max_ongoing_requests=100, stages={"min_replicas": 2, "max_replicas": 6, "upscale_delay_s": 5},
            stage_overrides={"Provider:p": {"max_replicas": 3, "target_ongoing_requests": 4}})
    router = stage_options(c, "Router")["autoscaling_config"]
    assert (router["min_replicas"], router["max_replicas"], router["target_ongoing_requests"]) == (2, 6, 25)
    provider = stage_options(c, "Provider:p")["autoscaling_config"]
    assert (provider["min_replicas"], provider["initial_replicas"], provider["max_replicas"]) == (2, 2, 3)
    assert provider["target_ongoing_requests"] == 4 and provider["upscale_delay_s"] == 5


def test_auto_is_the_cluster_cpu_count_when_connected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 12.0, "memory": 1e9})
    assert cluster_cpus() == 12
    ingress = ingress_options(cfg())["autoscaling_config"]
    assert (ingress["min_replicas"], ingress["initial_replicas"], ingress["max_replicas"]) == (1, 12, 12)
    assert stage_options(cfg(), "Router")["autoscaling_config"]["max_replicas"] == 12


def test_a_number_of_ingress_replicas_is_exact() -> None:
    options = ingress_options(cfg(ingress_replicas=3))
    assert options["num_replicas"] == 3 and "autoscaling_config" not in options


@pytest.mark.parametrize(("serve", "path", "reason"), [
    ({"ingress_replicas": 0}, "serve.ingress_replicas", "at least 1"),
    ({"ingress_replicas": -2}, "serve.ingress_replicas", "at least 1"),
    ({"ingress_replicas": True}, "serve.ingress_replicas", "whole number"),
    ({"ingress_replicas": "many"}, "serve.ingress_replicas", "'auto'"),
    ({"stages": {"max_replicas": 0}}, "serve.stages.max_replicas", "at least 1"),
    ({"stages": {"min_replicas": 0}}, "serve.stages.min_replicas", "greater than or equal to 1"),
    ({"stages": {"min_replicas": 3, "max_replicas": 2}}, "serve.stages", "must not exceed max_replicas"),
    ({"stages": {"look_back_period_s": 5}}, "serve.stages.look_back_period_s", "greater than 10"),
    ({"stage_overrides": {"Ingress": {}}}, "serve.stage_overrides", "not a stage deployment"),
    ({"stages": {"min_replicas": 3}, "stage_overrides": {"Router": {"max_replicas": 2}}},
     "serve.stage_overrides", "Router: min_replicas must not exceed max_replicas"),
])
def test_bad_replica_settings_name_the_key(serve: dict[str, Any], path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        cfg(**serve)
    assert err.value.path == path and reason in err.value.reason


def test_an_override_must_name_a_configured_provider() -> None:
    with pytest.raises(ConfigError) as err:
        build_app(cfg(stage_overrides={"Provider:nope": {"max_replicas": 2}}))
    assert err.value.path == "serve.stage_overrides.Provider:nope"


def _bound(app: Any, name: str) -> Any:
    """The bound deployment called `name` anywhere in the graph under `app`."""
    from ray.serve.deployment import Application

    todo = [app]
    while todo:
        node = todo.pop()._bound_deployment
        if node.name == name:
            return node
        for arg in [*node.init_args, *node.init_kwargs.values()]:
            items = arg.values() if isinstance(arg, dict) else [arg]
            todo.extend(a for a in items if isinstance(a, Application))
    raise AssertionError(f"no deployment {name}")


@pytest.mark.parametrize(("backend", "replicas"), [("redis", None), ("memory", 1)])
def test_semantic_cache_deployment_scaling(backend: str, replicas: int | None) -> None:
    """With redis the SemanticCache replicas share one index through Redis, so it autoscales; with the
    memory backend all vectors must live in one replica."""
    app = build_app(parse_config({
        "providers": PROVIDERS, "placement": {"providers": "deployment"},
        "cache": {"enabled": True, "mode": "semantic", "backend": backend},
        "serve": {"stage_overrides": {"SemanticCache": {"max_replicas": 3, "target_ongoing_requests": 8}}}}))
    config = _bound(app, "SemanticCache")._deployment_config
    provider = _bound(app, "Provider:p")._deployment_config
    assert provider.autoscaling_config.max_replicas == max(1, os.cpu_count() or 1)
    if replicas is None:
        assert config.autoscaling_config.max_replicas == 3
        assert config.autoscaling_config.target_ongoing_requests == 8
    else:
        assert config.autoscaling_config is None and config.num_replicas == replicas

"""`build_app(args)`: the one place that decides placement and binds the Serve graph.

    Ingress ─┬─ Router            (in-process by default; `placement.router: deployment`)
             ├─ Provider:<name>   (in-process by default; `placement.providers: deployment`)
             ├─ SemanticCache     (its own deployment, bound only when semantic caching can be used)
             └─ Guardrails        (model-holding checks; bound only when such a check is configured)

Stages and the ingress reserve no CPU (they are I/O-bound; one CPU each would not even fit five
deployments on two cores), accept hundreds of concurrent requests (the default of 5 queues at
concurrency 32), and log no per-request lines (1.8–3.6 ms of CPU per request). Router, Provider and
SemanticCache deployments are autoscaled by `serve.stages` / `serve.stage_overrides`, Guardrails by
`guardrails.deployment`. Values from a Serve config's
`deployments:` list override these.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .config import ConfigError, GatewayConfig, resolve_config

APP_NAME = "raygate"
QUIET_LOGS = {"enable_access_log": False, "log_level": "WARNING"}
REPO_ROOT = Path(__file__).resolve().parent.parent


def locate_config(path: str) -> Path:
    """A relative config path is tried against the working directory, then the repo root."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return candidate
    in_repo = REPO_ROOT / candidate
    return in_repo if in_repo.exists() else candidate


def load_args(args: Any) -> GatewayConfig:
    """Builder args: {"config": <path>} or {"gateway_config": {...}} or a GatewayConfig."""
    if isinstance(args, GatewayConfig):
        return args
    if isinstance(args, str | os.PathLike):
        return resolve_config(locate_config(str(args)))
    if not isinstance(args, dict):
        raise ConfigError("<serve args>", "", "builder args must be a mapping with 'config'")
    unknown = set(args) - {"config", "gateway_config"}
    if unknown:
        raise ConfigError("<serve args>", sorted(unknown)[0], "unknown key")
    if isinstance(args.get("config"), GatewayConfig):
        return args["config"]
    if "gateway_config" in args:
        return resolve_config(args["gateway_config"])
    if "config" not in args:
        raise ConfigError("<serve args>", "config", "is required (path of the gateway config file)")
    return resolve_config(locate_config(str(args["config"])))


def cluster_cpus() -> int:
    """CPUs of the Ray cluster this process is connected to (where the replicas run); without a
    connection (unit tests, a plain import) the CPUs of this machine."""
    import ray

    if ray.is_initialized():
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus >= 1:
            return cpus
    return max(1, os.cpu_count() or 1)


def ingress_replicas(cfg: GatewayConfig) -> int:
    """The most ingress replicas the app can run: the number, or for `auto` the cluster's CPUs."""
    replicas = cfg.serve.ingress_replicas
    return cluster_cpus() if replicas == "auto" else replicas


def ingress_options(cfg: GatewayConfig) -> dict[str, Any]:
    """A number: exactly that many replicas. `auto`: autoscaled from 1 to the cluster's CPUs, starting at
    the top."""
    options: dict[str, Any] = {
        "name": "Ingress",
        "max_ongoing_requests": cfg.serve.max_ongoing_requests,
        "ray_actor_options": {"num_cpus": 0},
        "logging_config": QUIET_LOGS,
    }
    if cfg.serve.ingress_replicas != "auto":
        options["num_replicas"] = cfg.serve.ingress_replicas
        return options
    cpus = ingress_replicas(cfg)
    options["autoscaling_config"] = {
        "min_replicas": 1,
        "initial_replicas": cpus,
        "max_replicas": cpus,
        "target_ongoing_requests": max(1, cfg.serve.max_ongoing_requests // 4),
    }
    return options


def autoscaling_config(cfg: GatewayConfig, name: str) -> dict[str, Any]:
    """Serve's autoscaling_config for the stage deployment `name` (see ServeSection.scaling)."""
    scaling = cfg.serve.scaling(name)
    top = cluster_cpus() if scaling.max_replicas == "auto" else scaling.max_replicas
    top = max(top, scaling.min_replicas, scaling.initial_replicas or 1)
    target = scaling.target_ongoing_requests or max(1, cfg.serve.max_ongoing_requests // 4)
    return {
        "min_replicas": scaling.min_replicas,
        "initial_replicas": scaling.initial_replicas or scaling.min_replicas,
        "max_replicas": top,
        "target_ongoing_requests": target,
        "upscale_delay_s": scaling.upscale_delay_s,
        "downscale_delay_s": scaling.downscale_delay_s,
        "look_back_period_s": scaling.look_back_period_s,
    }


def stage_options(cfg: GatewayConfig, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "autoscaling_config": autoscaling_config(cfg, name),
        "max_ongoing_requests": cfg.serve.max_ongoing_requests,
        "ray_actor_options": {"num_cpus": 0},
        "logging_config": QUIET_LOGS,
    }


def check_stage_overrides(cfg: GatewayConfig) -> None:
    """`serve.stage_overrides` may only name a provider that exists."""
    for name in cfg.serve.stage_overrides:
        provider = name.partition("Provider:")[2]
        if provider and provider not in cfg.providers:
            raise ConfigError(cfg.source, f"serve.stage_overrides.{name}", f"unknown provider {provider!r}")


def build_app(args: Any) -> Any:
    """Validate the gateway config and bind the graph; returns a Serve Application."""
    from ray import serve

    from deployments.cache.deployment import semantic_cache_app
    from deployments.guardrails.deployment import guardrail_app
    from deployments.providers.stage import ProviderDeployment
    from deployments.router.router import RouterDeployment

    from .ingress import Ingress

    cfg = load_args(args)
    check_stage_overrides(cfg)
    if cfg.storage.enabled:  # create or upgrade the schema now: a bad storage.url fails the deploy, not a replica
        from .storage import prepare_storage

        prepare_storage(cfg.storage)
    provider_handles: dict[str, Any] = {}
    if cfg.placement.providers == "deployment":
        deployment = serve.deployment(ProviderDeployment)
        for name, pcfg in cfg.providers.items():
            provider_handles[name] = deployment.options(**stage_options(cfg, f"Provider:{name}")).bind(
                pcfg, cfg.observability.tracing)
    router_handle = None
    if cfg.placement.router == "deployment":
        router_handle = serve.deployment(RouterDeployment).options(**stage_options(cfg, "Router")).bind(cfg)
    ingress = serve.deployment(serve.ingress()(Ingress)).options(**ingress_options(cfg))
    # None unless semantic caching can be used / a guardrail check runs in its own deployment
    semantic_handle = semantic_cache_app(cfg, stage_options(cfg, "SemanticCache"))
    guardrails_handle = guardrail_app(cfg, stage_options(cfg, "Guardrails"))
    return ingress.bind(cfg, provider_handles or None, router_handle, semantic_cache=semantic_handle,
                        guardrails=guardrails_handle)

"""`build_app(args)`: the one place that decides placement and binds the Serve graph.

    Ingress ─┬─ Router            (in-process by default; `placement.router: deployment`)
             ├─ Provider:<name>   (in-process by default; `placement.providers: deployment`)
             ├─ SemanticCache     (its own deployment, bound only when semantic caching can be used)
             └─ Guardrails        (model-holding checks; bound only when such a check is configured)

Stages and the ingress
reserve no CPU (they are I/O-bound; one CPU each would not even fit five deployments on two
cores), accept hundreds of concurrent requests (the default of 5 queues at concurrency 32), and
log no per-request lines (1.8–3.6 ms of CPU per request). Values from a Serve config's
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


def ingress_replicas(cfg: GatewayConfig) -> int:
    if cfg.serve.ingress_replicas == "auto":
        return max(1, os.cpu_count() or 1)
    return cfg.serve.ingress_replicas


def stage_options(cfg: GatewayConfig, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "num_replicas": cfg.serve.stage_replicas,
        "max_ongoing_requests": cfg.serve.max_ongoing_requests,
        "ray_actor_options": {"num_cpus": 0},
        "logging_config": QUIET_LOGS,
    }


def ingress_options(cfg: GatewayConfig) -> dict[str, Any]:
    replicas = ingress_replicas(cfg)
    return {
        "name": "Ingress",
        "max_ongoing_requests": cfg.serve.max_ongoing_requests,
        "ray_actor_options": {"num_cpus": 0},
        "logging_config": QUIET_LOGS,
        "autoscaling_config": {
            "min_replicas": 1,
            "initial_replicas": replicas,
            "max_replicas": replicas,
            "target_ongoing_requests": max(1, cfg.serve.max_ongoing_requests // 4),
        },
    }


def build_app(args: Any) -> Any:
    """Validate the gateway config and bind the graph; returns a Serve Application."""
    from ray import serve

    from deployments.cache.deployment import semantic_cache_app
    from deployments.guardrails.deployment import guardrail_app
    from deployments.providers.stage import ProviderDeployment
    from deployments.router.router import RouterDeployment

    from .ingress import Ingress

    cfg = load_args(args)
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
    semantic_handle = semantic_cache_app(cfg, stage_options(cfg, "SemanticCache"))  # None unless semantic is used
    guardrails_handle = guardrail_app(cfg, stage_options(cfg, "Guardrails"))  # None unless a check runs there
    return ingress.bind(cfg, provider_handles or None, router_handle, semantic_cache=semantic_handle,
                        guardrails=guardrails_handle)

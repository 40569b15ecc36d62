"""`Guardrails`: the model-holding checks as their own Serve deployment (autoscaled).

Bound by serve_app/builder.py only when some check would run here: a check that holds a model
(toxicity, content policy) with `placement.guardrails: auto` (the default), or any check with
`deployment`. Each replica builds the same compiled guardrails as the ingress (checks are named
by "set/index") and loads its models once, at start-up; checks run in a worker thread so the
replica keeps accepting calls. The ingress reaches it through `RemoteGuardrails`, and only for a
request whose plan has such a check.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from .base import Finding, Subject
from .config import GuardrailsConfig
from .engine import Guardrails, evaluate_sequence


class GuardrailDeployment:
    def __init__(self, guardrails_config: GuardrailsConfig, placement: str) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.guardrails = Guardrails(guardrails_config, placement, remote_available=False)
        # load only what runs here: the models of the checks the ingress sends over
        served = Guardrails(guardrails_config, placement, remote_available=True)
        for key, bound in served.by_key.items():
            if bound.remote:
                self.guardrails.by_key[key].check.load()

    async def evaluate(self, keys: list[str], subject: Subject) -> tuple[list[Finding], Subject]:
        bounds = [self.guardrails.by_key[k] for k in keys]
        findings = await asyncio.to_thread(evaluate_sequence, bounds, subject)
        return findings, subject

    async def ping(self) -> bool:
        return True


class RemoteGuardrails:
    """Ingress-side stand-in: one handle hop per run of consecutive deployment-placed checks."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    async def evaluate(self, keys: list[str], subject: Subject) -> tuple[list[Finding], Subject]:
        return await self._handle.evaluate.remote(keys, subject)


def guardrail_app(cfg: Any, base_options: dict[str, Any]) -> Any:
    """Bind the deployment when some check runs there; None otherwise (called by builder.py)."""
    g = cfg.guardrails
    placement = cfg.placement.guardrails
    if placement == "in_process" or not Guardrails(g, placement, remote_available=True).any_remote:
        return None
    from ray import serve

    d = g.deployment
    options = dict(base_options)
    options.pop("num_replicas", None)
    options["autoscaling_config"] = {"min_replicas": d.min_replicas, "initial_replicas": d.min_replicas,
                                     "max_replicas": d.max_replicas,
                                     "target_ongoing_requests": d.target_ongoing}
    offline = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    options["ray_actor_options"] = {**options.get("ray_actor_options", {}), "num_cpus": d.num_cpus,
                                    "runtime_env": {"env_vars": offline}}
    return serve.deployment(GuardrailDeployment).options(**options).bind(g, placement)

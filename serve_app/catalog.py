"""GET /v1/models: every model a request may name, each card saying what owns it.

- `models:` aliases: `owned_by: "alias:<provider or strategy>"`;
- strategies a request may name as its model (every target has a model of its own):
  `owned_by: "strategy"`;
- each provider's declared `models` (globs are patterns, not names: not listed), its own `model`
  and, with `discover_models`, its upstream's listing (only names it accepts): as
  `<provider>/<model>`, and as the bare name where a bare request for it reaches that provider
  (`owned_by: "<provider>"`).

The listing follows the router's own resolution (deployments/router/router.py), so a listed name
routes where its card says. Everything but discovered listings is computed once per config.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from deployments.providers.served import is_glob
from deployments.router.plan import RouteRequest
from deployments.router.router import Router

from .errors import GatewayError

Discover = Callable[[str, float], Awaitable[list[str]]]

_STATIC: dict[int, tuple[Any, Router, list[tuple[str, str]]]] = {}  # id(config) -> (config, router, cards)


async def model_cards(config: Any, created: int, discover: Discover) -> list[dict[str, Any]]:
    """The cards of GET /v1/models (`discover(provider, ttl)` fetches a provider's own listing)."""
    router, static = _static(config)
    ids = dict(static)
    for name, pcfg in config.providers.items():
        if pcfg.discover_models:
            served = router.served[name]
            for model in await discover(name, pcfg.discovery_ttl):
                if served.accepts(model):
                    _add_provider_model(ids, router, name, model)
    return [{"id": mid, "object": "model", "created": created, "owned_by": owner}
            for mid, owner in ids.items()]


def _static(config: Any) -> tuple[Router, dict[str, str]]:
    hit = _STATIC.get(id(config))
    if hit is not None and hit[0] is config:
        return hit[1], dict(hit[2])
    router = Router(config)
    ids: dict[str, str] = {}
    for alias, target in config.models.items():
        ids.setdefault(alias, "alias:" + (target if isinstance(target, str) else target.provider))
    for name in config.strategies:
        if name in router.nameable:
            ids.setdefault(name, "strategy")
    for name, pcfg in config.providers.items():
        served = router.served[name]
        names = [m for m in pcfg.models if not is_glob(m)]
        if pcfg.model and pcfg.model not in names and served.accepts(pcfg.model):
            names.append(pcfg.model)
        for model in names:
            _add_provider_model(ids, router, name, model)
    _STATIC[id(config)] = (config, router, list(ids.items()))
    return router, ids


def _add_provider_model(ids: dict[str, str], router: Router, provider: str, model: str) -> None:
    if model not in ids and _reaches(router, model, provider):
        ids[model] = provider
    ids.setdefault(f"{provider}/{model}", provider)


def _reaches(router: Router, model: str, provider: str) -> bool:
    """Does a request naming just `model` go to `provider`?"""
    try:
        plan = router.resolve(RouteRequest(model))
    except GatewayError:
        return False
    return plan.strategy is None and plan.attempts[0].provider == provider


__all__ = ["model_cards"]

"""Routing configuration (the `strategies:` section); see the routing issue for the full shape."""

from __future__ import annotations

from typing import Any

StrategyConfig = dict[str, Any]


def check_strategies(cfg: Any) -> None:
    """Validate strategy references against the configured providers (start-up only)."""
    return None

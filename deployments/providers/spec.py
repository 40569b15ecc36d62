"""What a provider module declares: its config model, its adapter and how it reaches upstream."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import Adapter, ProviderConfig
from .params import NO_PARAMS, UnsupportedAction


def http_transport(config: ProviderConfig) -> Any:
    from .transport import shared_http_transport

    return shared_http_transport()


@dataclass(frozen=True)
class ProviderSpec:
    config_model: type[ProviderConfig]
    adapter: type[Adapter]
    make_transport: Callable[[ProviderConfig], Any] = http_transport

    @property
    def unsupported_params(self) -> dict[str, UnsupportedAction]:
        """The chat fields the type's API does not take, for every model: "drop" or "reject". Declared
        as `params` on the adapter (params.py), which applies them; this is the read-only view."""
        return getattr(self.adapter, "params", NO_PARAMS).actions()

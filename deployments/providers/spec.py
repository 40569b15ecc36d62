"""What a provider module declares: its config model, its adapter, how it reaches upstream, and the
chat parameters its API does not support."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .base import Adapter, ProviderConfig


def http_transport(config: ProviderConfig) -> Any:
    from .transport import shared_http_transport

    return shared_http_transport()


# What the Provider stage does with a chat request field the type's API does not take: "drop" it
# (harmless to lose) or "reject" it with a 400 naming it (the client relies on its effect), before
# translation, so it never becomes an upstream 400 that seems to blame the gateway.
UnsupportedAction = Literal["drop", "reject"]


@dataclass(frozen=True)
class ProviderSpec:
    config_model: type[ProviderConfig]
    adapter: type[Adapter]
    make_transport: Callable[[ProviderConfig], Any] = http_transport
    unsupported_params: Mapping[str, UnsupportedAction] = field(default_factory=dict)

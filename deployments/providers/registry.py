"""The provider registry: provider `type` -> the module that declares it.

Adding a provider is one module exporting `SPEC` and one line here. Modules load lazily, so a
config that uses two types imports two adapters (Bedrock's botocore stays unloaded otherwise).
"""

from __future__ import annotations

import importlib

from .spec import ProviderSpec

_MODULES: dict[str, str] = {
    "openai": "deployments.providers.openai",
    "mock": "deployments.providers.mock",
    "anthropic": "deployments.providers.anthropic",
    "cohere": "deployments.providers.cohere",
    "google": "deployments.providers.google",
    "bedrock": "deployments.providers.bedrock",
}


def names() -> list[str]:
    return list(_MODULES)


def get(provider_type: object) -> ProviderSpec | None:
    module = _MODULES.get(provider_type) if isinstance(provider_type, str) else None
    if module is None:
        return None
    return importlib.import_module(module).SPEC

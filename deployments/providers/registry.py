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
    "azure-openai": "deployments.providers.azure_openai",
    "mistral": "deployments.providers.mistral",
    "groq": "deployments.providers.groq",
    "together": "deployments.providers.together",
    "ollama": "deployments.providers.ollama",
    "vllm": "deployments.providers.vllm",
    "ray-serve": "deployments.providers.ray_serve",
}


def names() -> list[str]:
    return list(_MODULES)


def get(provider_type: object) -> ProviderSpec | None:
    module = _MODULES.get(provider_type) if isinstance(provider_type, str) else None
    if module is None:
        return None
    return importlib.import_module(module).SPEC

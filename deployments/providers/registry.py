"""The provider registry: provider `type` -> the module that declares it.

Adding a provider is one module exporting `SPEC` and one line here; an OpenAI-compatible preset is
one line naming its spec in presets.py (`module:NAME`). Modules load lazily, so a config that uses
two types imports two adapters (Bedrock's botocore stays unloaded otherwise).
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
    "deepseek": "deployments.providers.presets:DEEPSEEK",
    "xai": "deployments.providers.presets:XAI",
    "perplexity": "deployments.providers.presets:PERPLEXITY",
    "fireworks": "deployments.providers.presets:FIREWORKS",
    "openrouter": "deployments.providers.presets:OPENROUTER",
    "cerebras": "deployments.providers.presets:CEREBRAS",
    "sambanova": "deployments.providers.presets:SAMBANOVA",
    "nvidia-nim": "deployments.providers.presets:NVIDIA_NIM",
    "deepinfra": "deployments.providers.presets:DEEPINFRA",
    "huggingface": "deployments.providers.presets:HUGGINGFACE",
    "lmstudio": "deployments.providers.presets:LMSTUDIO",
    "llamacpp": "deployments.providers.presets:LLAMACPP",
}


def names() -> list[str]:
    return list(_MODULES)


def get(provider_type: object) -> ProviderSpec | None:
    entry = _MODULES.get(provider_type) if isinstance(provider_type, str) else None
    if entry is None:
        return None
    module, _, attr = entry.partition(":")
    return getattr(importlib.import_module(module), attr or "SPEC")

"""Prompt management: versioned prompts in storage, rendered with variables, run as chat completions,
compared in A/B tests (docs/prompts.md).

- `versions.py` semver order · `renderer.py` safe `{{name}}` templates · `split.py` A/B selection
- `prompt.py` deploy checks, compiled versions, version resolution · `store.py` the tables and stats
- `cache.py` a replica's copy (revision-checked, `prompts.cache_ttl_s`) · `actor.py` the store as a Ray actor
- `api.py` the /v1/prompts routes (HTTP and handle) · `config.py` the `prompts:` section
"""

from __future__ import annotations

from typing import Any


def attach_prompts(gateway: Any, config: Any, use_ray: bool) -> Any:
    """Give a replica's Gateway its prompts API (None when `prompts.enabled` is false): the store is
    the shared actor under Ray, or a PromptStore in this process."""
    if not config.prompts.enabled:
        return None
    from .api import PromptsApi

    if use_ray:
        from .actor import ActorPromptStore

        store: Any = ActorPromptStore(config.storage)
    else:
        from serve_app.storage import Storage

        from .store import PromptStore

        store = PromptStore(Storage(config.storage))
    gateway.prompts = PromptsApi(gateway, store, config.prompts.cache_ttl_s)
    return gateway.prompts


__all__ = ["attach_prompts"]

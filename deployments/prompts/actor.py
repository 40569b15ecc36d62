"""The prompt store as one named Ray actor per database, and the replica's stand-in for it.

Replicas on any node reach the database through the actor `raygate-prompts-<key>` (a SQLite file
lives on the head node, where `raygate serve` resolved its path, like the record writer's). The
store is plain Python (store.py); this module only places it.
"""

from __future__ import annotations

from typing import Any

from serve_app.errors import GatewayError
from serve_app.storage import Storage, StorageConfig

from .store import PromptStore

NAMESPACE = "raygate"
# the PromptStore methods a replica calls
METHODS = frozenset({"deploy", "set_label", "delete_label", "delete_version", "put_test", "delete_test", "list",
                     "get", "get_version", "snapshot", "stats"})


class PromptStoreActor(PromptStore):
    def __init__(self, config: StorageConfig) -> None:
        super().__init__(Storage(config))


def prompt_actor(config: StorageConfig) -> Any:
    """Get or create the database's prompt-store actor (inside a Ray process, never at import)."""
    import ray

    options: dict[str, Any] = {
        "name": f"raygate-prompts-{config.key}", "namespace": NAMESPACE, "lifetime": "detached",
        "get_if_exists": True, "max_restarts": -1, "max_task_retries": 0, "num_cpus": 0,
    }
    if config.sqlite_path:
        options["resources"] = {"node:__internal_head__": 0.001}
    return ray.remote(PromptStoreActor).options(**options).remote(config)


class ActorPromptStore:
    """Same interface as PromptStore; each call is one actor call. A GatewayError raised in the actor
    (404, 409) is re-raised as itself, so the client sees the same error as in-process."""

    def __init__(self, config: StorageConfig) -> None:
        self.config = config
        self._actor: Any = None

    async def _call(self, method: str, *args: Any) -> Any:
        if self._actor is None:
            self._actor = prompt_actor(self.config)
        try:
            return await getattr(self._actor, method).remote(*args)
        except GatewayError:
            raise
        except Exception as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, GatewayError):
                raise cause from None
            self._actor = None  # look the actor up again next time
            raise

    def __getattr__(self, method: str) -> Any:
        if method not in METHODS:
            raise AttributeError(method)

        async def call(*args: Any) -> Any:
            return await self._call(method, *args)
        return call

    async def close(self) -> None:  # the actor is shared by every replica; it stays
        self._actor = None

"""Where the buckets live: named Ray actors shared by every ingress replica, or this process.

`RateLimitActor` is a thin actor body around `BucketBoard` (bucket.py), named
`raygate-ratelimit-<i>` for shard i (namespace `raygate`, detached, no CPU reserved, restarted
when it dies — with full buckets: the state is not persisted). Buckets are spread over the shards
by a stable hash of their id, so every replica sends a bucket to the same actor. `ShardedBoard`
is the replica's stand-in with the board's interface (`async sync`); `LocalBoard` is a board in
this process (no Ray: tests, a single uvicorn).
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

from .bucket import BucketBoard, Item, Reply

ACTOR_PREFIX = "raygate-ratelimit"
NAMESPACE = "raygate"


class RateLimitActor:
    def __init__(self) -> None:
        self.board = BucketBoard()

    def sync(self, lessee: str, ttl: float, items: list[Item]) -> list[Reply]:
        return self.board.sync(lessee, ttl, items)

    def view(self) -> dict[str, Any]:
        return self.board.view()


class LocalBoard:
    def __init__(self, board: BucketBoard | None = None) -> None:
        self.board = board or BucketBoard()

    async def sync(self, lessee: str, ttl: float, items: list[Item]) -> list[Reply]:
        return self.board.sync(lessee, ttl, items)


class ActorBoard:
    def __init__(self, actor: Any) -> None:
        self.actor = actor

    async def sync(self, lessee: str, ttl: float, items: list[Item]) -> list[Reply]:
        return await self.actor.sync.remote(lessee, ttl, items)


def shard_of(bucket_id: str, shards: int) -> int:
    return zlib.crc32(bucket_id.encode()) % shards  # not hash(): it differs between processes


class ShardedBoard:
    """Boards by shard: one call per shard a sync touches, in parallel, replies in item order."""

    def __init__(self, boards: list[Any]) -> None:
        self.boards = boards

    async def sync(self, lessee: str, ttl: float, items: list[Item]) -> list[Reply]:
        n = len(self.boards)
        if n == 1:
            return await self.boards[0].sync(lessee, ttl, items)
        groups: dict[int, list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(shard_of(item[0], n), []).append(i)
        shards = list(groups)
        answers = await asyncio.gather(*(self.boards[s].sync(lessee, ttl, [items[i] for i in groups[s]])
                                         for s in shards))
        out: list[Any] = [None] * len(items)
        for s, replies in zip(shards, answers, strict=True):
            for i, reply in zip(groups[s], replies, strict=True):
                out[i] = reply
        return out


def actor_name(shard: int) -> str:
    return f"{ACTOR_PREFIX}-{shard}"


def rate_limit_actors(shards: int) -> ShardedBoard:
    """Get or create the shard actors (inside a replica, never at import)."""
    import ray

    actor_cls = ray.remote(num_cpus=0, max_restarts=-1)(RateLimitActor)
    return ShardedBoard([ActorBoard(actor_cls.options(name=actor_name(i), namespace=NAMESPACE,
                                                      lifetime="detached", get_if_exists=True).remote())
                         for i in range(shards)])


__all__ = ["ActorBoard", "LocalBoard", "RateLimitActor", "ShardedBoard", "actor_name", "rate_limit_actors",
           "shard_of"]

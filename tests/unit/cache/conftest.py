"""Fixtures for the cache unit tests: a Redis prefix of our own, and the shared embedder."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

REDIS_URL = "redis://127.0.0.1:6379/7"


def redis_available() -> bool:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
        return True
    except Exception:  # noqa: BLE001
        return False


def delete_prefix(prefix: str) -> None:
    """Delete only keys under our own test prefix (never FLUSHDB)."""
    import redis

    assert prefix.startswith("rgtest:"), prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*", count=500))
    if keys:
        client.delete(*keys)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    if not redis_available():
        pytest.skip("redis is not running on 127.0.0.1:6379")
    prefix = f"rgtest:cache:{uuid.uuid4().hex[:10]}:"
    yield prefix
    delete_prefix(prefix)


@pytest.fixture(scope="session")
def embedder():
    """One all-MiniLM-L6-v2 for the whole session (loading takes ~5 s)."""
    from deployments.cache.embedder import shared_embedder

    return shared_embedder()


def run(coro):
    return asyncio.run(coro)

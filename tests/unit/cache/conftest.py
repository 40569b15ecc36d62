"""Fixtures for the cache unit tests: a Redis prefix of our own, and the shared embedder."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.support import services
from tests.support.services import REDIS_URL

__all__ = ["REDIS_URL"]  # imported by the cache unit tests


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    with services.redis_prefix() as prefix:
        yield prefix


@pytest.fixture(scope="session")
def embedder():
    """One all-MiniLM-L6-v2 for the whole session (loading takes ~5 s)."""
    from deployments.cache.embedder import shared_embedder

    return shared_embedder()


def run(coro):
    return asyncio.run(coro)

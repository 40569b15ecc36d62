"""Redis for the tests that need it (PostgreSQL: tests/support/postgres.py, which always fails without it).

A missing Redis is a skip that says why (shown by `-rs` in the summary), except under CI
(`CI=true`, set by .ci/run, which starts the services): there it fails the test, so a suite that
quietly ran without its Redis tests cannot pass.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import pytest

REDIS_URL = "redis://127.0.0.1:6379/7"


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true, so this is a failure (.ci/run starts the service)", pytrace=False)
    pytest.skip(reason)


def require_redis() -> Any:
    """A client for REDIS_URL that answered PING."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001
        unavailable(f"Redis is not reachable at {REDIS_URL} ({type(exc).__name__})")
    return client


def delete_prefix(client: Any, prefix: str) -> None:
    """Delete only the keys under our own test prefix (never FLUSHDB)."""
    assert prefix.startswith("rgtest:"), prefix
    keys = list(client.scan_iter(match=prefix + "*", count=500))
    if keys:
        client.delete(*keys)


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix in Redis, deleted afterwards; Redis must be there (see `unavailable`)."""
    client = require_redis()
    prefix = f"rgtest:cache:{uuid.uuid4().hex[:10]}:"
    try:
        yield prefix
    finally:
        delete_prefix(client, prefix)

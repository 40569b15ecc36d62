"""A throwaway PostgreSQL database per test on the local server (trust auth), dropped afterwards."""

from __future__ import annotations

import os
import uuid

import pytest

ADMIN_URL = os.environ.get("RAYGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


async def _admin():  # noqa: ANN202
    import asyncpg

    try:
        return await asyncpg.connect(ADMIN_URL, timeout=5)
    except Exception as exc:  # noqa: BLE001 - a missing server must fail the run, not skip it
        pytest.fail(f"PostgreSQL at {ADMIN_URL} is not reachable ({type(exc).__name__}: {exc}); the storage "
                    "tests need it (set RAYGATE_TEST_POSTGRES to another server)", pytrace=False)


async def create_database() -> str:
    """A new, empty database; returns its URL."""
    name = f"raygate_test_{uuid.uuid4().hex[:12]}"
    conn = await _admin()
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"


async def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    assert name.startswith("raygate_test_"), name
    conn = await _admin()
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()

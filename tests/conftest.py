"""Shared fixtures. `gateway(config_dict)` serves the gateway in-process (no Ray) and returns its /v1 URL."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

from tests.support.gateway_server import GatewayServer  # noqa: E402


@pytest.fixture
def gateway() -> Iterator[Callable[[dict[str, Any]], str]]:
    """Factory: `url = gateway({...config...})` -> "http://127.0.0.1:PORT/v1"; stopped after the test."""
    servers: list[GatewayServer] = []

    def start(config: dict[str, Any]) -> str:
        server = GatewayServer(config).start()
        servers.append(server)
        return server.base_url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def gateway_server() -> Iterator[Callable[[dict[str, Any]], GatewayServer]]:
    """Like `gateway`, but returns the GatewayServer (for tests that inspect gateway state)."""
    servers: list[GatewayServer] = []

    def start(config: dict[str, Any]) -> GatewayServer:
        server = GatewayServer(config).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()

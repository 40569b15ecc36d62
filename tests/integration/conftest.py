"""A real Ray cluster + Serve for the whole session, started the way `raygate serve` starts it.

Fixtures:
- `ray_cluster`: session; a local head node (GCS on a free port, never 6379) with the gateway's
  Serve flags, token auth, Serve's HTTP (HAProxy) on a free loopback port.
- `deploy_gateway(config_dict, name=...) -> GatewayApp`: deploys the real `build_app` graph as its own
  Serve application under `/<name>` (several apps can live side by side; no redeploy waits) and
  returns `.base_url` (".../<name>/v1"), `.url`, `.name`. Apps are deleted at the end of the test module.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

# Shorter drains keep redeploys and shutdown quick in tests (Ray's default is 30 s).
os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "1")

from serve_app import cluster  # noqa: E402
from serve_app.config import parse_config  # noqa: E402
from tests.support.gateway_server import with_temp_storage  # noqa: E402


@dataclass
class RayCluster:
    address: str
    http_port: int
    url: str
    local: cluster.LocalCluster
    log_path: str


@dataclass
class GatewayApp:
    name: str
    url: str
    base_url: str


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    log_path = os.path.join(tempfile.gettempdir(), "raygate-test-ray.log")
    local = cluster.start_local_cluster(log_path=log_path)
    http_port = cluster.free_port(18000)
    try:
        cluster.connect(local.address)
        cluster.start_serve("127.0.0.1", http_port, 300)
        yield RayCluster(local.address, http_port, f"http://127.0.0.1:{http_port}", local, log_path)
    finally:
        cluster.shutdown(local)


@pytest.fixture(scope="module")
def deploy_gateway(ray_cluster: RayCluster) -> Iterator[Callable[..., GatewayApp]]:
    from ray import serve

    from serve_app.builder import build_app

    names: list[str] = []

    def deploy(config: dict[str, Any], name: str) -> GatewayApp:
        cfg = parse_config(with_temp_storage(config), f"<test app {name}>")
        cluster.deploy(build_app({"config": cfg}), name=name, route_prefix=f"/{name}")
        url = f"{ray_cluster.url}/{name}"
        cluster.wait_http_ready(url)
        names.append(name)
        return GatewayApp(name, url, url + "/v1")

    yield deploy
    for name in names:
        serve.delete(name)


@pytest.fixture
async def postgres_url() -> Any:
    """URL of a fresh PostgreSQL database on 127.0.0.1:5432, dropped (WITH FORCE) after the test."""
    from tests.support.postgres import create_database, drop_database

    url = await create_database()
    yield url
    await drop_database(url)

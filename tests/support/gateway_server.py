"""Serve the gateway's ASGI app in-process with uvicorn (no Ray): conformance and unit-level HTTP tests.

It is the same HttpApp + Gateway a Serve ingress replica runs; only the Serve wrapper is absent.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
import time
from typing import Any

import uvicorn

from deployments.prompts import attach_prompts
from deployments.records import build_storage_sink
from serve_app.config import parse_config
from serve_app.http import HttpApp
from serve_app.ingress import assemble_gateway


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_temp_storage(config: dict[str, Any]) -> dict[str, Any]:
    """The config with `storage` in a fresh temporary directory, unless the test sets its own."""
    if "storage" in config:
        return config
    where = tempfile.mkdtemp(prefix="raygate-test-db-")
    return {**config, "storage": {"url": f"sqlite:///{where}/raygate.db", "spool_dir": f"{where}/spool",
                                  "flush_interval_s": 0.05}}


class GatewayServer:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = parse_config(with_temp_storage(config), "<test>")
        self.gateway = assemble_gateway(self.config)
        if self.config.storage.enabled:  # the same sink as a replica's, with the writer in this process
            self.gateway.attach_records(build_storage_sink(self.config.storage, self.gateway.metrics, use_ray=False))
        attach_prompts(self.gateway, self.config, use_ray=False)
        self.app = HttpApp(self.gateway, self.config, on_startup=self.gateway.start,
                                on_shutdown=self.gateway.close)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                     log_level="warning", access_log=False, lifespan="on"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> GatewayServer:
        self._thread.start()
        deadline = time.time() + 10
        while not self._server.started:
            if time.time() > deadline or not self._thread.is_alive():
                raise RuntimeError("gateway test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)

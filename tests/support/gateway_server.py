"""Serve the gateway's ASGI app in-process with uvicorn (no Ray): conformance and unit-level HTTP tests.

It is the same HttpApp + Gateway a Serve ingress replica runs; only the Serve wrapper is absent.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import uvicorn

from serve_app.config import parse_config
from serve_app.http import HttpApp
from serve_app.ingress import assemble_gateway


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GatewayServer:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = parse_config(config, "<test>")
        self.gateway = assemble_gateway(self.config)
        self.app = HttpApp(self.gateway, self.config)
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

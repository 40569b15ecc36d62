"""`observability.metrics.port`: /metrics on a port of its own, next to the gateway's.

Every ingress replica binds the port with SO_REUSEPORT, so any number of replicas on a node share
it and the kernel spreads scrapes between them; each answers with the cluster-wide totals (the
aggregator actor's), so whichever replica answers, a scrape sees the same numbers.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

log = logging.getLogger("raygate.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4"


class MetricsServer:
    def __init__(self, metrics: Any, host: str, port: int) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def _serve(self, request: web.Request) -> web.Response:
        text = await self.metrics.render()
        return web.Response(body=text.encode(), headers={"content-type": CONTENT_TYPE})

    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_get("/metrics", self._serve)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port, reuse_port=True).start()
        except OSError as exc:  # the gateway still serves /metrics on its own port
            log.error(
                "cannot serve metrics on %s:%d (%s); /metrics on the gateway port still works",
                self.host,
                self.port,
                exc.strerror or exc,
            )
            await runner.cleanup()
            return
        self._runner = runner

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

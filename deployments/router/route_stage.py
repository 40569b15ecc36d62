"""Routing as a lifecycle stage: the request's routing inputs become a Plan for the upstream call."""

from __future__ import annotations

from typing import Any

from serve_app.lifecycle import Answer, Exchange, Stage


class RouteStage(Stage):
    name = "route"

    def __init__(self, router: Any) -> None:
        self.router = router  # Router in-process, or RemoteRouter to the Router deployment

    async def before(self, ex: Exchange) -> Answer | None:
        ex.plan = await self.router.plan(ex.route)
        return None

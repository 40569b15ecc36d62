"""Shared helpers for the local mock provider servers.

A mock server is an `aiohttp.web.Application` served on 127.0.0.1 at a random free port from a
background thread with its own event loop, so synchronous tests (the official `openai` SDK, the
in-process gateway) can call it. Every request is recorded (`server.requests`) so tests can check
what the gateway actually sent upstream. Fixtures live in tests/fixtures/providers/<type>/.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import orjson
from aiohttp import web

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "providers"


def fixture_path(provider: str, *parts: str) -> Path:
    return FIXTURES.joinpath(provider, *parts)


def load_json(provider: str, *parts: str) -> Any:
    return orjson.loads(fixture_path(provider, *parts).read_bytes())


def load_bytes(provider: str, *parts: str) -> bytes:
    return fixture_path(provider, *parts).read_bytes()


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    json: Any = None


@dataclass
class MockServer:
    """Serve `app` in a background thread: `with MockServer(app) as server: server.base_url`."""

    app: web.Application
    host: str = "127.0.0.1"
    requests: list[RecordedRequest] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.app.middlewares.append(self._record)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        try:
            parsed = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            parsed = None
        self.requests.append(RecordedRequest(request.method, request.path, dict(request.query),
                                             {k.lower(): v for k, v in request.headers.items()}, body, parsed))
        return await handler(request)

    def start(self) -> MockServer:
        self._thread = threading.Thread(target=self._run, name="mock-provider", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"mock server did not start: {self._error!r}")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start_site())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup() if self._runner else asyncio.sleep(0))
        loop.close()

    async def _start_site(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def last(self, path_suffix: str = "") -> RecordedRequest:
        """The most recent request whose path ends with `path_suffix`."""
        for req in reversed(self.requests):
            if req.path.endswith(path_suffix):
                return req
        raise AssertionError(f"no request to *{path_suffix} was recorded")


class ServedMock:
    """Base of the mock classes that serve their app through a MockServer in `self.server`:
    `with Mock(...) as mock:` starts and stops it; `requests` / `last` are what it recorded."""

    server: MockServer

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.server.requests

    def last(self, suffix: str = "") -> RecordedRequest:
        return self.server.last(suffix)

    def start(self) -> Self:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return web.Response(status=status, body=data, content_type="application/json", headers=headers)


async def stream_bytes(request: web.Request, data: bytes, *, content_type: str = "text/event-stream",
                       piece: int = 0, delay: float = 0.0, headers: dict[str, str] | None = None) -> web.StreamResponse:
    """Send `data` as a streamed 200 body; `piece` > 0 splits it into writes of that many bytes
    (events then arrive cut at arbitrary points, as they can on a real network)."""
    resp = web.StreamResponse(status=200, headers={"content-type": content_type, "cache-control": "no-cache",
                                                   **(headers or {})})
    await resp.prepare(request)
    for part in _pieces(data, piece):
        await resp.write(part)
        if delay:
            await asyncio.sleep(delay)
    await resp.write_eof()
    return resp


def _pieces(data: bytes, piece: int) -> Iterable[bytes]:
    if piece <= 0:
        yield data
        return
    for i in range(0, len(data), piece):
        yield data[i:i + piece]

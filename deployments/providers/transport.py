"""Transport: the only code on the request path that does network I/O to providers.

One pooled `aiohttp.ClientSession` per replica process (per event loop), created lazily on the
loop that uses it. aiohttp costs ~0.07 ms of CPU per forwarded request against ~1.6 ms for httpx
(../shared/design/lean-hot-path.md), so httpx stays off the request path. Streams are relayed as
raw bytes, as they arrive. Network failures become UpstreamErrors here; status mapping and body
translation belong to adapters.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from yarl import URL

from serve_app import errors as E
from serve_app.errors import UpstreamError

from .base import UpstreamRequest


@dataclass(slots=True)
class Timeouts:
    total: float  # whole call; for streams: until the response headers arrive
    connect: float
    idle: float  # streams: max seconds between chunks


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class UpstreamStream(Protocol):
    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    def release(self) -> None: ...


class Transport(Protocol):
    async def request(self, req: UpstreamRequest, timeouts: Timeouts, provider: str) -> UpstreamResponse: ...

    async def open_stream(self, req: UpstreamRequest, timeouts: Timeouts, provider: str) -> UpstreamStream: ...


def timeout_error(provider: str, seconds: float, what: str = "answer") -> UpstreamError:
    return UpstreamError(504, f"provider {provider!r} did not {what} within {seconds:g}s",
                         provider=provider, code="upstream_timeout", error_class=E.TIMEOUT)


def unreachable_error(provider: str, exc: BaseException) -> UpstreamError:
    # The exception text names host and port only (never headers), so it is safe to show.
    detail = type(exc).__name__
    os_err = getattr(exc, "os_error", None)
    if os_err is not None and getattr(os_err, "strerror", None):
        detail = os_err.strerror
    return UpstreamError(502, f"provider {provider!r} is unreachable ({detail})",
                         provider=provider, code="upstream_unreachable", error_class=E.CONNECTION)


class _Sessions:
    """One ClientSession per event loop: a replica has one loop, tests may have several."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._by_loop: dict[int, aiohttp.ClientSession] = {}

    def get(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._by_loop.get(id(loop))
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=self.limit, limit_per_host=0, keepalive_timeout=60,
                                             ttl_dns_cache=300)
            session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
            self._by_loop[id(loop)] = session
        return session

    async def close(self) -> None:
        sessions, self._by_loop = list(self._by_loop.values()), {}
        for s in sessions:
            await s.close()


class _AiohttpStream:
    __slots__ = ("_resp", "status", "headers", "_idle", "_provider")

    def __init__(self, resp: aiohttp.ClientResponse, idle: float, provider: str) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers = resp.headers
        self._idle = idle
        self._provider = provider

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        finally:
            self._resp.release()

    async def chunks(self) -> AsyncIterator[bytes]:
        content = self._resp.content
        try:
            while True:
                try:
                    chunk = await content.readany()
                except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
                    raise timeout_error(self._provider, self._idle, "send the next chunk") from None
                except aiohttp.ClientPayloadError as exc:
                    from .base import stream_cut

                    raise stream_cut(self._provider, type(exc).__name__) from None
                except aiohttp.ClientConnectionError as exc:
                    from .base import stream_cut

                    raise stream_cut(self._provider, type(exc).__name__) from None
                if not chunk:
                    return
                yield chunk
        finally:
            self.release()

    def release(self) -> None:
        # close() rather than release(): an unfinished stream must not go back to the pool.
        if not self._resp.closed:
            if self._resp.content.at_eof():
                self._resp.release()
            else:
                self._resp.close()


class HttpTransport:
    """Pooled aiohttp transport shared by every HTTP provider in the process."""

    def __init__(self, limit: int = 512) -> None:
        self._sessions = _Sessions(limit)
        self._timeouts: dict[tuple[float, float, float, bool], aiohttp.ClientTimeout] = {}

    def _client_timeout(self, t: Timeouts, stream: bool) -> aiohttp.ClientTimeout:
        key = (t.total, t.connect, t.idle, stream)
        ct = self._timeouts.get(key)
        if ct is None:
            if stream:  # total is enforced around the header wait; idle between chunks
                ct = aiohttp.ClientTimeout(total=None, connect=t.connect, sock_read=t.idle)
            else:
                ct = aiohttp.ClientTimeout(total=t.total, connect=t.connect)
            self._timeouts[key] = ct
        return ct

    async def request(self, req: UpstreamRequest, timeouts: Timeouts, provider: str) -> UpstreamResponse:
        # URLs are sent as the adapter encoded them (encoded=True): a signed path (SigV4) must go
        # out byte for byte, and skipping yarl's re-quoting is cheaper too.
        session = self._sessions.get()
        try:
            async with session.request(req.method, URL(req.url, encoded=True), data=req.body, headers=req.headers,
                                       timeout=self._client_timeout(timeouts, False)) as resp:
                body = await resp.read()
                return UpstreamResponse(resp.status, resp.headers, body)
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            raise timeout_error(provider, timeouts.total) from None
        except aiohttp.ClientConnectorError as exc:
            raise unreachable_error(provider, exc) from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise unreachable_error(provider, exc) from None

    async def open_stream(self, req: UpstreamRequest, timeouts: Timeouts, provider: str) -> _AiohttpStream:
        session = self._sessions.get()
        try:
            async with asyncio.timeout(timeouts.total):
                resp = await session.request(req.method, URL(req.url, encoded=True), data=req.body, headers=req.headers,
                                             timeout=self._client_timeout(timeouts, True))
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            raise timeout_error(provider, timeouts.total, "start its stream") from None
        except aiohttp.ClientConnectorError as exc:
            raise unreachable_error(provider, exc) from None
        except aiohttp.ClientConnectionError as exc:
            raise unreachable_error(provider, exc) from None
        return _AiohttpStream(resp, timeouts.idle, provider)

    async def close(self) -> None:
        await self._sessions.close()


_shared: HttpTransport | None = None


def shared_http_transport() -> HttpTransport:
    """The process-wide HTTP transport (one connection pool per replica)."""
    global _shared
    if _shared is None:
        _shared = HttpTransport()
    return _shared


@dataclass(slots=True)
class MemoryStream:
    """An UpstreamStream over bytes produced in-process (the mock provider, tests)."""

    status: int
    headers: Mapping[str, str]
    source: Any  # async iterator of bytes, or bytes for an error body

    async def read(self) -> bytes:
        if isinstance(self.source, bytes):
            return self.source
        return b"".join([c async for c in self.source])

    def chunks(self) -> AsyncIterator[bytes]:
        return self.source

    def release(self) -> None:
        aclose = getattr(self.source, "aclose", None)
        if aclose is not None:
            asyncio.ensure_future(aclose())

"""AWS credentials for SigV4, resolved off the event loop.

The standard chain (environment, shared files, SSO, container and instance roles, STS web identity)
may make blocking network calls, and botocore's refreshable credentials refresh themselves inside
`get_frozen_credentials()` when they near expiry. Neither may run on the ingress event loop, so:

- resolution runs in a worker thread, started when the adapter is built; every request that arrives
  before it finishes awaits that same resolution (`ready()`), never a new one;
- a daemon thread keeps the frozen credentials fresh: when botocore says a refresh is due within
  `REFRESH_LEAD` seconds (inside its own 15-minute advisory window, so the call really refreshes),
  it calls `get_frozen_credentials()` there and swaps the result in;
- signing reads `frozen`, a plain attribute: no I/O, no lock.

A failed resolution is an UpstreamError (502 `upstream_auth_error`, error class auth) for the
requests waiting on it; the next request starts a new resolution (so does the first request after
a resolution that failed at start-up).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

from serve_app import errors as E
from serve_app.errors import UpstreamError

REFRESH_LEAD = 600.0  # seconds before expiry (botocore's mandatory window; its advisory one is 900)
POLL_SECONDS = 30.0  # how often the refresher asks botocore whether a refresh is due


class CredentialResolver:
    """Resolves `source()` (botocore Credentials or None) in a thread; keeps `frozen` current."""

    def __init__(self, provider: str, source: Callable[[], Any], poll: float = POLL_SECONDS) -> None:
        self.provider = provider
        self.source = source
        self.poll = poll
        self.frozen: Any = None  # botocore ReadOnlyCredentials, once resolved
        self.credentials: Any = None  # what the source returned (refreshable or not)
        self.refreshes = 0
        self._lock = threading.Lock()
        self._future: concurrent.futures.Future[Any] | None = None
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    @classmethod
    def static(cls, provider: str, frozen: Any) -> CredentialResolver:
        """Credentials known up front (config keys): nothing to resolve."""
        resolver = cls(provider, lambda: None)
        resolver.frozen = frozen
        return resolver

    def start(self) -> concurrent.futures.Future[Any]:
        """The resolution under way, or a new one (thread-safe; one at a time)."""
        with self._lock:
            if self._future is None or (self._future.done() and self._future.exception() is not None):
                self._future = concurrent.futures.Future()
                threading.Thread(target=self._resolve, args=(self._future,), name=f"aws-creds-{self.provider}",
                                 daemon=True).start()
            return self._future

    async def ready(self) -> None:
        """Return once credentials are resolved; raises the resolution's UpstreamError."""
        if self.frozen is not None:
            return
        await asyncio.wrap_future(self.start())

    def close(self) -> None:
        self._stop.set()

    # -- worker threads ----------------------------------------------------------------------------
    def _resolve(self, future: concurrent.futures.Future[Any]) -> None:
        try:
            credentials = self.source()
            if credentials is None:
                raise self._error("has no AWS credentials (config keys, environment, shared files, SSO or an "
                                  "instance role)")
            frozen = credentials.get_frozen_credentials()
        except UpstreamError as exc:
            future.set_exception(exc)
            return
        except Exception as exc:  # noqa: BLE001 - botocore raises many types; the type is enough to say what failed
            future.set_exception(self._error(f"could not resolve AWS credentials ({type(exc).__name__})"))
            return
        self.credentials, self.frozen = credentials, frozen
        if hasattr(credentials, "refresh_needed") and self._refresher is None:
            self._refresher = threading.Thread(target=self._keep_fresh, name=f"aws-refresh-{self.provider}",
                                               daemon=True)
            self._refresher.start()
        future.set_result(frozen)

    def _keep_fresh(self) -> None:
        while not self._stop.wait(self.poll):
            credentials = self.credentials
            try:
                if credentials.refresh_needed(REFRESH_LEAD):
                    self.frozen = credentials.get_frozen_credentials()
                    self.refreshes += 1
            except Exception:  # noqa: BLE001 - keep the current credentials; botocore retries on the next poll
                continue

    def _error(self, what: str) -> UpstreamError:
        return UpstreamError(502, f"provider {self.provider!r} {what}", provider=self.provider,
                             code="upstream_auth_error", type="upstream_error", error_class=E.AUTH)


__all__ = ["POLL_SECONDS", "REFRESH_LEAD", "CredentialResolver"]

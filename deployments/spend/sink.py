"""`SpendSink`: each replica's reports to the spend ledger, batched off the request path.

`submit(record)` (a tuple append) keeps what the ledger needs of a finished request that cost
something or held a budget reservation: (request id, received at, USD, key id, provider, the
metadata keys scopes use). A background task sends the batch every FLUSH_S; a batch that fails
(the actor restarting) is kept and sent again — the ledger counts each request once, so a
batch that did arrive before its answer was lost is harmless. What survives what: docs/spend.md.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from serve_app.lifecycle import start_background

from .ledger import Entry

log = logging.getLogger("raygate.spend")

FLUSH_S = 0.5
MAX_PENDING = 200_000  # beyond it the oldest reports are dropped (logged): the ledger has been away for long


class SpendSink:
    def __init__(self, ledger: Any, metadata_keys: set[str], flush_s: float = FLUSH_S) -> None:
        self.ledger = ledger
        self.metadata_keys = tuple(sorted(metadata_keys))
        self.flush_s = flush_s
        self.pending: list[Entry] = []
        self.failures = 0
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def submit(self, rec: Any) -> None:
        facts = rec.facts
        cost = facts.get("cost")
        usd = cost.get("usd") if cost else None
        if not usd:
            budget = facts.get("budget")
            if budget is None or "refused" in budget:  # nothing spent and no reservation to settle
                return
        md = rec.metadata
        meta = {k: md[k] for k in self.metadata_keys if k in md} if md and self.metadata_keys else {}
        self.pending.append((rec.request_id, rec.received_at, usd or 0.0, rec.key_id, rec.provider, meta))
        if self._task is None:
            self.start()

    def start(self) -> None:
        if self._task is None:
            self._task = start_background(self._run)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            await self.flush()

    async def flush(self) -> bool:
        """Send what is pending; False (and kept for the next flush) if the ledger could not be reached."""
        async with self._lock:
            batch, self.pending = self.pending, []
            if not batch:
                return True
            try:
                await self.ledger.report(batch)
            except Exception as exc:  # noqa: BLE001 - the actor restarting: keep the batch, send it again
                self.failures += 1
                self.pending = batch + self.pending
                if len(self.pending) > MAX_PENDING:
                    dropped = len(self.pending) - MAX_PENDING
                    del self.pending[:dropped]
                    log.error("spend ledger unreachable; dropped the %d oldest spend reports", dropped)
                if self.failures == 1 or self.failures % 20 == 0:
                    log.warning("spend report failed (%s); %d reports kept for the next try", type(exc).__name__,
                                len(self.pending))
                return False
            self.failures = 0
            return True

    async def close(self, timeout_s: float = 5.0) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await asyncio.wait_for(self.flush(), timeout_s)
        except TimeoutError:
            log.warning("spend sink closing with %d reports unsent", len(self.pending))


__all__ = ["FLUSH_S", "SpendSink"]

"""A replica's copy of the prompts it renders, so a render costs no database round trip.

Each prompt is kept with the revision it was read at. Within `ttl` seconds of the last check the
copy is used as it is; after that one call asks the store whether the revision moved (one indexed
read) and fetches only what changed: labels, tests, and the versions this replica has not seen
(versions are immutable, so a compiled version is kept for good until it is deleted). A write
through this replica drops its copy at once; other replicas see it within `ttl` (the staleness
bound, `prompts.cache_ttl_s`). A render that names something the copy lacks (a new prompt, version,
label or test) re-checks at once (`max_age`), so only *moves* wait for the TTL. Concurrent renders
of a prompt share one refresh.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .prompt import CompiledVersion, PromptView


@dataclass(slots=True)
class _Entry:
    checked_at: float
    revision: int | None
    view: PromptView | None  # None: the prompt does not exist (cached too, for `ttl`)
    versions: dict[str, CompiledVersion] = field(default_factory=dict)


class PromptCache:
    def __init__(self, store: Any, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._refreshing: dict[str, asyncio.Future[PromptView | None]] = {}
        self._epochs: dict[str, int] = {}  # bumped by invalidate(): a refresh begun before it is not kept
        self.fetches = 0  # store calls made (for tests and the docs' cost figures)

    async def get(self, name: str, max_age: float | None = None) -> PromptView | None:
        """The prompt as of at most `ttl` (or `max_age`, if shorter) seconds ago; None if it does not exist."""
        entry = self._entries.get(name)
        limit = self.ttl if max_age is None else min(self.ttl, max_age)
        if entry is not None and self.clock() - entry.checked_at < limit:
            return entry.view
        pending = self._refreshing.get(name)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[PromptView | None] = asyncio.get_running_loop().create_future()
        self._refreshing[name] = future
        try:
            view = await self._refresh(name, entry)
            future.set_result(view)
            return view
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs "never retrieved"
            raise
        finally:
            if self._refreshing.get(name) is future:
                del self._refreshing[name]

    async def _refresh(self, name: str, entry: _Entry | None) -> PromptView | None:
        known = list(entry.versions) if entry is not None else []
        revision = entry.revision if entry is not None else None
        self.fetches += 1
        epoch = self._epochs.get(name, 0)
        snap = await self.store.snapshot(name, revision, known)
        now = self.clock()
        keep = epoch == self._epochs.get(name, 0)
        if snap is None:
            if keep:
                self._entries[name] = _Entry(now, None, None)
            return None
        if entry is not None and snap["revision"] == entry.revision:
            if keep:
                entry.checked_at = now
            return entry.view
        compiled = {v: c for v, c in (entry.versions.items() if entry is not None else ()) if v in snap["all_versions"]}
        for version, row in snap["versions"].items():
            compiled[version] = CompiledVersion.from_row(name, version, row)
        view = PromptView(name, snap["revision"], compiled, snap["labels"], snap["tests"])
        if keep:
            self._entries[name] = _Entry(now, snap["revision"], view, compiled)
        return view

    def invalidate(self, name: str) -> None:
        """After a write through this replica: the next render reads the prompt again."""
        self._entries.pop(name, None)
        self._epochs[name] = self._epochs.get(name, 0) + 1
        self._refreshing.pop(name, None)

"""Popping due items off an (expires, key) heap in bounded slices (the cache's sweeps)."""

from __future__ import annotations

import heapq
from collections.abc import Iterator


def due(heap: list[tuple[float, str]], now: float, limit: int | None = None) -> Iterator[tuple[float, str]]:
    """Pop and yield items with expires <= now, at most `limit` (None: all). The caller checks each
    against its live state: heap items of replaced or removed keys are stale."""
    while heap and heap[0][0] <= now and limit != 0:
        if limit is not None:
            limit -= 1
        yield heapq.heappop(heap)

"""The vector index of the semantic cache: one FAISS IndexFlatIP of normalised vectors per scope.

Vectors are L2-normalised, so inner product is cosine similarity. Each scope (see scope.py) has its
own flat index, so a search only ever sees entries that share the request's key, model, system
prompt, history and parameters; flat search is exact and costs ~1 ms per 10k vectors on this machine.

Removal (eviction, expiry, invalidation) marks the slot dead at once — searches skip it — and the
scope's index is rebuilt without dead slots once they outnumber the live ones. Expired vectors are
skipped by search and dropped by `sweep`.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

import numpy as np

from .expiry import due


@dataclass(slots=True)
class Slot:
    key: str
    text: str
    expires: float


class _Scope:
    __slots__ = ("index", "slots", "dead")

    def __init__(self, dim: int) -> None:
        import faiss

        self.index = faiss.IndexFlatIP(dim)
        self.slots: list[Slot | None] = []
        self.dead = 0


class VectorIndex:
    def __init__(self, dim: int, threads: int | None = 1) -> None:
        """`threads`: OpenMP threads for FAISS searches (process-wide). One is plenty for scopes of
        up to ~100k vectors and keeps latency steady when the cores are busy; None leaves FAISS's
        default (all cores)."""
        if threads:
            import faiss

            faiss.omp_set_num_threads(threads)
        self.dim = dim
        self.scopes: dict[str, _Scope] = {}
        self.where: dict[str, tuple[str, int]] = {}  # key -> (scope, position)
        self.expiry: list[tuple[float, str]] = []  # (expires, key) heap: sweeps pop, never scan

    def __len__(self) -> int:
        return len(self.where)

    def __contains__(self, key: str) -> bool:
        return key in self.where

    def add(self, scope: str, key: str, vec: np.ndarray, text: str, expires: float) -> None:
        if key in self.where:
            self.remove(key)
        sc = self.scopes.get(scope)
        if sc is None:
            sc = self.scopes[scope] = _Scope(self.dim)
        vec = np.asarray(vec, dtype=np.float32).reshape(1, self.dim)
        sc.index.add(vec)
        sc.slots.append(Slot(key, text, expires))
        self.where[key] = (scope, len(sc.slots) - 1)
        heapq.heappush(self.expiry, (expires, key))

    def add_many(self, scope: str, items: list[tuple[str, np.ndarray, str, float]]) -> None:
        for key, vec, text, expires in items:
            self.add(scope, key, vec, text, expires)

    def remove(self, key: str) -> bool:
        loc = self.where.pop(key, None)
        if loc is None:
            return False
        scope, pos = loc
        sc = self.scopes[scope]
        sc.slots[pos] = None
        sc.dead += 1
        live = len(sc.slots) - sc.dead
        if live == 0:
            del self.scopes[scope]
        elif sc.dead > max(32, live):
            self._compact(scope, sc)
        return True

    def _compact(self, scope: str, sc: _Scope) -> None:
        n = len(sc.slots)
        vectors = sc.index.reconstruct_n(0, n)
        keep = [i for i, s in enumerate(sc.slots) if s is not None]
        fresh = _Scope(self.dim)
        fresh.index.add(np.ascontiguousarray(vectors[keep]))
        fresh.slots = [sc.slots[i] for i in keep]
        self.scopes[scope] = fresh
        for pos, slot in enumerate(fresh.slots):
            self.where[slot.key] = (scope, pos)  # type: ignore[union-attr]

    def clear(self, prefix: str = "") -> int:
        """Drop every vector whose key starts with `prefix` (all when empty)."""
        if not prefix:
            n = len(self.where)
            self.scopes.clear()
            self.where.clear()
            self.expiry.clear()
            return n
        doomed = [k for k in self.where if k.startswith(prefix)]
        for k in doomed:
            self.remove(k)
        return len(doomed)

    def search(self, scope: str, vec: np.ndarray, k: int, now: float, threshold: float) -> list[tuple[Slot, float]]:
        """Live, unexpired neighbours at or above `threshold`, best first."""
        sc = self.scopes.get(scope)
        if sc is None:
            return []
        n = sc.index.ntotal
        want = min(n, k + sc.dead)
        scores, ids = sc.index.search(np.asarray(vec, dtype=np.float32).reshape(1, self.dim), want)
        out: list[tuple[Slot, float]] = []
        for score, i in zip(scores[0], ids[0], strict=True):
            if i < 0 or score < threshold:
                break
            slot = sc.slots[i]
            if slot is None or slot.expires <= now:
                continue
            out.append((slot, float(score)))
            if len(out) >= k:
                break
        return out

    def sweep(self, now: float, limit: int | None = None) -> list[str]:
        """Remove expired vectors, popping at most `limit` heap items (None: all). Bounded sweeps keep
        the event loop free: removing 10,000 vectors at once blocks it ~30 ms (bench/loop_blocking.py)."""
        expired: list[str] = []
        for expires, key in due(self.expiry, now, limit):
            loc = self.where.get(key)
            if loc is None:
                continue  # removed or re-added since (a stale heap item)
            slot = self.scopes[loc[0]].slots[loc[1]]
            if slot is not None and slot.expires == expires:
                self.remove(key)
                expired.append(key)
        if len(self.expiry) > 2 * len(self.where) + 64:  # stale items of removed keys: rebuild
            self.expiry = [(s.expires, s.key) for sc in self.scopes.values() for s in sc.slots if s is not None]
            heapq.heapify(self.expiry)
        return expired

    def stats(self) -> dict[str, Any]:
        return {"vectors": len(self.where), "scopes": len(self.scopes),
                "dead_slots": sum(sc.dead for sc in self.scopes.values()),
                "vector_bytes": sum(sc.index.ntotal for sc in self.scopes.values()) * self.dim * 4}

"""How long the gateway's own periodic work and the garbage collector block the ingress event loop.

    PYTHONPATH=$PWD python bench/loop_blocking.py periodic [--n 20000]
    PYTHONPATH=$PWD python bench/loop_blocking.py gc --gc {default,freeze,freeze-threshold} [--n 40000]

In-process, no Ray, no network (the bench/micro_pipeline.py gateway with an in-memory upstream and
the storage sink on a local spool). Everything the ingress loop runs between two awaits blocks every
request on that replica, so each figure is a wall time around synchronous work, many runs:

- periodic: the metrics flush (`LocalMetrics.take` + serialising the delta, which a Ray actor call
  does on the loop before it returns), the records sink flush (`flush_once`: spool read + ack, with a
  writer that acknowledges at once, + serialising the lines), the circuit board sync (`adopt` of a
  view + serialising the outbox), the cache's expiry sweeps (MemoryStore and VectorIndex, 10,000
  expired entries at once: the worst case).
- gc: every collection's pause (gc.callbacks) during `n` requests, by generation, with Python's
  defaults, with `gc.freeze()` after warm-up (what Ray Serve does at the end of replica start-up,
  RAY_SERVE_FREEZE_GC_ON_STARTUP), and with freeze + a raised threshold.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import pickle
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from micro_pipeline import BODY, MemoryUpstream, attach_storage, chat_caller  # noqa: E402

from serve_app.config import parse_config  # noqa: E402
from serve_app.http import HttpApp  # noqa: E402
from serve_app.ingress import assemble_gateway  # noqa: E402

RAISED_THRESHOLD = (50_000, 50, 100)


def build() -> tuple[Any, Any, Any]:
    cfg = parse_config({"gateway": {"api_keys": [{"id": "b", "key": "x"}]},
                        "providers": {"up": {"type": "openai", "base_url": "http://127.0.0.1:9999/v1",
                                             "api_key": "k"}},
                        "models": {"mock": "up"}})
    gateway = assemble_gateway(cfg)
    gateway.providers["up"].transport = MemoryUpstream()
    attach_storage(gateway)
    app = HttpApp(gateway, cfg)
    one = chat_caller(app, BODY)
    return gateway, app, one


def stats(ms: list[float]) -> str:
    if not ms:
        return "| 0 | - | - | - |"
    ms = sorted(ms)
    p99 = ms[int(len(ms) * 0.99) - 1 if len(ms) > 1 else 0]
    return (f"| {len(ms)} | {statistics.median(ms):.3f} | {p99:.3f} "
            f"| {ms[-1]:.3f} |")


async def periodic(n: int) -> list[str]:
    gateway, _app, one = build()
    for _ in range(500):
        await one()
    sink = gateway.records
    metrics_ms: list[float] = []
    sink_ms: list[float] = []
    sink_sizes: list[int] = []
    flush_batch, write = sink._flush_batch, sink.writer.write

    async def serialising_write(lines: list[bytes]) -> int:  # what a Ray actor call does on the loop
        pickle.dumps(lines, protocol=5)
        sink_sizes.append(len(lines))
        return await write(lines)

    async def timed_flush() -> bool:  # the writer answers at once: the whole flush is one loop step
        t = time.perf_counter()
        ok = await flush_batch()
        sink_ms.append((time.perf_counter() - t) * 1e3)
        return ok

    sink.writer.write, sink._flush_batch = serialising_write, timed_flush
    per_flush = 1000  # ~1 s of requests at 1,000/s: what one metrics flush carries
    for i in range(n):
        await one()
        if (i + 1) % per_flush == 0:
            t = time.perf_counter()
            delta = gateway.metrics.local.take()
            pickle.dumps(delta, protocol=5)
            metrics_ms.append((time.perf_counter() - t) * 1e3)
    rows = ["| periodic work (per run) | runs | median ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|",
            f"| metrics flush: take + serialise ({per_flush} requests' delta) {stats(metrics_ms)}",
            f"| records sink flush (its own loop; median {statistics.median(sink_sizes or [0]):.0f} "
            "records): "
            f"spool read + serialise + ack {stats(sink_ms)}"]

    from deployments.router.circuit import OPEN, CircuitBoard

    board = CircuitBoard()
    view = {f"provider{i}:model{i}": (OPEN, time.time() + 30) for i in range(20)}
    outbox = [(f"provider{i}:model", False, time.time()) for i in range(50)]
    circ_ms = []
    for _ in range(2000):
        t = time.perf_counter()
        pickle.dumps(outbox, protocol=5)
        board.adopt(view, None)
        circ_ms.append((time.perf_counter() - t) * 1e3)
    rows.append(f"| circuit board sync: adopt 20 open targets + serialise 50 events {stats(circ_ms)}")

    from deployments.cache.index import VectorIndex
    from deployments.cache.store import Entry, MemoryStore

    from deployments.cache.stage import SWEEP_PER_INSERT
    from deployments.cache.store import SWEEP_PER_PUT

    store_ms, index_ms, store_slice_ms, index_slice_ms = [], [], [], []
    for _ in range(5):
        store = MemoryStore(1 << 34)
        index = VectorIndex(384, 1)
        vec = np.ones(384, dtype=np.float32) / np.sqrt(384)
        now = time.time()
        for k in range(10_000):
            await store.put(Entry(f"k{k}", b"x" * 1000, "p", "m", "s", "t", "t", now - 10, now - 1))
            index.add("s", f"k{k}", vec, "t", now - 1)
        for _ in range(20):  # what a put / an insert now does: a bounded slice
            t = time.perf_counter()
            store._sweep(now, SWEEP_PER_PUT)
            store_slice_ms.append((time.perf_counter() - t) * 1e3)
            t = time.perf_counter()
            index.sweep(now, SWEEP_PER_INSERT)
            index_slice_ms.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        store._sweep(now)
        store_ms.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        index.sweep(now)
        index_ms.append((time.perf_counter() - t) * 1e3)
    rows.append(f"| cache MemoryStore sweep, all of ~10,000 expired at once {stats(store_ms)}")
    rows.append(f"| cache MemoryStore sweep, one put's slice ({SWEEP_PER_PUT}) {stats(store_slice_ms)}")
    rows.append(f"| semantic VectorIndex sweep, all of ~10,000 expired at once {stats(index_ms)}")
    rows.append(f"| semantic VectorIndex sweep, one insert's slice ({SWEEP_PER_INSERT}) "
                f"{stats(index_slice_ms)}")
    return rows


async def gc_pauses(n: int, mode: str) -> list[str]:
    _gateway, _app, one = build()
    for _ in range(2000):
        await one()
    if mode in ("freeze", "freeze-threshold"):
        gc.collect()
        gc.freeze()
    if mode == "freeze-threshold":
        gc.set_threshold(*RAISED_THRESHOLD)
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    started: list[float] = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses[info["generation"]].append((time.perf_counter() - started[0]) * 1e3)

    gc.callbacks.append(callback)
    t = time.process_time()
    for _ in range(n):
        await one()
    cpu = (time.process_time() - t) / n * 1e6
    gc.callbacks.remove(callback)
    rows = [f"gc mode `{mode}` (threshold {gc.get_threshold()}, frozen {gc.get_freeze_count()} objects), "
            f"{n} requests, {cpu:.1f} µs CPU/request", "",
            "| generation | collections | median ms | p99 ms | max ms | total ms |",
            "|---|---:|---:|---:|---:|---:|"]
    for gen, ms in pauses.items():
        rows.append(f"| {gen} {stats(ms)[:-1]}| {sum(ms):.1f} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("part", choices=["periodic", "gc"])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--gc", default="default", choices=["default", "freeze", "freeze-threshold"])
    args = ap.parse_args()
    rows = asyncio.run(periodic(args.n) if args.part == "periodic" else gc_pauses(args.n, args.gc))
    print("\n".join(rows))


if __name__ == "__main__":
    main()

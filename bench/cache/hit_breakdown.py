"""Where a semantic hit's time goes, in-process, per component (CPU time, many repetitions).

    PYTHONPATH=$PWD python bench/cache/hit_breakdown.py [--reps 300]

Each part runs `reps` times on one thread and reports the median wall time and the mean CPU time
(`time.thread_time`, robust on a shared machine: another process's CPU does not count). Parts:
tokenisation, the model forward pass (torch via sentence-transformers `encode`, ONNX Runtime), FAISS
search over 1,000 vectors in the scope, the verifier (features + check), the exact store read, and
the whole `SemanticStage.lookup` + store read for a paraphrase that hits. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from deployments.cache.config import CacheConfig  # noqa: E402
from deployments.cache.embedder import Embedder, MicroBatcher  # noqa: E402
from deployments.cache.index import VectorIndex  # noqa: E402
from deployments.cache.onnx_embedder import OnnxEmbedder  # noqa: E402
from deployments.cache.stage import SemanticStage  # noqa: E402
from deployments.cache.store import Entry, MemoryStore  # noqa: E402
from deployments.cache.verify import check, features  # noqa: E402

QUERY = "How can I change the password for my account on the customer portal?"
STORED = "how do I reset my password on the customer portal"


def timed(fn: Callable[[], Any], reps: int) -> tuple[float, float]:
    """(median wall ms, mean thread-CPU ms)."""
    for _ in range(min(20, reps)):
        fn()
    walls: list[float] = []
    cpu0 = time.thread_time()
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t)
    cpu = (time.thread_time() - cpu0) / reps
    return statistics.median(walls) * 1e3, cpu * 1e3


def stage_with(encode: Callable[[list[str]], np.ndarray], vecs: np.ndarray,
               texts: list[str]) -> SemanticStage:
    cfg = CacheConfig(mode="semantic")
    batcher = MicroBatcher(encode, cfg.max_batch_size, cfg.batch_wait_timeout_s)
    stage = SemanticStage(cfg, batcher.embed, dim=vecs.shape[1])
    assert stage.index is not None
    for i, (t, v) in enumerate(zip(texts, vecs, strict=True)):
        stage.index.add("ns|s", f"ns|k{i}", v, t, time.time() + 3600)
    return stage


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=300)
    reps = ap.parse_args().reps
    torch_emb, onnx_emb = Embedder(threads=1), OnnxEmbedder(threads=1)
    filler = [f"question number {i} about topic {i % 37} and item {i * 7}" for i in range(999)] + [STORED]
    vecs = onnx_emb.encode(filler)
    index = VectorIndex(vecs.shape[1], 1)
    for i, (t, v) in enumerate(zip(filler, vecs, strict=True)):
        index.add("s", f"k{i}", v, t, time.time() + 3600)
    qvec = onnx_emb.encode([QUERY])[0]
    qf, cf = features(QUERY), features(STORED)
    store = MemoryStore(10_000)
    loop = asyncio.new_event_loop()
    now = time.time()
    entry = Entry("k999", b"x" * 2000, "p", "m", "s", STORED, STORED, now, now + 3600)
    loop.run_until_complete(store.put(entry))
    rows: list[tuple[str, tuple[float, float]]] = [
        ("tokenise (HF tokenizers, 1 text)", timed(lambda: onnx_emb.tokenize([QUERY]), reps)),
        ("embed: torch, sentence-transformers encode (1 thread)",
         timed(lambda: torch_emb.encode([QUERY]), reps)),
        ("embed: ONNX Runtime, tokenise + run (1 thread)", timed(lambda: onnx_emb.encode([QUERY]), reps)),
        ("FAISS search, 1,000 vectors in scope", timed(lambda: index.search("s", qvec, 4, now, 0.8), reps)),
        ("verifier: features(query) + check", timed(lambda: check(features(QUERY), cf), reps)),
        ("verifier: check only", timed(lambda: check(qf, cf), reps)),
        ("store read (memory)",
         timed(lambda: loop.run_until_complete(store.get("k999", now, 0, "hits")), reps)),
    ]
    for label, emb in (("torch", torch_emb), ("ONNX", onnx_emb)):
        stage = stage_with(emb.encode, vecs, filler)

        async def hit(stage: SemanticStage = stage) -> None:
            stage.recent.clear()  # a new paraphrase each time: no vector reuse
            found = await stage.lookup("ns", "s", QUERY, 0.5, now)
            assert found, "the paraphrase must hit"
            await store.get("k999", now, 0, "semantic_hits")

        loop.run_until_complete(stage.ready())
        # run_until_complete + to_thread: the embedding runs in a worker thread, so CPU is process time
        walls, cpu0 = [], time.process_time()
        for _ in range(reps):
            t = time.perf_counter()
            loop.run_until_complete(hit())
            walls.append(time.perf_counter() - t)
        rows.append((f"whole semantic hit, {label} (lookup + verify + store read; process CPU)",
                     (statistics.median(walls) * 1e3, (time.process_time() - cpu0) / reps * 1e3)))
    print(f"| part | median wall ms | mean CPU ms |  (reps={reps})")
    print("|---|---:|---:|")
    for name, (wall, cpu) in rows:
        print(f"| {name} | {wall:.3f} | {cpu:.3f} |")


if __name__ == "__main__":
    main()

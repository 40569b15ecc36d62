"""The ONNX Runtime embedder gives the torch embedder's vectors (same model, exported graph)."""

from __future__ import annotations

import numpy as np
import pytest

from deployments.cache.config import CacheConfig

TEXTS = [
    "What is the capital of France?",
    "how do I reset my password on the customer portal",
    "Wie spät ist es?",
    "long " * 400,  # past max_seq_length: both paths truncate at 256 tokens
]


@pytest.fixture(scope="module")
def onnx_embedder(tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("RAYGATE_ONNX_DIR", str(tmp_path_factory.mktemp("onnx")))
    from deployments.cache.onnx_embedder import OnnxEmbedder

    return OnnxEmbedder(threads=1)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_vectors_match_torch_batched_and_single(onnx_embedder, embedder) -> None:
    ref = embedder.encode(TEXTS)
    batched = onnx_embedder.encode(TEXTS)  # padded batch: the attention mask must keep pooling exact
    single = np.stack([onnx_embedder.encode([t])[0] for t in TEXTS])
    assert batched.shape == ref.shape == (len(TEXTS), 384) and batched.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert (batched * ref).sum(axis=1).min() > 0.9999
    assert (single * ref).sum(axis=1).min() > 0.9999
    assert float(batched[0] @ batched[1]) < 0.9  # different texts stay apart


def test_export_is_reused(onnx_embedder, monkeypatch) -> None:
    from deployments.cache import onnx_embedder as mod

    def no_export(*_a, **_k):
        raise AssertionError("a second start-up must reuse the exported graph")

    monkeypatch.setattr(mod, "export", no_export)
    again = mod.OnnxEmbedder(threads=1)
    np.testing.assert_allclose(again.encode(TEXTS[:1]), onnx_embedder.encode(TEXTS[:1]), atol=1e-6)


def test_default_runtime_is_onnx() -> None:
    assert CacheConfig().embedding_runtime == "onnx"
    assert CacheConfig(embedding_runtime="torch").embedding_runtime == "torch"


def test_shared_embedder_picks_the_runtime(onnx_embedder, embedder) -> None:
    from deployments.cache.embedder import Embedder, shared_embedder
    from deployments.cache.onnx_embedder import OnnxEmbedder

    onnx = shared_embedder("all-MiniLM-L6-v2", 1, "onnx")
    assert isinstance(onnx, OnnxEmbedder) and shared_embedder("all-MiniLM-L6-v2", 1, "onnx") is onnx
    assert isinstance(shared_embedder("all-MiniLM-L6-v2", 1, "torch"), Embedder)

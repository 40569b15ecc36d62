"""The default semantic-cache settings keep their measured precision on a fixed sample of held-out pairs.

The sample is every 4th pair of bench/cache/heldout_pairs.jsonl (400 pairs, both splits), embedded with
the real all-MiniLM-L6-v2 and judged at the default threshold with the verification step, as the cache
does. Measured by bench/cache/eval.py's procedure when the default was set: precision 94.1% (127 of 135
hits right), recall 66.5%. The test allows a margin of 3 points of precision (and 6 of recall, so that a
verifier that rejects everything cannot pass) for numeric differences between machines and torch builds.
"""

import json
from pathlib import Path

import numpy as np

from deployments.cache.config import DEFAULT_THRESHOLD, CacheConfig
from deployments.cache.verify import verify

PAIRS = Path(__file__).resolve().parents[3] / "bench/cache/heldout_pairs.jsonl"
REPORTED_PRECISION = 0.941
REPORTED_RECALL = 0.665
PRECISION_MARGIN = 0.03
RECALL_MARGIN = 0.06


def test_default_precision_on_fixed_heldout_sample(embedder):
    pairs = [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()][::4]
    assert len(pairs) == 400
    threshold = CacheConfig().similarity_threshold
    assert threshold == DEFAULT_THRESHOLD
    a = embedder.encode([p["a"] for p in pairs])
    b = embedder.encode([p["b"] for p in pairs])
    sims = (a * b).sum(axis=1)
    hit = np.array(
        [s >= threshold and verify(p["b"], p["a"]) is None for p, s in zip(pairs, sims, strict=True)]
    )
    right = np.array([p["label"] == 1 for p in pairs])
    precision = (hit & right).sum() / hit.sum()
    recall = (hit & right).sum() / right.sum()
    assert precision >= REPORTED_PRECISION - PRECISION_MARGIN, (precision, recall)
    assert recall >= REPORTED_RECALL - RECALL_MARGIN, (precision, recall)

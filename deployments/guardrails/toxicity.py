"""`toxicity_check`: a local classifier's probability that the text is offensive, against `threshold`.

The classifier is alt-profanity-check's linear SVM over a TF-IDF vocabulary (the package ships
the model files; ~1 s to load; a few ms per call, bench/results/guardrails.md). Loaded once per
process, on first use. Measured
precision/recall on a labelled held-out set: bench/results/guardrails.md.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

from pydantic import Field

from .base import Check, CheckConfig, Finding, Subject

_model: Any = None
_lock = threading.Lock()


def offensive_probability(texts: list[str]) -> list[float]:
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                from profanity_check import predict_prob

                _model = predict_prob
    return [float(p) for p in _model(texts)]


class ToxicityConfig(CheckConfig):
    type: Literal["toxicity_check"]
    threshold: float = Field(0.8, gt=0, lt=1, description="Probability at or above which the text fails.")


class ToxicityCheck(Check):
    type = "toxicity_check"

    def __init__(self, cfg: ToxicityConfig) -> None:
        super().__init__(cfg)
        self.threshold = cfg.threshold

    def load(self) -> None:
        offensive_probability(["warm up"])

    def evaluate(self, subject: Subject) -> Finding:
        texts = [t for t in subject["texts"] if t.strip()]
        if not texts:
            return Finding(True, score=0.0)
        score = max(offensive_probability(texts))
        if score >= self.threshold:
            return Finding(False, f"toxicity score {score:.2f} >= {self.threshold}", round(score, 4))
        return Finding(True, score=round(score, 4))


CONFIG, CHECK = ToxicityConfig, ToxicityCheck

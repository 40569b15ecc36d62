"""Train the content-policy heads, tune their thresholds on dev, measure both classifiers on test.

    python bench/guardrails/train_policy.py            # train on train, tune on dev, write the heads
    python bench/guardrails/train_policy.py --results  # + the quality section of bench/results/guardrails.md

Heads: one logistic regression per category (one-vs-rest, class-balanced, C=4) over the L2-normalised
all-MiniLM-L6-v2 embedding of each example (dataset.py). A category's threshold is the lowest
probability, on a 0.05 grid from 0.3 to 0.95, at which its dev precision is >= 0.9 (else the one with the
best dev F1). Test figures are computed once with those thresholds. The toxicity check
(alt-profanity-check) is not trained here, only measured: hate + harassment positive, benign negative,
at its default threshold 0.8 and at 0.5.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.guardrails.dataset import CATEGORIES, examples  # noqa: E402
from bench.guardrails.results import write_section  # noqa: E402
from deployments.guardrails.content_policy import HEADS  # noqa: E402

GRID = [round(x, 2) for x in np.arange(0.3, 0.951, 0.05)]


def pr(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, int, int]:
    tp = int((pred & truth).sum())
    p = tp / max(1, int(pred.sum()))
    r = tp / max(1, int(truth.sum()))
    return p, r, int(truth.sum()), int((~truth).sum())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", action="store_true")
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression

    from deployments.cache.embedder import shared_embedder

    rows = examples()
    vecs = shared_embedder(threads=1).encode([r["text"] for r in rows])
    split = np.array([r["split"] for r in rows])
    cats = [r["category"] for r in rows]
    w, b, thresholds, lines = [], [], [], []
    for c in CATEGORIES:
        y = np.array([x == c for x in cats])
        model = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000)
        model.fit(vecs[split == "train"], y[split == "train"])
        w.append(model.coef_[0])
        b.append(model.intercept_[0])
        dev_p = model.predict_proba(vecs[split == "dev"])[:, 1]
        best, best_f1 = None, -1.0
        for t in GRID:
            p, r, _, _ = pr(dev_p >= t, y[split == "dev"])
            f1 = 2 * p * r / max(1e-9, p + r)
            if p >= 0.9 and best is None:
                best = t
            if f1 > best_f1:
                best_f1, fallback = f1, t
        t = best if best is not None else fallback
        thresholds.append(t)
        test_p = model.predict_proba(vecs[split == "test"])[:, 1]
        p, r, pos, neg = pr(test_p >= t, y[split == "test"])
        dp, dr, _, _ = pr(dev_p >= t, y[split == "dev"])
        lines.append(f"| {c} | {t:.2f} | {dp:.2f} / {dr:.2f} | {p:.2f} / {r:.2f} | {pos} / {neg} |")
        print(lines[-1])
    np.savez(HEADS, categories=np.array(CATEGORIES), w=np.array(w, dtype=np.float32),
             b=np.array(b, dtype=np.float32), thresholds=np.array(thresholds, dtype=np.float32))
    # any-category: a text is flagged when some head fires
    test = split == "test"
    probs = 1 / (1 + np.exp(-(vecs[test] @ np.array(w).T + np.array(b))))
    flagged = (probs >= np.array(thresholds)).any(axis=1)
    harmful = np.array([c is not None for c in cats])[test]
    p, r, pos, neg = pr(flagged, harmful)
    any_line = f"| any category | per head | | {p:.2f} / {r:.2f} | {pos} / {neg} |"
    print(any_line)

    from profanity_check import predict_prob

    tox_lines = []
    keep = np.array([c in ("hate", "harassment", None) for c in cats])
    toxic = np.array([c in ("hate", "harassment") for c in cats])
    for name, mask in (("test", (split == "test") & keep), ("all splits", keep)):
        scores = predict_prob([r["text"] for r, m in zip(rows, mask, strict=True) if m])
        for t in (0.8, 0.5):
            p, r, pos, neg = pr(scores >= t, toxic[mask])
            tox_lines.append(f"| {name} | {t} | {p:.2f} | {r:.2f} | {pos} / {neg} |")
            print(tox_lines[-1])
    if args.results:
        write_results(lines + [any_line], tox_lines, len(rows))


def write_results(policy: list[str], toxicity: list[str], n: int) -> None:
    write_section("quality", [
        "## Classifier quality (bench/guardrails/train_policy.py)",
        "",
        f"Labelled set: {n} examples from bench/guardrails/dataset.py (hand-written cores x frames, split by",
        "core before training: test cores were never seen by the heads or the threshold choice). It is small",
        "and self-written: these figures show the classifiers work on clear cases and their hard negatives,",
        "not what they do on real traffic.",
        "",
        "content_policy (MiniLM + one logistic-regression head per category; threshold tuned on dev):",
        "",
        "| category | threshold | dev precision / recall | test precision / recall "
        "| test positives / negatives |",
        "|---|---|---|---|---|",
        *policy,
        "",
        "toxicity_check (alt-profanity-check; hate + harassment = toxic, benign = not; not trained here):",
        "",
        "| examples | threshold | precision | recall | positives / negatives |",
        "|---|---|---|---|---|",
        *toxicity,
    ])


if __name__ == "__main__":
    main()

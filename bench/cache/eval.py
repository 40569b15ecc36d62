"""Quality of the semantic cache on the labelled pairs in eval_pairs.jsonl.

For every pair (a question that was cached, b a new question) it computes the cosine similarity of
the all-MiniLM-L6-v2 embeddings and whether the verification step (deployments/cache/verify.py)
accepts b for a. A pair is a cache hit at threshold t when similarity >= t (and, with verification,
the step accepts it). Reported per threshold, for all pairs and for the dev/test halves:

- recall: paraphrase pairs (label 1) that hit;
- false-hit rate: hard-negative pairs (label 0) that hit — a wrong answer served;
- precision: hits that were paraphrases.

The default threshold (CacheConfig.similarity_threshold) is the lowest threshold at which, with
verification, false hits stay under 1% of the negative pairs both on the dev half and on all pairs.

    python bench/cache/eval.py [--out FILE] [--failures]   (bench/cache/bench.py puts it into bench/results/cache.md)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from deployments.cache.config import DEFAULT_THRESHOLD  # noqa: E402
from deployments.cache.embedder import shared_embedder  # noqa: E402
from deployments.cache.verify import verify  # noqa: E402

THRESHOLDS = [round(0.70 + 0.01 * i, 2) for i in range(28)]


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rates(pairs: list[dict], sims: np.ndarray, ok: list[bool], t: float, use_verify: bool,
          split: str | None = None) -> dict:
    tp = fp = pos = neg = 0
    for p, s, v in zip(pairs, sims, ok, strict=True):
        if split and p["split"] != split:
            continue
        hit = s >= t and (v or not use_verify)
        if p["label"]:
            pos += 1
            tp += hit
        else:
            neg += 1
            fp += hit
    return {"recall": tp / pos, "false_hit": fp / neg, "precision": tp / (tp + fp) if tp + fp else 1.0,
            "tp": tp, "fp": fp, "pos": pos, "neg": neg}


def choose(pairs: list[dict], sims: np.ndarray, ok: list[bool]) -> float:
    for t in THRESHOLDS:
        if rates(pairs, sims, ok, t, True, "dev")["false_hit"] < 0.01 and rates(pairs, sims, ok, t, True)["false_hit"] < 0.01:
            return t
    return THRESHOLDS[-1]


def report(pairs_path: str | Path = Path(__file__).with_name("eval_pairs.jsonl"), failures: bool = False) -> list[str]:
    pairs = load(Path(pairs_path))
    emb = shared_embedder()
    a = emb.encode([p["a"] for p in pairs])
    b = emb.encode([p["b"] for p in pairs])
    sims = (a * b).sum(axis=1)
    t0 = time.perf_counter()
    ok = [verify(p["a"], p["b"]) is None for p in pairs]
    verify_us = (time.perf_counter() - t0) / len(pairs) * 1e6
    chosen = choose(pairs, sims, ok)

    kinds = Counter((p["label"], p["kind"]) for p in pairs)
    lines = [
        "## Semantic cache quality (bench/cache/eval.py)",
        "",
        f"Pairs: {len(pairs)} ({sum(p['label'] for p in pairs)} paraphrases that should hit, "
        f"{sum(1 - p['label'] for p in pairs)} hard negatives that must not: "
        + ", ".join(f"{k} {n}" for (lab, k), n in sorted(kinds.items()) if lab == 0)
        + f"). Split by hash into dev ({sum(p['split'] == 'dev' for p in pairs)}) and test "
        f"({sum(p['split'] == 'test' for p in pairs)}).",
        f"Verification step: {verify_us:.0f} µs per pair (features of both texts + comparison, pure Python).",
        "",
        f"**Default threshold: {chosen}** (CacheConfig.similarity_threshold = {DEFAULT_THRESHOLD}): the lowest "
        "threshold where false hits stay under 1% of the negatives with verification, on the dev half and on all pairs.",
        "",
        "| threshold | recall (no verify) | false hits (no verify) | recall (verify) | false hits (verify) | precision (verify) | dev recall / FH | test recall / FH |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in THRESHOLDS:
        raw = rates(pairs, sims, ok, t, False)
        ver = rates(pairs, sims, ok, t, True)
        dev = rates(pairs, sims, ok, t, True, "dev")
        test = rates(pairs, sims, ok, t, True, "test")
        mark = " **←**" if t == chosen else ""
        lines.append(
            f"| {t:.2f}{mark} | {raw['recall']:.1%} | {raw['false_hit']:.1%} ({raw['fp']}) | {ver['recall']:.1%} | "
            f"{ver['false_hit']:.2%} ({ver['fp']}) | {ver['precision']:.1%} | {dev['recall']:.1%} / {dev['false_hit']:.2%} | "
            f"{test['recall']:.1%} / {test['false_hit']:.2%} |")
    lines += ["", f"False hits by kind at {chosen}, without → with verification:", ""]
    by_kind = Counter()
    by_kind_v = Counter()
    for p, s, v in zip(pairs, sims, ok, strict=True):
        if p["label"] == 0 and s >= chosen:
            by_kind[p["kind"]] += 1
            by_kind_v[p["kind"]] += v
    lines.append("| kind | pairs | false hits without | with verification |")
    lines.append("|---|---:|---:|---:|")
    for (lab, kind), n in sorted(kinds.items()):
        if lab == 0:
            lines.append(f"| {kind} | {n} | {by_kind[kind]} | {by_kind_v[kind]} |")
    rejected_pos = sum(1 for p, s, v in zip(pairs, sims, ok, strict=True) if p["label"] and s >= chosen and not v)
    lines += ["", f"Paraphrases above the threshold that the verification step rejects (lost hits): {rejected_pos}.", ""]
    if failures:
        lines += ["Wrong at the default threshold:", ""]
        for p, s, v in zip(pairs, sims, ok, strict=True):
            hit = s >= chosen and v
            if hit != bool(p["label"]):
                why = verify(p["a"], p["b"])
                lines.append(f"- {'missed' if p['label'] else 'FALSE HIT'} ({p['kind']}, {s:.3f}, {why}): "
                             f"{p['a']!r} / {p['b']!r}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", default=str(Path(__file__).with_name("eval_pairs.jsonl")))
    ap.add_argument("--out", default="/tmp/raygate-cache-eval.md")
    ap.add_argument("--failures", action="store_true", help="list the pairs the default threshold gets wrong")
    args = ap.parse_args()
    text = "\n".join(report(args.pairs, args.failures)) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

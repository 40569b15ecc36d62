"""Build the held-out near-miss set bench/cache/heldout_pairs.jsonl from heldout_families.py.

A fixed procedure (seed 13), run once and committed with its output before any tuning:

1. Split. Families are sorted by sha1(id) and dealt alternately to `dev` and `test` (families with
   a role swap first, on their own, then the rest); each slot list's
   values are sorted by sha1(list:value) and dealt the same way. A dev family fills its slots only with
   dev values and a test family only with test values, so the test split shares neither a template nor
   a slot value with dev. The free-form paraphrases are dealt by sha1 of the pair.
2. Pairs per family (each with its own random.Random(f"13:{id}")):
   - paraphrase (label 1): every two distinct forms, with two random fillings each;
   - slot near-miss (label 0, kind = the slot list's kind: number, date, entity, version, object): per
     changeable slot, 4 pairs (8 for number, date and version slots, which fewer families have): a
     form with filling v, and a form (the same one half of the time) with
     that one slot changed;
   - negation / qword / conj variants (label 0): each variant text twice, against a random form with
     the same filling;
   - role (label 0): 6 pairs, a form with the two role slots swapped against a form with them in order.
   The order of a and b (cached question, new question) is random.
3. Duplicates (same a, b) are dropped; the file is sorted by split, family, kind.

    python bench/cache/make_heldout.py   # rewrites heldout_pairs.jsonl; the same file every time
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
import string
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from heldout_families import FAMILIES, FREEFORM, LISTS, Family  # noqa: E402

SEED = 13
OUT = Path(__file__).with_name("heldout_pairs.jsonl")
_ARTICLE = re.compile(r"\b([Aa]) (?=[aeioAEIO]|8|11 |18 )")


def _h(s: str) -> str:
    return hashlib.sha1(s.encode()).hexdigest()


def split_values() -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    for name, (_, values) in LISTS.items():
        ordered = sorted(values, key=lambda v: _h(f"{name}:{v}"))
        out[name] = {"dev": ordered[0::2], "test": ordered[1::2]}
    return out


def split_families() -> dict[str, str]:
    out: dict[str, str] = {}
    for stratum in (True, False):  # the few role families are dealt on their own, so both splits get some
        ordered = sorted((f for f in FAMILIES if bool(f.roles) == stratum), key=lambda f: _h(f.id))
        out.update({f.id: ("dev", "test")[i % 2] for i, f in enumerate(ordered)})
    return out


def placeholders(fam: Family) -> list[str]:
    names: list[str] = []
    for text in fam.forms + fam.negation + fam.qword + fam.conj:
        for _, name, _, _ in string.Formatter().parse(text.lstrip("~")):
            if name and name not in names:
                names.append(name)
    return names


def list_of(fam: Family, name: str) -> str:
    base = name.rstrip("+")
    return fam.slots.get(base, base)


def render(text: str, filling: dict[str, str]) -> str:
    lower = text.startswith("~")
    out = text.lstrip("~").format(**filling)
    out = _ARTICLE.sub(lambda m: m.group(1) + "n ", out)
    return out.lower() if lower else out


def fill(fam: Family, values: dict[str, list[str]], rng: random.Random) -> dict[str, str]:
    used: dict[str, set[str]] = {}
    filling: dict[str, str] = {}
    for name in placeholders(fam):
        lst = list_of(fam, name)
        choices = [v for v in values[lst] if v not in used.setdefault(lst, set())]
        filling[name] = rng.choice(choices)
        used[lst].add(filling[name])
    return filling


def family_pairs(fam: Family, split: str, values: dict[str, list[str]]) -> list[dict]:
    rng = random.Random(f"{SEED}:{fam.id}")
    pairs: list[dict] = []

    def add(a: str, b: str, label: int, kind: str) -> None:
        if rng.random() < 0.5:
            a, b = b, a
        pairs.append({"a": a, "b": b, "label": label, "kind": kind, "family": fam.id, "split": split})

    for fa, fb in itertools.combinations(fam.forms, 2):
        for _ in range(2):
            v = fill(fam, values, rng)
            add(render(fa, v), render(fb, v), 1, "paraphrase")
    for name in placeholders(fam):
        if name.endswith("+") or name in fam.fixed:
            continue
        lst = list_of(fam, name)
        kind = LISTS[lst][0]
        for _ in range(4 if kind in ("entity", "object") else 8):
            v = fill(fam, values, rng)
            taken = {val for n, val in v.items() if list_of(fam, n) == lst}
            other = rng.choice([x for x in values[lst] if x not in taken])
            w = dict(v, **{name: other})
            fa = rng.choice(fam.forms)
            fb = fa if rng.random() < 0.5 else rng.choice(fam.forms)
            add(render(fa, v), render(fb, w), 0, kind)
    for kind in ("negation", "qword", "conj"):
        for text in getattr(fam, kind):
            for _ in range(2):
                v = fill(fam, values, rng)
                add(render(rng.choice(fam.forms), v), render(text, v), 0, kind)
    if fam.roles:
        r1, r2 = fam.roles
        for _ in range(6):
            v = fill(fam, values, rng)
            w = dict(v, **{r1: v[r2], r2: v[r1]})
            add(render(rng.choice(fam.forms), v), render(rng.choice(fam.forms), w), 0, "role")
    return pairs


def build() -> list[dict]:
    vals = split_values()
    splits = split_families()
    pairs: list[dict] = []
    for fam in FAMILIES:
        split = splits[fam.id]
        pairs += family_pairs(fam, split, {k: v[split] for k, v in vals.items()})
    for a, b in FREEFORM:
        split = ("dev", "test")[int(_h(a + "|" + b), 16) % 2]
        pairs.append({"a": a, "b": b, "label": 1, "kind": "paraphrase", "family": "freeform", "split": split})
    seen: set[tuple[str, str]] = set()
    unique = []
    for p in pairs:
        key = (p["a"], p["b"])
        if key not in seen and p["a"] != p["b"]:
            seen.add(key)
            unique.append(p)
    order = {"paraphrase": 0}
    unique.sort(key=lambda p: (p["split"], p["family"], order.get(p["kind"], 1), p["kind"]))
    return unique


def main() -> None:
    pairs = build()
    OUT.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs))
    from collections import Counter

    print(f"{len(pairs)} pairs -> {OUT}")
    print(Counter((p["split"], p["kind"]) for p in pairs))


if __name__ == "__main__":
    main()

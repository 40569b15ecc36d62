"""A/B selection between prompt versions: by weight, sticky per key when the test names one.

A sticky key (e.g. `metadata.user_id`) is hashed with the prompt and test names into [0, 1), so
one user gets one version for as long as the weights stay the same (changing the weights moves
only the users whose point falls between the old and the new boundary). Without a key, or when a
request lacks it, the point is drawn from the selector's random generator (seedable for tests).
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from serve_app.errors import bad_request


def check_sticky_key(key: str | None) -> str | None:
    """`metadata.<field>` or `key_id`; ValueError otherwise."""
    if key is None:
        return None
    if key == "key_id" or (key.startswith("metadata.") and len(key) > len("metadata.")):
        return key
    raise ValueError(f"sticky_key {key!r} must be 'metadata.<field>' (e.g. metadata.user_id) or 'key_id'")


def check_weights(weights: Any) -> dict[str, float]:
    """A test's weights: at least two versions, each weight >= 0, some weight > 0; ValueError otherwise."""
    if not isinstance(weights, dict) or len(weights) < 2:
        raise ValueError("'versions' must map at least two versions to their weights")
    out: dict[str, float] = {}
    for version, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            raise ValueError(f"the weight of version {version!r} must be a number >= 0")
        out[str(version)] = float(weight)
    if sum(out.values()) <= 0:
        raise ValueError("at least one weight must be above 0")
    return out


@dataclass(frozen=True, slots=True)
class Split:
    """Versions and their cumulative share of traffic (the last bound is 1.0)."""

    test: str
    versions: tuple[str, ...]
    bounds: tuple[float, ...]
    sticky_key: str | None = None

    @classmethod
    def of(cls, test: str, weights: dict[str, float], sticky_key: str | None = None) -> Split:
        total = sum(weights.values())
        bounds, acc = [], 0.0
        for w in weights.values():
            acc += w / total
            bounds.append(acc)
        bounds[-1] = 1.0
        return cls(test, tuple(weights), tuple(bounds), sticky_key)

    def pick(self, point: float) -> str:
        """The version whose share contains `point` in [0, 1) (versions of weight 0 own no share)."""
        return self.versions[min(bisect_right(self.bounds, point), len(self.versions) - 1)]


def sticky_value(key: str, metadata: dict[str, str], key_id: str | None) -> str | None:
    if key == "key_id":
        return key_id
    return metadata.get(key[len("metadata."):])


def sticky_point(prompt: str, test: str, value: str) -> float:
    digest = hashlib.blake2b(f"{prompt}\0{test}\0{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class Selector:
    """Chooses a version of a split for one request."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()

    def choose(self, prompt: str, split: Split, metadata: dict[str, str], key_id: str | None) -> str:
        value = sticky_value(split.sticky_key, metadata, key_id) if split.sticky_key else None
        point = sticky_point(prompt, split.test, value) if value is not None else self.rng.random()
        return split.pick(point)


def inline_split(base: str, test_version: str, share: Any, sticky_key: Any) -> Split:
    """A test given in the render request: `test_version` gets `split` of the traffic, `base` the rest."""
    if share is None:
        share = 0.5
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise bad_request("'split' must be a number from 0 to 1 (the test version's share)", param="split")
    if sticky_key is not None and not isinstance(sticky_key, str):
        raise bad_request("'sticky_key' must be a string", param="sticky_key")
    try:
        check_sticky_key(sticky_key)
    except ValueError as exc:
        raise bad_request(str(exc), param="sticky_key") from None
    if base == test_version:
        raise bad_request("'test_version' is the version it would be tested against", param="test_version")
    return Split.of(f"{base}_vs_{test_version}", {base: 1 - share, test_version: float(share)}, sticky_key)

"""A/B selection: weights hold within tolerance with a fixed seed, sticky keys keep one version."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from deployments.prompts.split import Selector, Split, check_sticky_key, check_weights, inline_split
from serve_app.errors import GatewayError

N = 20_000


def test_weights_hold_with_a_fixed_seed() -> None:
    split = Split.of("t", {"1.0.0": 0.2, "1.1.0": 0.5, "2.0.0-rc.1": 0.3})
    selector = Selector(random.Random(1234))
    counts = Counter(selector.choose("p", split, {}, None) for _ in range(N))
    for version, share in {"1.0.0": 0.2, "1.1.0": 0.5, "2.0.0-rc.1": 0.3}.items():
        assert abs(counts[version] / N - share) < 0.015, counts


def test_same_seed_same_choices() -> None:
    split = Split.of("t", {"a": 1, "b": 1})
    first = Selector(random.Random(7))
    second = Selector(random.Random(7))
    assert [first.choose("p", split, {}, None) for _ in range(200)] == \
        [second.choose("p", split, {}, None) for _ in range(200)]


def test_unnormalised_and_zero_weights() -> None:
    split = Split.of("t", {"a": 0, "b": 3, "c": 1})
    selector = Selector(random.Random(5))
    counts = Counter(selector.choose("p", split, {}, None) for _ in range(N))
    assert counts["a"] == 0 and abs(counts["b"] / N - 0.75) < 0.015
    assert split.pick(0.0) == "b" and split.pick(0.999999) == "c"


def test_sticky_key_keeps_a_user_on_one_version_and_splits_users_by_weight() -> None:
    split = Split.of("t", {"old": 0.7, "new": 0.3}, sticky_key="metadata.user_id")
    selector = Selector(random.Random(0))
    for user in ("u1", "u2", "u3"):
        picks = {selector.choose("p", split, {"user_id": user}, None) for _ in range(50)}
        assert len(picks) == 1
    users = Counter(selector.choose("p", split, {"user_id": f"user-{i}"}, None) for i in range(N))
    assert abs(users["new"] / N - 0.3) < 0.015
    # another test (or prompt) hashes the same user elsewhere: assignments are independent between tests
    other = Split.of("t2", {"old": 0.7, "new": 0.3}, sticky_key="metadata.user_id")
    same = sum(selector.choose("p", split, {"user_id": f"user-{i}"}, None)
               == selector.choose("p", other, {"user_id": f"user-{i}"}, None) for i in range(2000))
    assert same < 1900


def test_key_id_stickiness_and_a_missing_key_falls_back_to_random() -> None:
    split = Split.of("t", {"a": 0.5, "b": 0.5}, sticky_key="key_id")
    selector = Selector(random.Random(3))
    assert len({selector.choose("p", split, {}, "team-a") for _ in range(30)}) == 1
    assert len({selector.choose("p", split, {}, None) for _ in range(30)}) == 2


def test_weight_and_key_checks() -> None:
    with pytest.raises(ValueError):
        check_weights({"a": 1})
    with pytest.raises(ValueError):
        check_weights({"a": -1, "b": 1})
    with pytest.raises(ValueError):
        check_weights({"a": 0, "b": 0})
    with pytest.raises(ValueError):
        check_weights({"a": True, "b": 1})
    with pytest.raises(ValueError):
        check_sticky_key("body.user")
    assert check_sticky_key("metadata.user_id") == "metadata.user_id"


def test_inline_split() -> None:
    split = inline_split("1.2.0", "1.3.0-beta", 0.25, None)
    assert split.test == "1.2.0_vs_1.3.0-beta" and split.versions == ("1.2.0", "1.3.0-beta")
    assert split.pick(0.74) == "1.2.0" and split.pick(0.76) == "1.3.0-beta"
    for bad in (1.5, -0.1, "half", True):
        with pytest.raises(GatewayError):
            inline_split("1.2.0", "1.3.0", bad, None)
    with pytest.raises(GatewayError):
        inline_split("1.2.0", "1.2.0", 0.5, None)

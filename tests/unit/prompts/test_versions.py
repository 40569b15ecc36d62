"""Semantic-version order of prompt versions (semver.org 2.0.0, section 11)."""

from __future__ import annotations

import random

from deployments.prompts import versions as semver

SPEC_ORDER = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
              "1.0.0-rc.1", "1.0.0", "1.2.0", "1.10.0", "2.0.0"]


def test_precedence_matches_the_spec() -> None:
    shuffled = SPEC_ORDER[:]
    random.Random(1).shuffle(shuffled)
    assert semver.ordered(shuffled) == SPEC_ORDER


def test_validation() -> None:
    for ok in ("0.0.1", "1.2.3-beta.1+build.5", "10.20.30", "1.0.0-0A.is.legal"):
        assert semver.is_semver(ok), ok
    for bad in ("1.2", "v1.2.3", "01.2.3", "1.2.3-", "1.2.3-01", "1.2.3+", "latest", ""):
        assert not semver.is_semver(bad), bad


def test_latest_prefers_a_release() -> None:
    assert semver.latest(["1.2.0", "1.3.0-beta", "1.1.9"]) == "1.2.0"
    assert semver.latest(["1.3.0-beta", "1.3.0-alpha"]) == "1.3.0-beta"
    assert semver.latest([]) is None

"""Semantic versions (semver.org 2.0.0) for prompt versions: validation and precedence order."""

from __future__ import annotations

import re
from collections.abc import Iterable

_ID = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
SEMVER = re.compile(rf"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-({_ID}(?:\.{_ID})*))?"
                    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$")

Key = tuple[int, int, int, int, tuple[tuple[int, int | str], ...], str]


def is_semver(version: str) -> bool:
    return len(version) <= 128 and SEMVER.match(version) is not None


def sort_key(version: str) -> Key:
    """Semver precedence: a pre-release sorts before its release, numeric identifiers before words and
    by value; build metadata does not count (two builds of one version tie-break by their text)."""
    m = SEMVER.match(version)
    if m is None:
        raise ValueError(f"{version!r} is not a semantic version")
    major, minor, patch, pre, _build = m.groups()
    ids = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")) if pre else ()
    return int(major), int(minor), int(patch), 0 if pre else 1, ids, version


def is_prerelease(version: str) -> bool:
    return sort_key(version)[3] == 0


def ordered(versions: Iterable[str]) -> list[str]:
    return sorted(versions, key=sort_key)


def latest(versions: Iterable[str]) -> str | None:
    """The highest release; the highest pre-release when there is no release; None when empty."""
    ordered_versions = ordered(versions)
    releases = [v for v in ordered_versions if not is_prerelease(v)]
    if releases:
        return releases[-1]
    return ordered_versions[-1] if ordered_versions else None

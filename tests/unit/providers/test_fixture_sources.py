"""Every provider fixture names the section of the provider's API reference it follows: each folder
under tests/fixtures/providers/ has a README.md that names each of its files, literally or by a
`<placeholder>` pattern such as `chat/<scenario>.json`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.mockservers.common import FIXTURES

FOLDERS = sorted(p for p in FIXTURES.iterdir() if p.is_dir())
_TOKEN = re.compile(r"`([^`\s]+)`")


def named(readme: str) -> list[re.Pattern[str]]:
    """The file names and `<placeholder>` patterns a README mentions in backticks."""
    patterns = []
    for token in _TOKEN.findall(readme):
        parts = re.split(r"(<[^>]+>)", token)
        body = "".join("[^/]+" if p.startswith("<") else re.escape(p) for p in parts)
        patterns.append(re.compile(body + "$"))
    return patterns


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_every_fixture_file_is_named_in_its_readme(folder: Path) -> None:
    readme = folder / "README.md"
    assert readme.exists(), f"{folder.name} has no README.md naming its API-reference sources"
    patterns = named(readme.read_text())
    files = [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != "README.md"]
    unnamed = [f for f in files if not any(p.match(f) for p in patterns)]
    assert not unnamed, f"{folder.name}/README.md does not name: {unnamed}"

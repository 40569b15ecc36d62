"""bench/results/guardrails.md: each script owns one marked section and rewrites only that."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results" / "guardrails.md"


def write_section(name: str, lines: list[str]) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Guardrails\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    section = "\n".join([start, *lines, end])
    if start in text:
        text = text[:text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    RESULTS.write_text(text)

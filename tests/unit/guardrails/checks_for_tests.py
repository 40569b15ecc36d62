"""Custom checks referenced by import path from the guardrail tests' configs."""

from __future__ import annotations

from typing import Any


def confidence_check(request: dict[str, Any], response: dict[str, Any] | None) -> tuple[bool, str | None]:
    text = response["choices"][0]["message"]["content"] if response else ""
    return ("not sure" not in text, "the answer is unsure")


def broken_check(request: dict[str, Any], response: dict[str, Any] | None) -> tuple[bool, str | None]:
    raise RuntimeError("bug in the operator's check")

"""Which model names a provider receives: its declared `models` (exact names and globs), or any.

A provider that declares `models` receives only names that match them (a name mapped to it under
the gateway's `models:` is always accepted); a provider without a list is a pass-through whose
upstream decides (its own 404 is mapped as any upstream error). Matching is a set lookup, plus
one compiled regex when the list has globs (`*`, `?`, `[...]`, as in fnmatch, case-sensitive).
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

_GLOB = re.compile(r"[*?\[]")


def is_glob(name: str) -> bool:
    return _GLOB.search(name) is not None


class ServedModels:
    __slots__ = ("declared", "names", "pattern")

    def __init__(self, declared: list[str] | tuple[str, ...]) -> None:
        self.declared = tuple(declared)
        self.names = frozenset(m for m in declared if not is_glob(m))
        globs = [fnmatch.translate(m) for m in declared if is_glob(m)]
        self.pattern = re.compile("|".join(globs)) if globs else None

    @property
    def pass_through(self) -> bool:
        return not self.declared

    def accepts(self, model: str) -> bool:
        if not self.declared or model in self.names:
            return True
        return self.pattern is not None and self.pattern.match(model) is not None

    def matches_declared(self, model: str) -> bool:
        """The name is in the list (a pass-through declares nothing, so matches nothing)."""
        return bool(self.declared) and self.accepts(model)

    def describe(self) -> str:
        return ", ".join(self.declared) if self.declared else "any model"


def own_model(config: Any) -> str | None:
    """The model a provider is called with when nothing names one: its `model`, else its one
    declared model (a provider that serves a single model has an unambiguous own model)."""
    if config.model:
        return config.model
    exact = [m for m in config.models if not is_glob(m)]
    return exact[0] if len(exact) == 1 and len(config.models) == 1 else None


__all__ = ["ServedModels", "is_glob", "own_model"]

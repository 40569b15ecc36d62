"""`custom`: a Python callable `(request, response) -> (ok, reason)`, by import path or by name.

`function: "mypkg.checks:confidence_check"` imports it at start-up (a bad path is a config error);
`function: "confidence-check"` names one registered with `register(name, fn)` before the config is
loaded (code that builds the app in Python). On input `response` is None; on output it is the
chat.completion dict (for streams, the accumulated text as its message). The callable may also
return a bare bool. Anything it raises, or a result of the wrong shape, is reported as a failed
check (verdict `error`, the check's action applies), never as a crash of the request.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, PrivateAttr, model_validator

from .base import Check, CheckConfig, Finding, Subject

CustomFn = Callable[[dict[str, Any], dict[str, Any] | None], Any]
_REGISTERED: dict[str, CustomFn] = {}


def register(name: str, fn: CustomFn) -> CustomFn:
    """Make `fn` available to configs as `type: custom, function: <name>`."""
    if not callable(fn):
        raise TypeError(f"guardrail {name!r}: {fn!r} is not callable")
    _REGISTERED[name] = fn
    return fn


def resolve(ref: str) -> CustomFn:
    if ref in _REGISTERED:
        return _REGISTERED[ref]
    module_name, sep, attr = ref.partition(":")
    if not sep:
        raise ValueError(f"{ref!r} is neither a registered check nor an import path 'module:function'")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import {ref!r}: {exc}") from None
    if not callable(fn):
        raise ValueError(f"{ref!r} is not callable")
    return fn


class CustomConfig(CheckConfig):
    type: Literal["custom"]
    function: str = Field(description="'module:function', or a name given to register().")
    _fn: CustomFn | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _resolved(self) -> CustomConfig:
        self._fn = resolve(self.function)
        return self


class CustomCheck(Check):
    type = "custom"

    def __init__(self, cfg: CustomConfig) -> None:
        super().__init__(cfg)
        self.fn = cfg._fn or resolve(cfg.function)

    def evaluate(self, subject: Subject) -> Finding:
        try:
            result = self.fn(subject.get("request") or {}, subject.get("response"))
        except Exception as exc:  # noqa: BLE001 - the operator's code failing is a failed check, not a 500
            return Finding(False, f"custom check raised {type(exc).__name__}", error=True)
        if isinstance(result, bool):
            return Finding(result, None if result else "custom check failed")
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], bool):
            ok, reason = result
            return Finding(ok, None if ok else str(reason or "custom check failed")[:200])
        return Finding(False, f"custom check returned {type(result).__name__}, not (ok, reason)", error=True)


CONFIG, CHECK = CustomConfig, CustomCheck

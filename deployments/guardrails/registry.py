"""The check types, declared as data: type -> module, default stage, allowed actions, model or not.

A check type is one module defining `CONFIG` (its pydantic model, `type: Literal[...]`) and
`CHECK` (its class), plus one row here. `holds_model` checks run in the guardrail deployment by
default (placement.guardrails: auto); the others run in the ingress.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

SPAN_ACTIONS = frozenset({"block", "mask", "warn", "log", "retry"})
SCORE_ACTIONS = frozenset({"block", "warn", "log", "retry"})


@dataclass(frozen=True, slots=True)
class CheckType:
    module: str
    stage: str  # the default: input | output | both
    actions: frozenset[str]
    holds_model: bool = False

    def load(self) -> ModuleType:
        return importlib.import_module(f"deployments.guardrails.{self.module}")


CHECK_TYPES: dict[str, CheckType] = {
    "keyword_filter": CheckType("keywords", "both", SPAN_ACTIONS),
    "regex": CheckType("patterns", "both", SPAN_ACTIONS),
    "pii_detector": CheckType("pii", "both", SPAN_ACTIONS),
    "toxicity_check": CheckType("toxicity", "both", SCORE_ACTIONS, holds_model=True),
    "content_policy": CheckType("content_policy", "both", SCORE_ACTIONS, holds_model=True),
    "length": CheckType("length", "both", SCORE_ACTIONS),
    "response_format": CheckType("response_format", "output", SCORE_ACTIONS),
    "custom": CheckType("custom", "output", SCORE_ACTIONS),
}


def config_models() -> list[type]:
    return [t.load().CONFIG for t in CHECK_TYPES.values()]


def check_class(type_name: str) -> type:
    return CHECK_TYPES[type_name].load().CHECK

"""What every check is: a config model, a `Check` with `evaluate(subject) -> Finding`, and spans.

A subject is plain data (it crosses a handle when checks run in the guardrail deployment):
`{"phase": "input" | "output", "texts": [str, ...], "request": body, "response": answer | None,
"entities": {placeholder: original}}`. `texts` are the request's message texts (input) or the
answer's choice texts (output); a mask rewrites them, and `entities` carries PII placeholders
from the request to the answer (`unmask_output`).

Rule checks that find spans (keywords, patterns, PII) derive from `SpanCheck`: one `spans(text)`
gives block, warn, log and mask alike, and lets a stream mask what it has not sent yet.
"""

from __future__ import annotations

import abc

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["block", "mask", "warn", "retry", "log"]
Phase = Literal["input", "output", "both"]
Subject = dict[str, Any]
Span = tuple[int, int, str]  # start, end, label (what was found: "email", "keyword", ...)


class CheckConfig(BaseModel):
    """Fields every check has; each check type adds its own in its module."""

    model_config = ConfigDict(extra="forbid")

    type: str
    action: Action = "block"
    stage: Phase | None = Field(None, description="input, output or both; default: the check type's own.")
    name: str | None = Field(None, description="The check's name in verdicts, metrics and errors; "
                                               "default: its type.")
    max_retries: int = Field(2, ge=0, le=5, description="action retry: extra upstream calls before failing.")


@dataclass(slots=True)
class Finding:
    ok: bool
    reason: str | None = None  # why it failed; never the text that made it fail
    score: float | None = None
    texts: list[str] | None = None  # the masked texts (action mask)
    error: bool = False  # the check itself failed (a custom check raised): a failure, never a crash
    latency_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Check(abc.ABC):
    type: ClassVar[str]

    def __init__(self, cfg: CheckConfig) -> None:
        self.cfg = cfg
        self.action = cfg.action

    @abc.abstractmethod
    def evaluate(self, subject: Subject) -> Finding:
        """The verdict on the subject's texts."""

    def load(self) -> None:
        """Load the check's model (once per process); rule checks have none."""


class SpanCheck(Check):
    """A check that finds spans of text; mask replaces them, other actions report them."""

    @abc.abstractmethod
    def spans(self, text: str) -> list[Span]:
        """The spans of `text` this check finds."""

    def replacement(self, label: str, found: str, subject: Subject) -> str:
        return f"[{label.upper()}]"

    def describe(self, labels: list[str]) -> str:
        return "found " + ", ".join(sorted(set(labels)))

    def mask_text(self, text: str, subject: Subject, spans: list[Span] | None = None) -> str:
        spans = self.spans(text) if spans is None else spans
        out, pos = [], 0
        for start, end, label in sorted(spans):
            if start < pos:
                continue
            out.append(text[pos:start])
            out.append(self.replacement(label, text[start:end], subject))
            pos = end
        out.append(text[pos:])
        return "".join(out)

    def evaluate(self, subject: Subject) -> Finding:
        texts = subject["texts"]
        found = [self.spans(t) for t in texts]
        labels = [label for spans in found for _, _, label in spans]
        if not labels:
            return Finding(True)
        masked = None
        if self.action == "mask":
            masked = [self.mask_text(t, subject, s) if s else t for t, s in zip(texts, found, strict=True)]
        return Finding(False, self.describe(labels), float(len(labels)), masked)

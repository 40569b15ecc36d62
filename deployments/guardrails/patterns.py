"""`regex`: the operator's own patterns (compiled once at start-up), to block or mask."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .base import CheckConfig, Span, SpanCheck


class Pattern(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pattern: str
    name: str = Field("pattern", description="What a match is called in verdicts and masks.")


class RegexConfig(CheckConfig):
    type: Literal["regex"]
    patterns: list[str | Pattern] = Field(min_length=1)
    ignore_case: bool = True
    replacement: str | None = Field(None, description="What a masked match becomes; default: [NAME].")

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, v: list[str | Pattern]) -> list[str | Pattern]:
        for p in v:
            source = p if isinstance(p, str) else p.pattern
            try:
                re.compile(source)
            except re.error as exc:
                raise ValueError(f"pattern {source!r} does not compile: {exc}") from None
        return v


class RegexCheck(SpanCheck):
    type = "regex"

    def __init__(self, cfg: RegexConfig) -> None:
        super().__init__(cfg)
        flags = re.IGNORECASE if cfg.ignore_case else 0
        self.compiled = [(re.compile(p, flags), "pattern") if isinstance(p, str)
                         else (re.compile(p.pattern, flags), p.name) for p in cfg.patterns]
        self.replacement_text = cfg.replacement

    def spans(self, text: str) -> list[Span]:
        return [(m.start(), m.end(), name) for rx, name in self.compiled for m in rx.finditer(text)
                if m.end() > m.start()]

    def replacement(self, label: str, found: str, subject: dict) -> str:
        return self.replacement_text if self.replacement_text is not None else f"[{label.upper()}]"

    def describe(self, labels: list[str]) -> str:
        return "matches " + ", ".join(sorted(set(labels)))


CONFIG, CHECK = RegexConfig, RegexCheck

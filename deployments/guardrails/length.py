"""`length`: at most `max_chars` characters and/or `max_tokens` tokens of input or output.

Tokens are counted the way most BPE vocabularies split English, approximately: each word and
each punctuation mark is one token (it over-counts rather than under-counts long words less than
a 4-characters-per-token rule would mis-count code). Counts cover all of a phase's texts.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from .base import Check, CheckConfig, Finding, Subject

_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    return sum(1 for _ in _TOKEN.finditer(text))


class LengthConfig(CheckConfig):
    type: Literal["length"]
    max_chars: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _some_limit(self) -> LengthConfig:
        if self.max_chars is None and self.max_tokens is None:
            raise ValueError("set max_chars, max_tokens or both")
        return self


class LengthCheck(Check):
    type = "length"

    def __init__(self, cfg: LengthConfig) -> None:
        super().__init__(cfg)
        self.max_chars, self.max_tokens = cfg.max_chars, cfg.max_tokens

    def evaluate(self, subject: Subject) -> Finding:
        texts = subject["texts"]
        chars = sum(len(t) for t in texts)
        if self.max_chars is not None and chars > self.max_chars:
            return Finding(False, f"{chars} characters > {self.max_chars}", float(chars))
        if self.max_tokens is not None:
            tokens = sum(count_tokens(t) for t in texts)
            if tokens > self.max_tokens:
                return Finding(False, f"~{tokens} tokens > {self.max_tokens}", float(tokens))
        return Finding(True, score=float(chars))


CONFIG, CHECK = LengthConfig, LengthCheck

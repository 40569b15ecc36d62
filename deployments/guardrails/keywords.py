"""`keyword_filter`: whole words and phrases, case-insensitive, after Unicode normalisation.

Both the text and the keywords are folded (text.py: NFKC, case, marks, look-alikes, leetspeak),
then split into words. A keyword matches a run of whole words whose letters, joined, spell it, as
long as the words are separated only by short runs of spaces, `-`, `_`, `.` or `*`: so "password",
"PASSWORD", "Pass word", "p-a-s-s-w-o-r-d", "ｐａｓｓｗｏｒｄ" and "p4ssw0rd" all match, while
"passwords", "compass word" and "bypassword" do not (whole words only). `credit_card` matches
"credit card" and "creditcard". `allowlist` phrases are matched the same way; a keyword inside an
allowed phrase does not count ("password reset" may be allowed while "password" is blocked).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from .base import CheckConfig, Span, SpanCheck
from .text import fold, original_span

_WORD = re.compile(r"\w+")
_JOINER = re.compile(r"[\s\-_.*]{1,3}")


class KeywordConfig(CheckConfig):
    type: Literal["keyword_filter"]
    blocklist: list[str] = Field(min_length=1, description="Words or phrases to find.")
    allowlist: list[str] = Field(default_factory=list, description="Phrases in which a keyword is allowed.")
    replacement: str = Field("[REDACTED]", description="What a masked keyword becomes.")

    @field_validator("blocklist", "allowlist")
    @classmethod
    def _spellable(cls, v: list[str]) -> list[str]:
        for word in v:
            if not _skeleton(word):
                raise ValueError(f"{word!r} has no letters or digits to match")
        return v


def _skeleton(phrase: str) -> str:
    return "".join(_WORD.findall(fold(phrase)[0])).replace("_", "")


class KeywordFilter(SpanCheck):
    type = "keyword_filter"

    def __init__(self, cfg: KeywordConfig) -> None:
        super().__init__(cfg)
        self.replacement_text = cfg.replacement
        self.blocked = frozenset(_skeleton(w) for w in cfg.blocklist)
        self.allowed = frozenset(_skeleton(w) for w in cfg.allowlist)
        self.longest = max(len(w) for w in self.blocked | self.allowed)

    def _runs(self, folded: str, words: frozenset[str]) -> list[tuple[int, int]]:
        """(start, end) in `folded` of word runs that spell one of `words`."""
        tokens = [(m.start(), m.end(), m.group().replace("_", "")) for m in _WORD.finditer(folded)]
        found = []
        for i, (start, end, spelled) in enumerate(tokens):
            if spelled in words:
                found.append((start, end))
            j = i + 1
            while j < len(tokens) and len(spelled) < self.longest:
                gap = folded[tokens[j - 1][1]:tokens[j][0]]
                if not _JOINER.fullmatch(gap):
                    break
                spelled += tokens[j][2]
                end = tokens[j][1]
                if spelled in words:
                    found.append((start, end))
                j += 1
        return found

    def spans(self, text: str) -> list[Span]:
        folded, offsets = fold(text)
        hits = self._runs(folded, self.blocked)
        if not hits:
            return []
        if self.allowed:
            allowed = self._runs(folded, self.allowed)
            hits = [h for h in hits if not any(a <= h[0] and h[1] <= b for a, b in allowed)]
        return [(*original_span(offsets, s, e), "keyword") for s, e in hits]

    def replacement(self, label: str, found: str, subject: dict) -> str:
        return self.replacement_text

    def describe(self, labels: list[str]) -> str:
        return f"contains {len(labels)} blocked keyword(s)"


CONFIG, CHECK = KeywordConfig, KeywordFilter

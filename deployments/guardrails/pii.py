"""`pii_detector`: email, phone, SSN, credit card, IP address and IBAN, found by rules.

Each entity is a pattern plus a validator where the format has one: credit cards pass the Luhn
check, IBANs their mod-97 check digits, SSNs the issuance rules (no 000/666/9xx area, 00 group,
0000 serial), IPs `ipaddress`. Patterns run on the NFKC form (full-width digits are digits) and
tolerate the usual evasions: spaced or dashed digit groups, and emails written "name [at] host
[dot] com" / "name at host dot com". Mask replaces each entity with a typed placeholder
(`<EMAIL_1>`, the same one for the same value in a request); with `unmask_output: true` the
stage puts the originals back into the answer.

Person names and locations need an NER model. None ships offline from a trusted PyPI package
here (spaCy's English models are published on GitHub, not PyPI; PyPI has only third-party
re-uploads), so asking for `person` or `location` is a config error that says so.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Literal

from pydantic import Field, field_validator

from .base import CheckConfig, Span, SpanCheck, Subject
from .text import original_span, widths

_TLDS = "com|org|net|edu|gov|io|co|uk|de|fr|info|biz|me|us|ca|au|ai|dev"
_PATTERNS: dict[str, re.Pattern[str]] = {
    "email": re.compile(
        r"[\w.+-]+(?:@|\s*[\[({]\s*at\s*[\])}]\s*)[\w-]+(?:(?:\.|\s*[\[({]\s*dot\s*[\])}]\s*)[\w-]+)+"
        rf"|\b[\w.+-]+\s+at\s+[\w-]+(?:\s+dot\s+[\w-]+)*\s+dot\s+(?:{_TLDS})\b", re.I),
    "phone": re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?"
                        r"\d{2,4}(?:[\s.-]?\d{2,4}){1,4}(?!\w)"),
    "ssn": re.compile(r"(?<!\d)(\d{3})[\s-]?(\d{2})[\s-]?(\d{4})(?!\d)"),
    "credit_card": re.compile(r"(?<!\d)(?:\d[\s-]?){12,18}\d(?!\d)"),
    "ip_address": re.compile(r"(?<![\w.:])(?:\d{1,3}(?:\.\d{1,3}){3}|(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4})"
                             r"(?![\w.:])", re.I),
    "iban": re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,4})?\b", re.I),
}
NER_ENTITIES = ("person", "location")
_SSN_SHAPE = re.compile(r"\d{3}[\s-]\d{2}[\s-]\d{4}")


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


def luhn(number: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(number)):
        d = int(c)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(m: re.Match[str]) -> bool:
    digits = _digits(m.group())
    return 13 <= len(digits) <= 19 and luhn(digits)


def _ssn(m: re.Match[str]) -> bool:
    area, group, serial = m.group(1), m.group(2), m.group(3)
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _phone(m: re.Match[str]) -> bool:
    text = m.group()
    digits = _digits(text)
    if not 7 <= len(digits) <= 15 or _SSN_SHAPE.fullmatch(text):  # an SSN that was never issued is no phone
        return False
    # a plain run of digits is a number, not a phone: phones have a + or separators
    return text.startswith("+") or "(" in text or any(c in text for c in " .-")


def _ip(m: re.Match[str]) -> bool:
    try:
        ipaddress.ip_address(m.group())
    except ValueError:
        return False
    return True


def iban_ok(text: str) -> bool:
    code = text.replace(" ", "").upper()
    if not 15 <= len(code) <= 34:
        return False
    rotated = code[4:] + code[:4]
    return int("".join(str(int(c, 36)) for c in rotated)) % 97 == 1


_VALID: dict[str, Callable[[re.Match[str]], bool]] = {
    "credit_card": _card, "ssn": _ssn, "phone": _phone, "ip_address": _ip,
    "iban": lambda m: iban_ok(m.group()),
}
# more specific entities first: a card number is not also reported as a phone
_PRIORITY = ("email", "iban", "credit_card", "ssn", "ip_address", "phone")
ENTITIES = tuple(_PATTERNS)


class PiiConfig(CheckConfig):
    type: Literal["pii_detector"]
    entities: list[str] = Field(default_factory=lambda: list(ENTITIES))
    unmask_output: bool = Field(False, description="Put masked values back into the answer.")

    @field_validator("entities")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        for e in v:
            if e in NER_ENTITIES:
                raise ValueError(f"entity {e!r} needs an NER model, and none is installed (no trusted "
                                 "offline spaCy model on PyPI); use regex checks for known name lists")
            if e not in _PATTERNS:
                raise ValueError(f"unknown entity {e!r} (known: {', '.join(ENTITIES)})")
        return v


class PiiDetector(SpanCheck):
    type = "pii_detector"

    def __init__(self, cfg: PiiConfig) -> None:
        super().__init__(cfg)
        self.entities = [e for e in _PRIORITY if e in cfg.entities]
        self.unmask_output = cfg.unmask_output

    def spans(self, text: str) -> list[Span]:
        norm, offsets = widths(text)
        taken: list[tuple[int, int]] = []
        out: list[Span] = []
        for entity in self.entities:
            valid = _VALID.get(entity)
            for m in _PATTERNS[entity].finditer(norm):
                s, e = m.span()
                if any(s < b and a < e for a, b in taken) or (valid is not None and not valid(m)):
                    continue
                taken.append((s, e))
                out.append((*original_span(offsets, s, e), entity))
        return out

    def replacement(self, label: str, found: str, subject: Subject) -> str:
        entities = subject.setdefault("entities", {})
        for placeholder, value in entities.items():
            if value == found and placeholder.startswith(f"<{label.upper()}_"):
                return placeholder
        n = 1 + sum(1 for p in entities if p.startswith(f"<{label.upper()}_"))
        placeholder = f"<{label.upper()}_{n}>"
        entities[placeholder] = found
        return placeholder

    def describe(self, labels: list[str]) -> str:
        return "contains personal data: " + ", ".join(sorted(set(labels)))


CONFIG, CHECK = PiiConfig, PiiDetector

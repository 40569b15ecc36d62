"""Mustache-style `{{name}}` templates, rendered without executing anything.

A template is parsed once (at deploy time, again when a replica first loads the version) into
literal text and variable slots; rendering joins them, so a variable's value is inserted as text
and never parsed again: a value that contains `{{other}}` stays those characters. There is no
lookup other than a dict key: no dotted paths into objects, no attributes, no expressions, no
sections, partials or lambdas (those tags are refused when the prompt is deployed).

Tags: `{{name}}`, `{{ name }}`, `{{{name}}}` and `{{& name}}` (the same: nothing is HTML-escaped,
this is chat text, not HTML), `{{! comment }}` (dropped). `name` is `[A-Za-z_][A-Za-z0-9_]*`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from serve_app.errors import bad_request

_TAG = re.compile(r"\{\{\{(.*?)\}\}\}|\{\{(.*?)\}\}", re.DOTALL)
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UNSUPPORTED = {"#": "sections", "^": "inverted sections", "/": "section ends", ">": "partials",
                "=": "delimiter changes", "<": "parents", "$": "blocks"}


class TemplateError(ValueError):
    """A template that cannot be deployed; the message names the tag."""


@dataclass(frozen=True, slots=True)
class Template:
    parts: tuple[str, ...]  # even index: literal text; odd index: a variable name
    variables: frozenset[str]

    def render(self, values: dict[str, str]) -> str:
        parts = self.parts
        if len(parts) == 1:
            return parts[0]
        return "".join(values[p] if i & 1 else p for i, p in enumerate(parts))


def compile_template(text: str) -> Template:
    parts: list[str] = []
    literal: list[str] = []
    pos = 0
    for m in _TAG.finditer(text):
        literal.append(text[pos:m.start()])
        pos = m.end()
        triple, tag = m.group(1), m.group(2)
        body = (triple if triple is not None else tag).strip()
        if triple is None and body[:1] == "!":
            continue  # a comment
        if triple is None and body[:1] == "&":
            body = body[1:].strip()
        elif triple is None and body[:1] in _UNSUPPORTED:
            raise TemplateError(f"mustache {_UNSUPPORTED[body[0]]} ({m.group(0)!r}) are not supported; "
                                "only {{variable}} tags are")
        if not NAME.match(body):
            raise TemplateError(f"{m.group(0)!r} is not a variable tag: a name is letters, digits and '_' "
                                "(not starting with a digit)")
        parts.append("".join(literal))
        parts.append(body)
        literal = []
    literal.append(text[pos:])
    parts.append("".join(literal))
    return Template(tuple(parts), frozenset(parts[1::2]))


def as_text(name: str, value: Any) -> str:
    """A variable's value as the text inserted: strings as they are, numbers and booleans as JSON
    writes them, arrays and objects as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        raise bad_request(f"variable {name!r} is null; send a value", param=f"variables.{name}",
                          code="missing_variable")
    if isinstance(value, bool | int | float | list | dict):
        return orjson.dumps(value).decode()
    raise bad_request(f"variable {name!r} has an unsupported type", param=f"variables.{name}", code="invalid_type")


@dataclass(frozen=True, slots=True)
class MessagesTemplate:
    """A prompt's messages with every text compiled: `content` strings and `text` of content parts."""

    messages: tuple[dict[str, Any], ...]
    slots: tuple[tuple[int, int | None, Template], ...]  # (message index, part index or None, template)
    variables: frozenset[str]

    def render(self, variables: dict[str, Any], allow_extra: bool = False) -> list[dict[str, Any]]:
        """The messages with the variables filled in; 400 naming a missing (or, unless `allow_extra`,
        an unknown) variable."""
        needed = self.variables
        for name in sorted(needed):
            if name not in variables:
                raise bad_request(f"missing variable {name!r} (the prompt uses: {', '.join(sorted(needed))})",
                                  param=f"variables.{name}", code="missing_variable")
        if not allow_extra and len(variables) > len(needed):
            extra = sorted(set(variables) - needed)
            raise bad_request(f"unknown variable {extra[0]!r} (the prompt uses: "
                              f"{', '.join(sorted(needed)) or 'none'}); send allow_extra: true to ignore it",
                              param=f"variables.{extra[0]}", code="unknown_variable")
        values = {name: as_text(name, variables[name]) for name in needed}
        out = [dict(m) for m in self.messages]
        for mi, pi, template in self.slots:
            if pi is None:
                out[mi]["content"] = template.render(values)
            else:
                if out[mi]["content"] is self.messages[mi]["content"]:
                    out[mi]["content"] = [dict(p) for p in out[mi]["content"]]
                out[mi]["content"][pi]["text"] = template.render(values)
        return out


def compile_messages(messages: list[dict[str, Any]]) -> MessagesTemplate:
    """Compile (or refuse with TemplateError naming where) every text of a prompt's messages."""
    slots: list[tuple[int, int | None, Template]] = []
    names: set[str] = set()
    for mi, msg in enumerate(messages):
        content = msg.get("content")
        texts: list[tuple[int | None, str]] = []
        if isinstance(content, str):
            texts.append((None, content))
        elif isinstance(content, list):
            texts += [(pi, p["text"]) for pi, p in enumerate(content)
                      if isinstance(p, dict) and isinstance(p.get("text"), str)]
        for pi, text in texts:
            where = f"messages[{mi}].content" + (f"[{pi}].text" if pi is not None else "")
            try:
                template = compile_template(text)
            except TemplateError as exc:
                raise TemplateError(f"{where}: {exc}") from None
            if template.variables:
                slots.append((mi, pi, template))
                names |= template.variables
    return MessagesTemplate(tuple(messages), tuple(slots), frozenset(names))

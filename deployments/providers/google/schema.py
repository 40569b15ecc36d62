"""JSON Schema -> Gemini `Schema` (the OpenAPI 3.0 subset that `parameters` and `responseSchema` take)."""

from __future__ import annotations

from typing import Any

import orjson

_KEEP = ("description", "nullable", "minItems", "maxItems", "minimum", "maximum", "propertyOrdering")
_FORMATS = frozenset({"enum", "date-time", "float", "double", "int32", "int64"})


def gemini_schema(schema: Any) -> dict[str, Any]:
    """Reduce a JSON Schema to what Gemini's `Schema` accepts.

    `$ref`s into `$defs`/`definitions` are inlined (recursion is cut at depth 8), `type: [x, "null"]`
    and `anyOf [..., {type: null}]` become `nullable`, `const` becomes a one-value enum, enum values
    become strings, and keywords Gemini rejects (`additionalProperties`, `$schema`, `title`,
    `default`, `pattern`, unknown `format`s, ...) are dropped. Types are upper-case, as in the API
    reference.
    """
    if not isinstance(schema, dict):
        return {"type": "OBJECT"}
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _convert(schema, defs, 0)


def _convert(s: Any, defs: dict[str, Any], depth: int) -> dict[str, Any]:
    if not isinstance(s, dict):
        return {}
    if depth > 8:
        return {"type": "OBJECT"}
    ref = s.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1])
        merged = {**(target or {}), **{k: v for k, v in s.items() if k != "$ref"}}
        return _convert(merged, defs, depth + 1)
    out: dict[str, Any] = {}
    for union in ("anyOf", "oneOf"):
        options = s.get(union)
        if isinstance(options, list):
            non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            if len(non_null) < len(options):
                out["nullable"] = True
            if len(non_null) == 1:
                inner = _convert(non_null[0], defs, depth + 1)
                inner.update(out)
                if "description" in s:
                    inner.setdefault("description", s["description"])
                return inner
            out["anyOf"] = [_convert(o, defs, depth + 1) for o in non_null]
    all_of = s.get("allOf")
    if isinstance(all_of, list) and all_of:
        merged: dict[str, Any] = {}
        for part in all_of:
            if isinstance(part, dict):
                merged.update(part)
        merged.update({k: v for k, v in s.items() if k != "allOf"})
        return _convert(merged, defs, depth + 1)
    stype = s.get("type")
    if isinstance(stype, list):
        kinds = [t for t in stype if t != "null"]
        if len(kinds) < len(stype):
            out["nullable"] = True
        if len(kinds) == 1:
            stype = kinds[0]
        elif kinds:
            out["anyOf"] = [_convert({**s, "type": t}, defs, depth + 1) for t in kinds]
            stype = None
        else:
            stype = None
    if isinstance(stype, str) and stype != "null":
        out["type"] = stype.upper()
    for key in _KEEP:
        if key in s:
            out[key] = s[key]
    fmt = s.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        out["format"] = fmt
    enum = s.get("enum")
    if "const" in s:
        enum = [s["const"]]
    if isinstance(enum, list):
        values = [v for v in enum if v is not None]
        if len(values) < len(enum):
            out["nullable"] = True
        # Gemini enums are string lists: values of other types are sent as their JSON text.
        out["enum"] = [v if isinstance(v, str) else orjson.dumps(v).decode() for v in values]
        out["type"] = "STRING"
        out["format"] = "enum"
    props = s.get("properties")
    if isinstance(props, dict):
        out["properties"] = {k: _convert(v, defs, depth + 1) for k, v in props.items()}
        out.setdefault("type", "OBJECT")
        required = [r for r in s.get("required") or [] if r in props]
        if required:
            out["required"] = required
    items = s.get("items")
    if isinstance(items, dict):
        out["items"] = _convert(items, defs, depth + 1)
        out.setdefault("type", "ARRAY")
    return out

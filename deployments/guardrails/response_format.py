"""`response_format`: the answer parses as JSON and, with a JSON Schema, validates against it.

`required_schema` is either `{type: json_object}` (any JSON object), an OpenAI-style
`{type: json_schema, json_schema: {schema: ...}}`, or a JSON Schema itself (checked once at
start-up). Without `required_schema` the request's own `response_format` is used, and a request
that asked for none passes. With `action: retry` the stage calls the provider again with the
validation error appended as guidance (the reason below is that guidance).
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import field_validator

from .base import Check, CheckConfig, Finding, Subject

ANY_OBJECT: dict[str, Any] = {"type": "object"}


def schema_of(spec: Any) -> dict[str, Any] | None:
    """The JSON Schema a response_format-like object asks for; None: no JSON asked for."""
    if not isinstance(spec, dict):
        return None
    kind = spec.get("type")
    if kind == "json_object":
        return ANY_OBJECT
    if kind == "json_schema":
        inner = spec.get("json_schema")
        schema = inner.get("schema") if isinstance(inner, dict) else None
        return schema if isinstance(schema, dict) else ANY_OBJECT
    if kind == "text":
        return None
    return spec


class ResponseFormatConfig(CheckConfig):
    type: Literal["response_format"]
    required_schema: dict[str, Any] | None = None

    @field_validator("required_schema")
    @classmethod
    def _valid_schema(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        schema = schema_of(v)
        if schema is not None:
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return v


class ResponseFormatCheck(Check):
    type = "response_format"

    def __init__(self, cfg: ResponseFormatConfig) -> None:
        super().__init__(cfg)
        schema = schema_of(cfg.required_schema)
        self.validator = Draft202012Validator(schema) if schema is not None else None
        self._by_request: dict[bytes, Draft202012Validator] = {}

    def _validator(self, request: dict[str, Any] | None) -> Draft202012Validator | None:
        if self.validator is not None:
            return self.validator
        schema = schema_of((request or {}).get("response_format"))
        if schema is None:
            return None
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        validator = self._by_request.get(key)
        if validator is None:
            if len(self._by_request) > 256:
                self._by_request.clear()
            validator = self._by_request[key] = Draft202012Validator(schema)
        return validator

    def evaluate(self, subject: Subject) -> Finding:
        validator = self._validator(subject.get("request"))
        if validator is None:
            return Finding(True)
        for text in subject["texts"]:
            try:
                value = orjson.loads(text.strip())
            except orjson.JSONDecodeError as exc:
                return Finding(False, f"the reply is not valid JSON ({str(exc).split(':')[0]})")
            error = next(iter(validator.iter_errors(value)), None)
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path) or "the top level"
                return Finding(False, f"the reply does not match the schema at {where}: {error.validator} "
                                      f"{error.validator_value!r} failed")
        return Finding(True)


CONFIG, CHECK = ResponseFormatConfig, ResponseFormatCheck

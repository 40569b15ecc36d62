"""The mock's JSON-schema instances validate against their schemas (deployments/providers/mock_reply.py)."""

from __future__ import annotations

import jsonschema
import pytest

from deployments.providers.mock_reply import answer, example

SCHEMAS = [
    {},
    {"type": "string", "minLength": 10, "maxLength": 12},
    {"type": "string", "format": "email"},
    {"type": ["null", "integer"], "minimum": 3, "maximum": 3},
    {"type": "integer", "exclusiveMinimum": 5, "multipleOf": 4},
    {"type": "number", "maximum": 0.25},
    {"type": "number", "exclusiveMaximum": 0},
    {"type": "boolean"},
    {"const": "fixed"},
    {"enum": [3, "x"]},
    {"type": "array", "items": {"type": "integer"}, "minItems": 3, "uniqueItems": True},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}], "maxItems": 2},
    {"oneOf": [{"type": "null"},
               {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}]},
    {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
               {"properties": {"b": {"type": "string"}}, "required": ["b"]}]},
    {"type": "object", "properties": {"node": {"$ref": "#/$defs/node"}}, "required": ["node"],
     "$defs": {"node": {"type": "object", "additionalProperties": False, "required": ["value"],
                        "properties": {"value": {"type": "integer"},
                                       "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}}},
    {"type": "object", "required": ["undocumented"]},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=[str(i) for i in range(len(SCHEMAS))])
def test_example_validates(schema: dict) -> None:
    jsonschema.validate(example(schema), schema, format_checker=jsonschema.FormatChecker())


def test_answer_kinds() -> None:
    tools = [{"type": "function", "function": {"name": "a"}}, {"type": "function", "function": {"name": "b"}}]
    ask = {"messages": [{"role": "user", "content": "q"}], "tools": tools}
    assert answer(ask, "t").tool_name == "a"
    named = {"type": "function", "function": {"name": "b"}}
    assert answer({**ask, "tool_choice": named}, "t").tool_name == "b"
    assert answer({**ask, "tool_choice": "none"}, "t").text == "t"
    after = {**ask, "messages": [*ask["messages"], {"role": "assistant", "tool_calls": []},
                                 {"role": "tool", "tool_call_id": "c", "content": "42"}]}
    assert answer(after, "t").text == "t (tool results: 42)"
    assert answer({**after, "tool_choice": "required"}, "t").tool_name == "a"  # as the client demands
    assert answer({"response_format": {"type": "json_object"}}, "t").text == '{"reply":"t"}'

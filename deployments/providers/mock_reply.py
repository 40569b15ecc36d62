"""What the mock provider answers, so code written for OpenAI can be built against it offline.

- `tools` given (and `tool_choice` not "none"): a call of the tool `tool_choice` names, else of the
  first function tool, with arguments generated from its JSON schema, unless the last message is
  a tool result (`tool_choice: "auto"`, the default): then a text answer that quotes the results.
  That is the OpenAI agent loop: tool call -> tool result -> answer.
- `response_format: {"type": "json_object"}`: a JSON object (`{"reply": <text>}`);
  `{"type": "json_schema", "json_schema": {"schema": ...}}`: JSON generated from the schema.
- otherwise the text (the config's `reply`, or an echo of the last user message).

The schema example covers what tool and structured-output schemas use: objects (every property
filled), arrays (minItems), strings (enum, const, formats, length), numbers and integers (bounds,
multipleOf), booleans, null, anyOf / oneOf / allOf, type lists and local `$ref`s. `pattern` is not
honoured (no generator can satisfy every regex).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import orjson

MAX_DEPTH = 6  # deeper than this, objects fill only their required properties (recursive schemas)

_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "email": "mock@example.com",
    "uri": "https://example.com/mock",
    "url": "https://example.com/mock",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "hostname": "example.com",
}


@dataclass(slots=True)
class MockAnswer:
    text: str | None = None  # message content (plain text or JSON text)
    tool_name: str | None = None
    arguments: str | None = None  # the tool call's arguments (JSON text)
    is_json: bool = False

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_name is not None else "stop"

    def tool_call_id(self, body: dict[str, Any]) -> str:
        seed = f"{self.tool_name}:{self.arguments}:{len(body.get('messages') or [])}"
        return "call_" + hashlib.sha1(seed.encode()).hexdigest()[:24]

    def output_tokens(self) -> int:
        """Words of a text; about four characters a token for JSON and tool arguments."""
        if self.tool_name is None and not self.is_json:
            return max(1, len((self.text or "").split()))
        return max(1, len(self.arguments or self.text or "") // 4)


def answer(body: dict[str, Any], text: str) -> MockAnswer:
    """The mock's answer to a chat request; `text` is its plain reply."""
    tool = _tool_to_call(body)
    if tool is not None:
        fn = tool.get("function") or {}
        args = example(fn.get("parameters") or {"type": "object", "properties": {}})
        return MockAnswer(tool_name=fn.get("name") or "", arguments=orjson.dumps(args).decode())
    results = _tool_results(body)
    if results:
        text = f"{text} (tool results: {'; '.join(results)})"
    fmt = body.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_object":
        return MockAnswer(text=orjson.dumps({"reply": text}).decode(), is_json=True)
    if kind == "json_schema":
        spec = fmt.get("json_schema") if isinstance(fmt.get("json_schema"), dict) else {}
        schema = spec.get("schema") if isinstance(spec.get("schema"), dict) else {"type": "object"}
        return MockAnswer(text=orjson.dumps(example(schema)).decode(), is_json=True)
    return MockAnswer(text=text)


def _function_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []
    return [t for t in tools if isinstance(t, dict) and t.get("type", "function") == "function"
            and isinstance(t.get("function"), dict)]


def _tool_to_call(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = _function_tools(body)
    if not tools:
        return None
    choice = body.get("tool_choice", "auto")
    if choice == "none":
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        return next((t for t in tools if t["function"].get("name") == name), tools[0])
    if choice == "auto" and _last_role(body) == "tool":
        return None  # the results are in: answer
    return tools[0]


def _last_role(body: dict[str, Any]) -> str | None:
    messages = body.get("messages") or []
    last = messages[-1] if messages else None
    return last.get("role") if isinstance(last, dict) else None


def _tool_results(body: dict[str, Any]) -> list[str]:
    """The contents of the tool messages after the last assistant turn (the results just sent)."""
    out: list[str] = []
    for msg in reversed(body.get("messages") or []):
        if not isinstance(msg, dict) or msg.get("role") != "tool":
            break
        content = msg.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        out.append(str(content))
    return out[::-1]


# --- an instance of a JSON schema ------------------------------------------------------------------

def example(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """A value that validates against `schema` (see the module docstring for what is covered)."""
    if root is None:
        root = schema
    if schema is True or not isinstance(schema, dict):
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return example(_resolve(ref, root), root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            usable = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return example((usable or options)[0], root, depth + 1)
    if isinstance(schema.get("allOf"), list):
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = _resolve(part["$ref"], root) if isinstance(part, dict) and "$ref" in part else part
            if isinstance(part, dict):
                merged["properties"] = {**merged.get("properties", {}), **part.get("properties", {})}
                merged["required"] = [*merged.get("required", []), *part.get("required", [])]
                merged.update({k: v for k, v in part.items() if k not in ("properties", "required")})
        return example(merged, root, depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        return _object(schema, root, depth)
    if kind == "array":
        return _array(schema, root, depth)
    if kind == "string":
        return _string(schema)
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer")
    if kind == "boolean":
        return True
    return None


def _resolve(ref: str, root: Any) -> Any:
    node = root
    if not ref.startswith("#"):
        return {}
    for part in ref.lstrip("#").strip("/").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _object(schema: dict[str, Any], root: Any, depth: int) -> dict[str, Any]:
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    names = list(props) if depth < MAX_DEPTH else [n for n in props if n in required]
    out = {name: example(props[name], root, depth + 1) for name in names}
    for name in required:  # required but not described: any value
        out.setdefault(name, "mock")
    return out


def _array(schema: dict[str, Any], root: Any, depth: int) -> list[Any]:
    prefix = schema.get("prefixItems") if isinstance(schema.get("prefixItems"), list) else []
    out = [example(p, root, depth + 1) for p in prefix]
    low = schema.get("minItems") if isinstance(schema.get("minItems"), int) else 1
    high = schema.get("maxItems") if isinstance(schema.get("maxItems"), int) else max(low, 1)
    count = min(max(low, 1 if depth < MAX_DEPTH else low), high)
    items = schema.get("items")
    while len(out) < count:
        item = example(items, root, depth + 1) if isinstance(items, dict) else "mock"
        if schema.get("uniqueItems") and item in out:
            item = _distinct(item, len(out))
        out.append(item)
    return out


def _distinct(item: Any, n: int) -> Any:
    if isinstance(item, str):
        return f"{item}-{n}"
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        return item + n
    return item


def _string(schema: dict[str, Any]) -> str:
    fmt = schema.get("format")
    text = _FORMATS.get(fmt, "mock") if isinstance(fmt, str) else "mock"
    low = schema.get("minLength") if isinstance(schema.get("minLength"), int) else 0
    high = schema.get("maxLength") if isinstance(schema.get("maxLength"), int) else None
    if len(text) < low:
        text = text + "x" * (low - len(text))
    if high is not None and len(text) > high:
        text = text[:high]
    return text


def _number(schema: dict[str, Any], integer: bool) -> int | float:
    low, high = schema.get("minimum"), schema.get("maximum")
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    step = schema.get("multipleOf") if isinstance(schema.get("multipleOf"), (int, float)) else None
    value: float = 1
    if isinstance(low, (int, float)):
        value = max(value, low)
    if isinstance(ex_low, (int, float)) and value <= ex_low:
        value = ex_low + (1 if integer or step else 0.5)
    if isinstance(high, (int, float)) and value > high:
        value = high
    if isinstance(ex_high, (int, float)) and value >= ex_high:
        value = ex_high - (1 if integer else 0.5)
    if step:
        value = math.ceil(value / step) * step
        if isinstance(high, (int, float)) and value > high:
            value -= step
    if integer:
        return int(math.ceil(value)) if not step else int(value)
    return value


__all__ = ["MockAnswer", "answer", "example"]

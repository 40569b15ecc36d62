"""The OpenAI request protocol as the gateway checks it: plain dicts, a declared type per field.

No pydantic on the hot path: a request is an orjson-parsed dict, and only the fields present are
checked against a table (a dict lookup and an isinstance each). Unknown fields pass through, as
OpenAI-compatible servers accept extensions. Gateway extensions are popped before the request
goes upstream.
"""

from __future__ import annotations

from typing import Any

import orjson

from .errors import GatewayError, bad_request

_NUM = (int, float)
_STR_OR_LIST = (str, list)

# field -> (accepted types, human name[, (lowest, highest)]). Bounds are the OpenAI API reference's;
# bool is an int subclass: checked separately below.
CHAT_FIELDS: dict[str, tuple[Any, ...]] = {
    "model": ((str,), "a string"),
    "messages": ((list,), "an array of messages"),
    "stream": ((bool,), "a boolean"),
    "stream_options": ((dict,), "an object"),
    "temperature": (_NUM, "a number", (0, 2)),
    "top_p": (_NUM, "a number", (0, 1)),
    "n": ((int,), "an integer", (1, None)),
    "max_tokens": ((int,), "an integer", (1, None)),
    "max_completion_tokens": ((int,), "an integer", (1, None)),
    "stop": (_STR_OR_LIST, "a string or an array of strings"),
    "presence_penalty": (_NUM, "a number", (-2, 2)),
    "frequency_penalty": (_NUM, "a number", (-2, 2)),
    "logit_bias": ((dict,), "an object"),
    "logprobs": ((bool,), "a boolean"),
    "top_logprobs": ((int,), "an integer", (0, 20)),
    "user": ((str,), "a string"),
    "seed": ((int,), "an integer"),
    "tools": ((list,), "an array"),
    "tool_choice": ((str, dict), "a string or an object"),
    "parallel_tool_calls": ((bool,), "a boolean"),
    "response_format": ((dict,), "an object"),
    "store": ((bool,), "a boolean"),
    "metadata": ((dict,), "an object of strings"),
    "provider": ((str,), "a string"),
}

EMBEDDING_FIELDS: dict[str, tuple[Any, ...]] = {
    "model": ((str,), "a string"),
    "input": ((str, list), "a string or an array"),
    "encoding_format": ((str,), "a string"),
    "dimensions": ((int,), "an integer", (1, None)),
    "user": ((str,), "a string"),
    "metadata": ((dict,), "an object of strings"),
    "provider": ((str,), "a string"),
}

# Message roles the Chat Completions API accepts, in the order its own error message lists them.
ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_ROLE_SET = frozenset(ROLES)
_ROLE_LIST = ", ".join(f"'{r}'" for r in ROLES[:-1]) + f", and '{ROLES[-1]}'"

# Body fields that belong to the gateway and never go upstream (metadata: see `pop_metadata`).
EXTENSIONS = ("provider", "config", "cache", "guardrails")
_NOT_BOOL = frozenset(k for table in (CHAT_FIELDS, EMBEDDING_FIELDS) for k, spec in table.items()
                      if bool not in spec[0])


def parse_json_body(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise bad_request("request body is empty; expected a JSON object", code="invalid_json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object", code="invalid_json")
    return body


def _check_fields(body: dict[str, Any], table: dict[str, tuple[Any, ...]]) -> None:
    for key, value in body.items():
        spec = table.get(key)
        if spec is None or value is None:
            continue
        types = spec[0]
        if not isinstance(value, types) or (key in _NOT_BOOL and isinstance(value, bool)):
            raise bad_request(f"'{key}' must be {spec[1]}, got {_type_name(value)}", param=key,
                              code="invalid_type")
        if len(spec) > 2:
            _check_bounds(key, value, spec[2], "decimal" if types is _NUM else "integer")


def _check_bounds(key: str, value: float, bounds: tuple[float | None, float | None], kind: str) -> None:
    """OpenAI's wording and codes: `decimal_above_max_value`, `integer_below_min_value`, ..."""
    low, high = bounds
    if low is not None and value < low:
        raise bad_request(f"Invalid '{key}': {kind} below minimum value. Expected a value >= {low}, "
                          f"but got {value} instead.", param=key, code=f"{kind}_below_min_value")
    if high is not None and value > high:
        raise bad_request(f"Invalid '{key}': {kind} above maximum value. Expected a value <= {high}, "
                          f"but got {value} instead.", param=key, code=f"{kind}_above_max_value")


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def check_chat_request(body: dict[str, Any]) -> None:
    """Type and range checks for the fields present; structure checks for messages."""
    _check_fields(body, CHAT_FIELDS)
    messages = body.get("messages")
    if messages is None:
        raise bad_request("missing required parameter: 'messages'", param="messages",
                          code="missing_required_parameter")
    if not messages:
        raise bad_request("Invalid 'messages': empty array. Expected an array with minimum length 1, but got "
                          "an empty array instead.", param="messages", code="empty_array")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise bad_request(f"'messages[{i}]' must be an object", param=f"messages[{i}]",
                              code="invalid_type")
        role = msg.get("role")
        if role not in _ROLE_SET:
            _bad_role(i, role)
        if role == "tool":
            call_id = msg.get("tool_call_id")
            if not isinstance(call_id, str):
                if call_id is None:
                    raise bad_request(f"Missing required parameter: 'messages[{i}].tool_call_id'.",
                                      param=f"messages[{i}].tool_call_id", code="missing_required_parameter")
                raise bad_request(f"'messages[{i}].tool_call_id' must be a string, got {_type_name(call_id)}",
                                  param=f"messages[{i}].tool_call_id", code="invalid_type")
    stream_options = body.get("stream_options")
    if stream_options is not None and not body.get("stream"):
        raise bad_request("'stream_options' is only allowed when 'stream' is true", param="stream_options",
                          code="invalid_value")


def _bad_role(i: int, role: Any) -> None:
    where = f"messages[{i}].role"
    if role is None:
        raise bad_request(f"Missing required parameter: '{where}'.", param=where,
                          code="missing_required_parameter")
    if not isinstance(role, str):
        raise bad_request(f"'{where}' must be a string, got {_type_name(role)}", param=where,
                          code="invalid_type")
    raise bad_request(f"Invalid value: '{role[:64]}'. Supported values are: {_ROLE_LIST}.", param=where,
                      code="invalid_value")


def check_embeddings_request(body: dict[str, Any]) -> None:
    _check_fields(body, EMBEDDING_FIELDS)
    if "input" not in body:
        raise bad_request("missing required parameter: 'input'", param="input",
                          code="missing_required_parameter")


def pop_metadata(body: dict[str, Any], header_value: str | None) -> dict[str, str]:
    """The request's gateway metadata: the header's JSON object, overlaid by the body's."""
    meta: dict[str, str] = {}
    if header_value:
        try:
            parsed = orjson.loads(header_value)
        except orjson.JSONDecodeError:
            raise bad_request("header 'x-raygate-metadata' must be a JSON object",
                              param="x-raygate-metadata") from None
        if not isinstance(parsed, dict):
            raise bad_request("header 'x-raygate-metadata' must be a JSON object",
                              param="x-raygate-metadata")
        meta.update(_strings(parsed, "x-raygate-metadata"))
    body_meta = body.get("metadata")
    if isinstance(body_meta, dict):
        meta.update(_strings(body_meta, "metadata"))
    return meta


def _strings(obj: dict[str, Any], where: str) -> dict[str, str]:
    for k, v in obj.items():
        if not isinstance(v, str):
            raise bad_request(f"'{where}.{k}' must be a string, got {_type_name(v)}", param=f"{where}.{k}",
                              code="invalid_type")
    return obj


def require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise bad_request("missing required parameter: 'model'", param="model", code="missing_required_parameter")
    return model


def sse_data(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"

__all__ = [
    "CHAT_FIELDS",
    "EXTENSIONS",
    "GatewayError",
    "SSE_DONE",
    "check_chat_request",
    "check_embeddings_request",
    "parse_json_body",
    "pop_metadata",
    "require_model",
    "sse_data",
]

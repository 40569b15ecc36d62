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

# field -> (accepted types, human name). bool is an int subclass: checked separately below.
CHAT_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "model": ((str,), "a string"),
    "messages": ((list,), "an array of messages"),
    "stream": ((bool,), "a boolean"),
    "stream_options": ((dict,), "an object"),
    "temperature": (_NUM, "a number"),
    "top_p": (_NUM, "a number"),
    "n": ((int,), "an integer"),
    "max_tokens": ((int,), "an integer"),
    "max_completion_tokens": ((int,), "an integer"),
    "stop": (_STR_OR_LIST, "a string or an array of strings"),
    "presence_penalty": (_NUM, "a number"),
    "frequency_penalty": (_NUM, "a number"),
    "logit_bias": ((dict,), "an object"),
    "logprobs": ((bool,), "a boolean"),
    "top_logprobs": ((int,), "an integer"),
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

EMBEDDING_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "model": ((str,), "a string"),
    "input": ((str, list), "a string or an array"),
    "encoding_format": ((str,), "a string"),
    "dimensions": ((int,), "an integer"),
    "user": ((str,), "a string"),
    "metadata": ((dict,), "an object of strings"),
    "provider": ((str,), "a string"),
}

# Body fields that belong to the gateway and never go upstream (metadata: see `pop_metadata`).
EXTENSIONS = ("provider", "config", "cache", "guardrails")
# Gateway fields the gateway cannot honour yet: refused rather than silently dropped.
NOT_YET = {"guardrails": "guardrails are not supported yet; remove the 'guardrails' field"}
_NOT_BOOL = frozenset(k for k, (types, _) in CHAT_FIELDS.items() if bool not in types)


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


def _check_fields(body: dict[str, Any], table: dict[str, tuple[tuple[type, ...], str]]) -> None:
    for key, value in body.items():
        spec = table.get(key)
        if spec is None or value is None:
            continue
        types, name = spec
        if not isinstance(value, types) or (key in _NOT_BOOL and isinstance(value, bool)):
            raise bad_request(f"'{key}' must be {name}, got {_type_name(value)}", param=key,
                              code="invalid_type")


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def _refuse_not_yet(body: dict[str, Any]) -> None:
    for key, message in NOT_YET.items():
        if key in body:
            raise bad_request(message, param=key, code="unsupported_parameter")


def check_chat_request(body: dict[str, Any]) -> None:
    """Type checks for the fields present; structure checks for messages."""
    _check_fields(body, CHAT_FIELDS)
    _refuse_not_yet(body)
    messages = body.get("messages")
    if messages is None:
        raise bad_request("missing required parameter: 'messages'", param="messages",
                          code="missing_required_parameter")
    if not messages:
        raise bad_request("'messages' must contain at least one message", param="messages")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise bad_request(f"'messages[{i}]' must be an object", param=f"messages[{i}]",
                              code="invalid_type")
        role = msg.get("role")
        if not isinstance(role, str):
            raise bad_request(f"'messages[{i}].role' must be a string", param=f"messages[{i}].role",
                              code="invalid_type")
    n = body.get("n")
    if n is not None and n < 1:
        raise bad_request("'n' must be at least 1", param="n")
    stream_options = body.get("stream_options")
    if stream_options is not None and not body.get("stream"):
        raise bad_request("'stream_options' is only allowed when 'stream' is true", param="stream_options")


def check_embeddings_request(body: dict[str, Any]) -> None:
    _check_fields(body, EMBEDDING_FIELDS)
    _refuse_not_yet(body)
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

"""OpenAI chat request -> Anthropic Messages API request body (pure translation)."""

from __future__ import annotations

from typing import Any

import orjson

from serve_app.errors import bad_request

from .. import request_parts as common

# Reserved name of the tool that emulates `response_format: json_schema` (see `_json_schema`).
# The response side turns a call to it back into message content, so it never reaches the client.
JSON_TOOL = "raygate_json_output"

JSON_OBJECT_INSTRUCTION = (
    "Respond with a single valid JSON object and nothing else: no Markdown code fences and no text "
    "before or after the JSON."
)

_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_TYPE = "provider type 'anthropic'"


def chat_body(body: dict[str, Any], model: str, default_max_tokens: int, stream: bool) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat request (the gateway has removed its own fields)."""
    n = body.get("n")
    if n is not None and n != 1:
        raise bad_request(f"{_TYPE} does not support n > 1 (one choice per request)", param="n",
                          code="unsupported_parameter")
    system, messages = _messages(body.get("messages") or [])
    if not messages:
        raise bad_request(f"{_TYPE} needs at least one user or assistant message besides system messages",
                          param="messages")
    limit = common.max_tokens(body)
    out: dict[str, Any] = {
        "model": model,
        "max_tokens": limit if limit is not None else default_max_tokens,
        "messages": messages,
    }
    temperature = body.get("temperature")
    if temperature is not None:
        # Anthropic accepts 0..1 where OpenAI accepts 0..2: clamp rather than fail.
        out["temperature"] = min(max(float(temperature), 0.0), 1.0)
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    if isinstance(body.get("top_k"), int) and not isinstance(body["top_k"], bool):  # extension
        out["top_k"] = body["top_k"]
    seqs = common.stop_sequences(body.get("stop"))
    if seqs:
        out["stop_sequences"] = seqs
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    if isinstance(body.get("thinking"), dict):  # extension: Anthropic extended thinking, passed as is
        out["thinking"] = body["thinking"]
    elif body.get("reasoning_effort") in common.THINKING_BUDGET:
        budget = common.THINKING_BUDGET[body["reasoning_effort"]]
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if limit is None and out["max_tokens"] <= budget:  # the budget must fit inside max_tokens
            out["max_tokens"] = budget + default_max_tokens
    # seed, logprobs, logit_bias, frequency/presence penalties: no Messages API equivalent, dropped.

    tools = _tools(body.get("tools"))
    choice = _tool_choice(body.get("tool_choice"), tools) if tools else None
    if tools and body.get("parallel_tool_calls") is False:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True

    fmt = body.get("response_format")
    fmt_type = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt_type == "json_object":
        system.append({"type": "text", "text": JSON_OBJECT_INSTRUCTION})
    elif fmt_type == "json_schema":
        tools, choice = _json_schema(fmt, tools, choice, system, "thinking" in out)
    elif fmt_type not in (None, "text"):
        raise bad_request(f"{_TYPE} does not support response_format type {fmt_type!r}",
                          param="response_format.type", code="unsupported_parameter")

    if system:
        out["system"] = _system_value(system)
    if tools:
        out["tools"] = tools
        if choice:
            out["tool_choice"] = choice
    if stream:
        out["stream"] = True
    return out


# --- messages ------------------------------------------------------------------------------


def _messages(msgs: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system text blocks, alternating user/assistant turns with content block lists)."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, msg in enumerate(msgs):
        role = msg.get("role")
        where = f"messages[{i}]"
        if role in ("system", "developer"):
            system.extend(_text_blocks(msg.get("content"), where))
        elif role == "user":
            common.add_turn(turns, "user", _user_blocks(msg.get("content"), where))
        elif role == "assistant":
            common.add_turn(turns, "assistant", _assistant_blocks(msg, where))
        elif role == "tool":
            common.add_turn(turns, "user", [_tool_result(msg, where)])
        else:
            raise bad_request(f"{_TYPE} does not support message role {role!r}", param=f"{where}.role")
    return system, turns


def _text_block(text: str, part: dict[str, Any] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if part is not None and isinstance(part.get("cache_control"), dict):  # prompt caching extension
        block["cache_control"] = part["cache_control"]
    return block


def _text_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [_text_block(content)] if content else []
    if not isinstance(content, list):
        raise bad_request(f"'{where}.content' must be a string or an array", param=f"{where}.content")
    out = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
            raise bad_request(f"'{where}.content[{j}]' must be a text part here", param=f"{where}.content[{j}]")
        text = part.get("text") if part.get("type") == "text" else part.get("refusal")
        if text:
            out.append(_text_block(text, part))
    return out


def _user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return _text_blocks(content, where)
    if not isinstance(content, list):
        raise bad_request(f"'{where}.content' must be a string or an array", param=f"{where}.content")
    out = []
    for j, part in enumerate(content):
        pwhere = f"{where}.content[{j}]"
        ptype = part.get("type") if isinstance(part, dict) else None
        if ptype == "text":
            if part.get("text"):
                out.append(_text_block(part["text"], part))
        elif ptype == "image_url":
            out.append(_image_block(part, pwhere))
        elif ptype == "file":
            out.append(_document_block(part, pwhere))
        else:
            raise bad_request(f"{_TYPE} does not support content part type {ptype!r}", param=f"{pwhere}.type",
                              code="unsupported_content")
    return out


def _data_url(url: str, where: str) -> tuple[str, str]:
    header, sep, data = url.partition(",")
    if not sep or not header.endswith(";base64"):
        raise bad_request(f"'{where}' must be an http(s) URL or a base64 data URL", param=where)
    return header[5:-7], data


def _image_block(part: dict[str, Any], where: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise bad_request(f"'{where}.image_url.url' is required", param=f"{where}.image_url.url")
    if url.startswith("data:"):
        media_type, data = _data_url(url, f"{where}.image_url.url")
        if media_type not in _IMAGE_TYPES:
            raise bad_request(f"{_TYPE} accepts image/jpeg, image/png, image/gif and image/webp images, "
                              f"not {media_type!r}", param=f"{where}.image_url.url", code="unsupported_content")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise bad_request(f"'{where}.image_url.url' must be an http(s) URL or a base64 data URL",
                      param=f"{where}.image_url.url")


def _document_block(part: dict[str, Any], where: str) -> dict[str, Any]:
    file = part.get("file") if isinstance(part.get("file"), dict) else {}
    data_url = file.get("file_data")
    if not isinstance(data_url, str) or not data_url.startswith("data:"):
        raise bad_request(f"{_TYPE} accepts file parts only as a base64 PDF in 'file_data'",
                          param=f"{where}.file", code="unsupported_content")
    media_type, data = _data_url(data_url, f"{where}.file.file_data")
    if media_type != "application/pdf":
        raise bad_request(f"{_TYPE} accepts PDF documents only, not {media_type!r}",
                          param=f"{where}.file.file_data", code="unsupported_content")
    return {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _assistant_blocks(msg: dict[str, Any], where: str) -> list[dict[str, Any]]:
    # thinking blocks first, signatures intact: a tool-use turn with thinking enabled must start with them
    blocks = common.thinking_blocks(msg, where) + _text_blocks(msg.get("content"), where)
    for k, call in enumerate(msg.get("tool_calls") or []):
        cwhere = f"{where}.tool_calls[{k}]"
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not fn.get("name") or not call.get("id"):
            raise bad_request(f"'{cwhere}' needs an id and function.name", param=cwhere)
        blocks.append({"type": "tool_use", "id": call["id"], "name": fn["name"],
                       "input": _arguments(fn.get("arguments"), f"{cwhere}.function.arguments")})
    return blocks


def _arguments(raw: Any, where: str) -> dict[str, Any]:
    try:
        value = common.tool_arguments(raw)
    except ValueError:
        raise bad_request(f"'{where}' is not valid JSON; {_TYPE} needs tool arguments as a JSON object",
                          param=where) from None
    if not isinstance(value, dict):
        raise bad_request(f"'{where}' must encode a JSON object for {_TYPE}", param=where)
    return value


def _tool_result(msg: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = msg.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise bad_request(f"'{where}.tool_call_id' is required for tool messages", param=f"{where}.tool_call_id")
    content = msg.get("content")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    if isinstance(content, list):
        result["content"] = _text_blocks(content, where)
    elif content:
        result["content"] = str(content)
    return result


def _system_value(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A plain string unless a block carries cache_control (then the block list is kept)."""
    if any("cache_control" in b for b in blocks):
        return blocks
    return "\n\n".join(b["text"] for b in blocks)


# --- tools ---------------------------------------------------------------------------------


def _tools(tools: Any) -> list[dict[str, Any]]:
    out = []
    for tool, fn in common.function_tools(tools, _TYPE):
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        spec: dict[str, Any] = {"name": fn["name"]}
        if fn.get("description"):
            spec["description"] = fn["description"]
        spec["input_schema"] = params
        if isinstance(tool.get("cache_control"), dict):
            spec["cache_control"] = tool["cache_control"]
        out.append(spec)
    return out


def _tool_choice(choice: Any, tools: list[dict[str, Any]]) -> dict[str, Any] | None:
    if choice is None or choice == "auto":
        return None if choice is None else {"type": "auto"}
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict):
        if choice.get("type") == "function":
            name = (choice.get("function") or {}).get("name")
            if not name:
                raise bad_request("'tool_choice.function.name' is required", param="tool_choice.function.name")
            return {"type": "tool", "name": name}
        if choice.get("type") == "allowed_tools":
            names, required = common.allowed_tools(choice)
            tools[:] = [t for t in tools if t["name"] in names]
            return {"type": "any" if required else "auto"}
    raise common.unsupported_tool_choice(_TYPE, choice)


def _json_schema(fmt: dict[str, Any], tools: list[dict[str, Any]], choice: dict[str, Any] | None,
                 system: list[dict[str, Any]], thinking: bool) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Emulate `json_schema`: a forced tool whose input schema is the schema, when that is possible.

    With no client tools (and no extended thinking, which forced tool use excludes) the model must
    call the reserved tool, so the answer is schema-shaped JSON; the response side turns the call
    into message content with finish_reason "stop". Otherwise the schema goes into the system
    prompt as an instruction (best effort), so the client's own tools stay usable.
    """
    spec = fmt.get("json_schema") if isinstance(fmt.get("json_schema"), dict) else {}
    schema = spec.get("schema") if isinstance(spec.get("schema"), dict) else {"type": "object"}
    name = spec.get("name") or "response"
    if not tools and not thinking and schema.get("type", "object") == "object":
        desc = f"Return the final answer as JSON matching the input schema ({name})."
        if spec.get("description"):
            desc += " " + str(spec["description"])
        return [{"name": JSON_TOOL, "description": desc, "input_schema": schema}], {"type": "tool", "name": JSON_TOOL}
    system.append({"type": "text", "text": JSON_OBJECT_INSTRUCTION + " The JSON must match this JSON Schema "
                   f"({name}): " + orjson.dumps(schema).decode()})
    return tools, choice

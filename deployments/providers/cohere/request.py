"""OpenAI chat and embeddings requests -> Cohere v2 Chat / Embed request bodies (pure translation)."""

from __future__ import annotations

from typing import Any

from serve_app.errors import bad_request

from .. import request_parts as common

_TYPE = "provider type 'cohere'"


def chat_body(body: dict[str, Any], model: str, stream: bool, safety_mode: str | None = None) -> dict[str, Any]:
    n = body.get("n")
    if n is not None and n != 1:
        raise bad_request(f"{_TYPE} does not support n > 1 (one generation per request)", param="n",
                          code="unsupported_parameter")
    out: dict[str, Any] = {
        "model": model,
        "messages": [_message(m, f"messages[{i}]") for i, m in enumerate(body.get("messages") or [])],
        "stream": stream,
    }
    limit = common.max_tokens(body)
    if limit is not None:
        out["max_tokens"] = limit
    if body.get("temperature") is not None:
        out["temperature"] = body["temperature"]
    if body.get("top_p") is not None:  # Cohere's p: 0.01..0.99
        out["p"] = min(max(float(body["top_p"]), 0.01), 0.99)
    if isinstance(body.get("top_k"), int) and not isinstance(body["top_k"], bool):  # extension
        out["k"] = body["top_k"]
    seqs = common.stop_sequences(body.get("stop"))
    if seqs:
        out["stop_sequences"] = seqs
    if body.get("seed") is not None:
        out["seed"] = body["seed"]
    for key in ("frequency_penalty", "presence_penalty"):  # Cohere: 0..1 (OpenAI: -2..2)
        if body.get(key) is not None:
            out[key] = min(max(float(body[key]), 0.0), 1.0)
    if safety_mode:
        out["safety_mode"] = safety_mode
    # user, logit_bias, logprobs (Cohere's shape differs) and parallel_tool_calls: no mapping.

    tools, strict = _tools(body.get("tools"))
    choice = body.get("tool_choice")
    if tools:
        tools, cohere_choice = _tool_choice(choice, tools)
        out["tools"] = tools
        if cohere_choice:
            out["tool_choice"] = cohere_choice
        if strict:
            out["strict_tools"] = True

    fmt = body.get("response_format")
    fmt_type = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt_type == "json_object":
        out["response_format"] = {"type": "json_object"}
    elif fmt_type == "json_schema":
        spec = fmt.get("json_schema") if isinstance(fmt.get("json_schema"), dict) else {}
        rf: dict[str, Any] = {"type": "json_object"}
        if isinstance(spec.get("schema"), dict):
            rf["json_schema"] = spec["schema"]
        out["response_format"] = rf
    elif fmt_type not in (None, "text"):
        raise bad_request(f"{_TYPE} does not support response_format type {fmt_type!r}",
                          param="response_format.type", code="unsupported_parameter")
    return out


def _text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad_request(f"'{where}.content' must be a string or an array", param=f"{where}.content")
    texts = []
    for j, part in enumerate(content):
        ptype = part.get("type") if isinstance(part, dict) else None
        if ptype == "text":
            texts.append(part.get("text") or "")
        elif ptype == "refusal":
            texts.append(part.get("refusal") or "")
        else:
            raise bad_request(f"'{where}.content[{j}]' must be a text part here", param=f"{where}.content[{j}]")
    return "".join(texts)


def _message(msg: dict[str, Any], where: str) -> dict[str, Any]:
    role = msg.get("role")
    if role in ("system", "developer"):
        return {"role": "system", "content": _text(msg.get("content"), where)}
    if role == "user":
        return {"role": "user", "content": _user_content(msg.get("content"), where)}
    if role == "assistant":
        text = _text(msg.get("content"), where)
        calls = msg.get("tool_calls")
        if calls:
            out: dict[str, Any] = {"role": "assistant", "tool_calls": [_tool_call(c, f"{where}.tool_calls[{k}]")
                                                                      for k, c in enumerate(calls)]}
            if text:
                out["tool_plan"] = text  # Cohere keeps the text before tool calls as the tool plan
            return out
        return {"role": "assistant", "content": text}
    if role == "tool":
        call_id = msg.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise bad_request(f"'{where}.tool_call_id' is required for tool messages", param=f"{where}.tool_call_id")
        return {"role": "tool", "tool_call_id": call_id, "content": _text(msg.get("content"), where)}
    raise bad_request(f"{_TYPE} does not support message role {role!r}", param=f"{where}.role")


def _user_content(content: Any, where: str) -> Any:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise bad_request(f"'{where}.content' must be a string or an array", param=f"{where}.content")
    items = []
    for j, part in enumerate(content):
        ptype = part.get("type") if isinstance(part, dict) else None
        pwhere = f"{where}.content[{j}]"
        if ptype == "text":
            items.append({"type": "text", "text": part.get("text") or ""})
        elif ptype == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url.startswith(("https://", "http://", "data:")):
                raise bad_request(f"'{pwhere}.image_url.url' must be an http(s) URL or a base64 data URL",
                                  param=f"{pwhere}.image_url.url")
            item: dict[str, Any] = {"url": url}
            if isinstance(image, dict) and image.get("detail"):
                item["detail"] = image["detail"]
            items.append({"type": "image_url", "image_url": item})
        else:
            raise bad_request(f"{_TYPE} does not support content part type {ptype!r}", param=f"{pwhere}.type",
                              code="unsupported_content")
    return items


def _tool_call(call: Any, where: str) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not fn.get("name") or not call.get("id"):
        raise bad_request(f"'{where}' needs an id and function.name", param=where)
    args = fn.get("arguments")
    return {"id": call["id"], "type": "function",
            "function": {"name": fn["name"], "arguments": args if isinstance(args, str) and args else "{}"}}


def _tools(tools: Any) -> tuple[list[dict[str, Any]], bool]:
    out, strict = [], False
    for _, fn in common.function_tools(tools, _TYPE):
        spec: dict[str, Any] = {"name": fn["name"]}
        if fn.get("description"):
            spec["description"] = fn["description"]
        spec["parameters"] = fn.get("parameters") or {"type": "object", "properties": {}}
        strict = strict or fn.get("strict") is True
        out.append({"type": "function", "function": spec})
    return out, strict


def _tool_choice(choice: Any, tools: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """Cohere has REQUIRED and NONE (absent = auto); a named tool becomes REQUIRED over that tool only."""
    if choice is None or choice == "auto":
        return tools, None
    if choice == "required":
        return tools, "REQUIRED"
    if choice == "none":
        return tools, "NONE"
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        chosen = [t for t in tools if t["function"]["name"] == name]
        if not chosen:
            raise bad_request(f"tool_choice names {name!r}, which is not in 'tools'", param="tool_choice")
        return chosen, "REQUIRED"
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        names, required = common.allowed_tools(choice)
        chosen = [t for t in tools if t["function"]["name"] in names]
        return chosen, "REQUIRED" if required else None
    raise common.unsupported_tool_choice(_TYPE, choice)


# --- embeddings ------------------------------------------------------------------------------


def embed_body(body: dict[str, Any], model: str, input_type: str, truncate: str | None) -> dict[str, Any]:
    inputs = body.get("input")
    if isinstance(inputs, str):
        texts = [inputs]
    elif isinstance(inputs, list) and all(isinstance(t, str) for t in inputs):
        texts = inputs
    else:
        raise bad_request(f"{_TYPE} embeds text only: 'input' must be a string or an array of strings "
                          "(token arrays are not supported)", param="input", code="unsupported_parameter")
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise bad_request("'encoding_format' must be 'float' or 'base64'", param="encoding_format")
    # For base64 the gateway encodes the float vectors itself (OpenAI's little-endian float32);
    # asking Cohere for its "base64" type too marks the request so the response side knows.
    out: dict[str, Any] = {
        "model": model,
        "texts": texts,
        "input_type": body.get("input_type") or input_type,  # `input_type`: extension field
        "embedding_types": ["float"] if fmt == "float" else ["float", "base64"],
    }
    if body.get("dimensions") is not None:
        out["output_dimension"] = body["dimensions"]
    if truncate:
        out["truncate"] = truncate
    return out

"""OpenAI chat/embeddings request -> Bedrock Converse / InvokeModel bodies.

Mapping (OpenAI -> Converse):
- `system`/`developer` messages -> `system[{text}]`.
- `user` -> `{role: user, content}`: text blocks, `image_url` data URLs -> `image{format, source.bytes}`
  (png/jpeg/gif/webp), `s3://` URLs -> `image.source.s3Location`, `file` data URLs -> `document`
  blocks. An http(s) image URL is a 400: Converse takes bytes and the gateway does not fetch URLs.
- `assistant` -> `{role: assistant}` with a text block and one `toolUse{toolUseId, name, input}`
  per tool call; `tool` (and legacy `function`) -> a user-side `toolResult{toolUseId, content:
  [{text}]}`. Consecutive turns of one role are merged: Converse requires user/assistant to
  alternate, and N parallel tool results must answer in one user turn. Tool call ids are kept
  when they fit `[a-zA-Z0-9_.:-]{1,64}`, otherwise rewritten the same way on both sides.
- `tools` -> `toolConfig.tools[{toolSpec{name, description, inputSchema.json, strict}}]`;
  `tool_choice` required -> `{any: {}}`, named -> `{tool: {name}}`, auto -> the default (no
  `toolChoice`: several models reject an explicit one); `none` -> no `toolConfig` at all, unless
  the history holds tool blocks (Converse then requires it): the tools stay, without a choice.
- `response_format` json_schema -> `outputConfig.textFormat` (structured outputs; models that
  lack it answer 400); json_object has no Converse counterpart and becomes a system instruction.
- `max_tokens`/`max_completion_tokens`, `temperature`, `top_p`, `stop` -> `inferenceConfig`;
  `user` -> `requestMetadata.user` (when it fits the allowed pattern). The extension `thinking`
  (Claude's extended thinking) -> `additionalModelRequestFields.thinking`; an assistant message's
  `thinking_blocks` -> `reasoningContent` blocks first in its turn (reasoningText with signature,
  or redactedContent), so a tool-use turn with reasoning round-trips. `n > 1` and `logprobs` are
  a 400; `seed`, `presence_penalty`, `frequency_penalty`, `parallel_tool_calls` have no Converse
  field and are dropped.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from .. import request_parts as common

_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif",
                  "image/webp": "webp"}
_DOC_FORMATS = {"application/pdf": "pdf", "text/csv": "csv", "application/msword": "doc",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
                "application/vnd.ms-excel": "xls",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
                "text/html": "html", "text/plain": "txt", "text/markdown": "md"}
_TOOL_ID = re.compile(r"[a-zA-Z0-9_.:-]{1,64}")
_META_VALUE = re.compile(r"[a-zA-Z0-9\s:_@$#=/+,\-.]{0,256}")
JSON_OBJECT_INSTRUCTION = ("Respond with a single valid JSON object and nothing else: no prose, "
                           "no markdown code fences.")


_bad = common.invalid  # a 400 about one field, code invalid_value unless said otherwise


def tool_use_id(raw: Any) -> str:
    """An OpenAI tool call id as a Converse toolUseId (same input, same output)."""
    text = str(raw or "")
    if _TOOL_ID.fullmatch(text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return (re.sub(r"[^a-zA-Z0-9_.:-]", "_", text)[:40] + "-" + digest).lstrip("-") or digest


def _data_url(url: str, param: str) -> tuple[str, str]:
    parsed = common.base64_data_url(url)
    if parsed is None:
        raise _bad(f"'{param}' must be base64 encoded (data:<mime>;base64,<data>)", param)
    mime, data = parsed
    return mime.lower(), data


def _image_block(url: Any, param: str) -> dict[str, Any]:
    if not isinstance(url, str) or not url:
        raise _bad(f"'{param}' must be a non-empty URL string", param)
    if url.startswith("data:"):
        mime, data = _data_url(url, param)
        fmt = _IMAGE_FORMATS.get(mime)
        if fmt is None:
            raise _bad(f"'{param}': image type {mime!r} is not supported (png, jpeg, gif, webp)", param)
        return {"image": {"format": fmt, "source": {"bytes": data}}}
    if url.startswith("s3://"):
        ext = url.rsplit(".", 1)[-1].lower()
        fmt = {"jpg": "jpeg"}.get(ext, ext)
        if fmt not in ("png", "jpeg", "gif", "webp"):
            raise _bad(f"'{param}': cannot tell the image format of {url!r} from its extension", param)
        return {"image": {"format": fmt, "source": {"s3Location": {"uri": url}}}}
    raise _bad(f"'{param}': provider type bedrock needs the image bytes; send it as a base64 data URL "
               "(data:image/png;base64,...) or an s3:// URI (the gateway does not fetch URLs)", param,
               code="unsupported_image_url")


def _document_block(file: Any, param: str, n: int) -> dict[str, Any]:
    data_url = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data_url, str) or not data_url.startswith("data:"):
        raise _bad(f"'{param}' must carry file_data as a base64 data URL for provider type bedrock", param)
    mime, data = _data_url(data_url, param)
    fmt = _DOC_FORMATS.get(mime)
    if fmt is None:
        raise _bad(f"'{param}': document type {mime!r} is not supported", param)
    stem = str(file.get("filename") or f"document {n + 1}").rsplit(".", 1)[0]
    name = re.sub(r"[^a-zA-Z0-9\s\-()\[\]]", " ", stem).strip()[:200] or f"document {n + 1}"
    return {"document": {"format": fmt, "name": name, "source": {"bytes": data}}}


def _user_blocks(content: Any, param: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise _bad(f"'{param}' must be a string or an array of content parts", param)
    blocks: list[dict[str, Any]] = []
    docs = 0
    for j, part in enumerate(content):
        p = f"{param}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                blocks.append({"text": str(part["text"])})
        elif kind == "image_url":
            image = part.get("image_url")
            blocks.append(_image_block(image.get("url") if isinstance(image, dict) else image, f"{p}.image_url.url"))
        elif kind == "file":
            blocks.append(_document_block(part.get("file"), f"{p}.file", docs))
            docs += 1
        else:
            raise _bad(f"'{p}' has a content part type {kind!r} that provider type bedrock does not support", p)
    return blocks


def _arguments(raw: Any, param: str) -> Any:
    try:
        return common.tool_arguments(raw)
    except ValueError:
        raise _bad(f"'{param}' must be a JSON string", param) from None


def converse_messages(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
    """(messages, system blocks, whether the history holds tool blocks)."""
    out: list[dict[str, Any]] = []
    system: list[dict[str, Any]] = []
    has_tools = False

    for i, msg in enumerate(messages):
        param = f"messages[{i}]"
        role = msg.get("role")
        if role in ("system", "developer"):
            text = common.text_of(msg.get("content"), f"{param}.content")
            if text:
                system.append({"text": text})
        elif role == "user":
            blocks = _user_blocks(msg.get("content"), f"{param}.content")
            if not blocks:
                raise _bad(f"'{param}.content' must not be empty", f"{param}.content")
            common.add_turn(out, "user", blocks)
        elif role == "assistant":
            blocks = [_reasoning_content(b) for b in common.thinking_blocks(msg, param)]  # first, signed
            text = common.text_of(msg.get("content"), f"{param}.content")
            if text:
                blocks.append({"text": text})
            calls = list(msg.get("tool_calls") or [])
            if isinstance(msg.get("function_call"), dict):
                calls.append({"id": f"function-{msg['function_call'].get('name')}", "function": msg["function_call"]})
            for k, call in enumerate(calls):
                fn = call.get("function") if isinstance(call, dict) else None
                if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                    raise _bad(f"'{param}.tool_calls[{k}].function.name' is required", f"{param}.tool_calls[{k}]")
                blocks.append({"toolUse": {"toolUseId": tool_use_id(call.get("id")), "name": fn["name"],
                                           "input": _arguments(fn.get("arguments"),
                                                               f"{param}.tool_calls[{k}].function.arguments")}})
                has_tools = True
            common.add_turn(out, "assistant", blocks)
        elif role in ("tool", "function"):
            raw_id = msg.get("tool_call_id") if role == "tool" else f"function-{msg.get('name')}"
            if not raw_id:
                raise _bad(f"'{param}.tool_call_id' is required", f"{param}.tool_call_id")
            text = common.text_of(msg.get("content"), f"{param}.content")
            result = {"toolUseId": tool_use_id(raw_id), "content": [{"text": text}]}
            common.add_turn(out, "user", [{"toolResult": result}])
            has_tools = True
        else:
            raise _bad(f"'{param}.role' {role!r} is not supported", f"{param}.role")
    if not out:
        raise _bad("'messages' must contain at least one user or assistant message", "messages")
    return out, system, has_tools


def _reasoning_content(block: dict[str, Any]) -> dict[str, Any]:
    if block["type"] == "redacted_thinking":
        return {"reasoningContent": {"redactedContent": block["data"]}}
    text = {"text": block["thinking"], "signature": block["signature"]}
    return {"reasoningContent": {"reasoningText": text}}


def _tool_spec(tool: Any, i: int) -> dict[str, Any]:
    fn = common.declared_function(tool, i)
    schema = fn.get("parameters") if isinstance(fn.get("parameters"), dict) else {"type": "object", "properties": {}}
    spec: dict[str, Any] = {"name": fn["name"], "inputSchema": {"json": schema}}
    if fn.get("description"):
        spec["description"] = fn["description"]
    if fn.get("strict") is True:
        spec["strict"] = True
    return {"toolSpec": spec}


def _tool_config(body: dict[str, Any], history_has_tools: bool) -> dict[str, Any] | None:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not tools:
        common.require_tools_for(choice)
        return None
    config: dict[str, Any] = {"tools": [_tool_spec(t, i) for i, t in enumerate(tools)]}
    if choice in (None, "auto"):
        return config
    if choice == "none":
        return config if history_has_tools else None
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif (name := common.named_function(choice)) is not None:
        config["toolChoice"] = {"tool": {"name": name}}
    else:
        raise common.invalid_tool_choice()
    return config


def converse_body(body: dict[str, Any], default_max_tokens: int | None) -> dict[str, Any]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _bad("'messages' must be an array", "messages")
    n = body.get("n")
    if n is not None and n != 1:
        raise _bad("'n' must be 1 for provider type bedrock (Converse returns one choice)", "n")
    if body.get("logprobs"):
        raise _bad("'logprobs' is not supported by provider type bedrock", "logprobs")
    msgs, system, history_tools = converse_messages(messages)
    out: dict[str, Any] = {"messages": msgs}
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        kind = fmt.get("type")
        if kind == "json_object":
            system.append({"text": JSON_OBJECT_INSTRUCTION})
        elif kind == "json_schema":
            spec = fmt.get("json_schema") or {}
            if not isinstance(spec.get("schema"), dict):
                raise _bad("'response_format.json_schema.schema' must be an object",
                           "response_format.json_schema.schema")
            schema: dict[str, Any] = {"schema": orjson.dumps(spec["schema"]).decode()}
            if spec.get("name"):
                schema["name"] = spec["name"]
            if spec.get("description"):
                schema["description"] = spec["description"]
            out["outputConfig"] = {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": schema}}}
        elif kind not in (None, "text"):
            raise _bad(f"'response_format.type' {kind!r} is not supported", "response_format.type")
    if system:
        out["system"] = system
    inference: dict[str, Any] = {}
    limit = common.max_tokens(body)
    if limit is None:
        limit = default_max_tokens
    if limit is not None:
        inference["maxTokens"] = limit
    if body.get("temperature") is not None:
        inference["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        inference["topP"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        inference["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if inference:
        out["inferenceConfig"] = inference
    tool_config = _tool_config(body, history_tools)
    if tool_config:
        out["toolConfig"] = tool_config
    if isinstance(body.get("thinking"), dict):  # extension: Claude's extended thinking on Bedrock
        out["additionalModelRequestFields"] = {"thinking": body["thinking"]}
    user = body.get("user")
    if isinstance(user, str) and user and _META_VALUE.fullmatch(user):
        out["requestMetadata"] = {"user": user}
    return out


# --- embeddings (InvokeModel) -------------------------------------------------------------------

def embedding_family(model: str) -> str | None:
    m = model.lower()
    if "titan-embed" in m:
        return "titan"
    if "cohere.embed" in m:
        return "cohere"
    return None


def embeddings_body(body: dict[str, Any], model: str, input_type: str) -> dict[str, Any]:
    family = embedding_family(model)
    if family is None:
        raise _bad(f"model {model!r}: provider type bedrock serves embeddings for Amazon Titan "
                   "(amazon.titan-embed-*) and Cohere (cohere.embed-*) models", "model", code="unsupported_model")
    fmt = body.get("encoding_format")
    if fmt not in (None, "float", "base64"):
        raise _bad("'encoding_format' must be 'float' or 'base64'", "encoding_format")
    inputs = body.get("input")
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise _bad("'input' must be a string or a non-empty array of strings (token ids are not supported "
                   "by provider type bedrock)", "input")
    dims = body.get("dimensions")
    if family == "titan":
        if len(texts) != 1:
            raise _bad("Amazon Titan embeddings take one input per request; send a single string", "input")
        out: dict[str, Any] = {"inputText": texts[0]}
        if dims is not None:
            out["dimensions"] = dims
        return out
    out = {"texts": texts, "input_type": input_type}
    if dims is not None:
        out["output_dimension"] = dims
    return out

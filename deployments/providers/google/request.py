"""OpenAI chat/embeddings request -> Gemini `generateContent` / `embedContent` bodies.

Mapping (OpenAI -> Gemini API v1beta):
- `system`/`developer` messages -> `systemInstruction.parts` (one text part each, in order).
- `user` -> `contents[{role: user}]`; text parts, `image_url` (data URL -> `inlineData`; http(s)/gs
  URL -> `fileData.fileUri`, Gemini fetches it), `input_audio` -> `inlineData`, `file` with a data
  URL -> `inlineData`.
- `assistant` -> `{role: model}`: text part, then one `functionCall` part per tool call. Gemini 3
  rejects a function call turn without its `thoughtSignature`: the signature travels to the client
  as `tool_calls[].extra_content.google.thought_signature` (the field Google's own OpenAI-compatible
  endpoint uses) and comes back from there; history without one (another provider's turns, clients
  that drop unknown fields) gets Google's documented placeholder on the first call of the turn.
- `tool` (and legacy `function`) -> a user-side `functionResponse` part named after the call it
  answers (looked up by `tool_call_id` in the earlier assistant turns). Consecutive turns of one
  role are merged, so N parallel results answer N parallel calls in one turn.
- `tools` -> `tools[{functionDeclarations}]` with each JSON Schema reduced to Gemini's OpenAPI
  subset (see `gemini_schema`); `tool_choice` auto/none/required/named -> `toolConfig.
  functionCallingConfig` AUTO/NONE/ANY/ANY+allowedFunctionNames.
- `response_format` json_object -> `responseMimeType: application/json`; json_schema -> also
  `responseSchema`. `temperature`, `top_p`, `max_tokens`/`max_completion_tokens`, `stop`, `seed`,
  `n` (candidateCount), `presence_penalty`, `frequency_penalty` -> `generationConfig`.
  `reasoning_effort` -> `thinkingConfig.thinkingBudget` with `includeThoughts` (the thoughts come
  back as `reasoning_content`); the extension `thinking_config` is merged into `thinkingConfig`
  as given (`include_thoughts` / `includeThoughts`, `thinking_budget`, ...). `user`,
  `parallel_tool_calls`, `store`, `logit_bias` have no Gemini counterpart and are dropped;
  `logprobs: true` is a 400.
"""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson

from .. import request_parts as common
from .schema import gemini_schema

# Google's documented stand-in signature for function calls the model did not produce itself.
PLACEHOLDER_SIGNATURE = "skip_thought_signature_validator"
_THINKING_BUDGET = {"none": 0, "minimal": 0, "low": 1024, "medium": 8192, "high": 24576}
_THINKING_KEYS = {"include_thoughts": "includeThoughts", "thinking_budget": "thinkingBudget",
                  "thinking_level": "thinkingLevel"}
_MAX_STOP = 5  # Gemini accepts at most 5 stop sequences


_bad = common.invalid  # a 400 about one field, code invalid_value


# --- messages ---------------------------------------------------------------------------------

def parse_data_url(url: str, param: str) -> tuple[str, str]:
    """(mime type, base64 data) of a `data:<mime>;base64,<data>` URL."""
    parsed = common.base64_data_url(url)
    if parsed is None:
        raise _bad("image data URLs must be base64 encoded (data:<mime>;base64,<data>)", param)
    mime, data = parsed
    return mime or "application/octet-stream", data


def _media_part(url: Any, param: str) -> dict[str, Any]:
    if not isinstance(url, str) or not url:
        raise _bad(f"'{param}' must be a non-empty URL string", param)
    if url.startswith("data:"):
        mime, data = parse_data_url(url, param)
        return {"inlineData": {"mimeType": mime, "data": data}}
    if url.startswith(("https://", "http://", "gs://")):
        file_data: dict[str, Any] = {"fileUri": url}
        mime = mimetypes.guess_type(url.split("?", 1)[0])[0]
        if mime:
            file_data["mimeType"] = mime
        return {"fileData": file_data}
    raise _bad(f"'{param}' must be an http(s) URL or a base64 data URL", param)


def _user_parts(content: Any, param: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise _bad(f"'{param}' must be a string or an array of content parts", param)
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        p = f"{param}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"text": str(part.get("text") or "")})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            parts.append(_media_part(url, f"{p}.image_url.url"))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            fmt = str(audio.get("format") or "wav")
            parts.append({"inlineData": {"mimeType": f"audio/{'mpeg' if fmt == 'mp3' else fmt}",
                                         "data": audio.get("data") or ""}})
        elif kind == "file":
            file = part.get("file") or {}
            data = file.get("file_data")
            if not isinstance(data, str) or not data.startswith("data:"):
                raise _bad(f"'{p}.file' must carry file_data as a base64 data URL for provider type google",
                           f"{p}.file")
            parts.append(_media_part(data, f"{p}.file.file_data"))
        else:
            raise _bad(f"'{p}' has an unsupported content part type {kind!r}", p)
    return parts


def _arguments(raw: Any, param: str) -> dict[str, Any]:
    try:
        args = common.tool_arguments(raw)
    except ValueError:
        raise _bad(f"'{param}' must be a JSON object string", param) from None
    if not isinstance(args, dict):
        raise _bad(f"'{param}' must encode a JSON object", param)
    return args


def _signature(call: dict[str, Any]) -> str | None:
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    sig = google.get("thought_signature") if isinstance(google, dict) else None
    return sig if isinstance(sig, str) and sig else None


def _assistant_parts(msg: dict[str, Any], param: str, names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    text = common.text_of(msg.get("content"), f"{param}.content")
    if text:
        parts.append({"text": text})
    calls = msg.get("tool_calls") or []
    if not isinstance(calls, list):
        raise _bad(f"'{param}.tool_calls' must be an array", f"{param}.tool_calls")
    legacy = msg.get("function_call")
    if isinstance(legacy, dict):
        calls = [*calls, {"id": None, "function": legacy}]
    for k, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise _bad(f"'{param}.tool_calls[{k}].function.name' is required", f"{param}.tool_calls[{k}]")
        args = _arguments(fn.get("arguments"), f"{param}.tool_calls[{k}].function.arguments")
        part: dict[str, Any] = {"functionCall": {"name": fn["name"], "args": args}}
        sig = _signature(call)
        if sig or k == 0:
            part["thoughtSignature"] = sig or PLACEHOLDER_SIGNATURE
        parts.append(part)
        if call.get("id"):
            names[str(call["id"])] = fn["name"]
    return parts


def _tool_response(content: Any, param: str) -> dict[str, Any]:
    text = common.text_of(content, param)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = text
    # functionResponse.response must be an object: objects go as they are, anything else wrapped.
    return value if isinstance(value, dict) else {"result": value}


def contents_and_system(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    contents: list[dict[str, Any]] = []
    system: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool_call_id -> function name

    for i, msg in enumerate(messages):
        param = f"messages[{i}]"
        role = msg.get("role")
        if role in ("system", "developer"):
            text = common.text_of(msg.get("content"), f"{param}.content")
            if text:
                system.append({"text": text})
        elif role == "user":
            if msg.get("content") is None:
                raise _bad(f"'{param}.content' is required for user messages", f"{param}.content")
            common.add_turn(contents, "user", _user_parts(msg["content"], f"{param}.content"), key="parts")
        elif role == "assistant":
            common.add_turn(contents, "model", _assistant_parts(msg, param, names), key="parts")
        elif role in ("tool", "function"):
            name = names.get(str(msg.get("tool_call_id"))) if role == "tool" else None
            name = name or msg.get("name")
            if not isinstance(name, str) or not name:
                raise _bad(f"'{param}.tool_call_id' does not match a tool call of an earlier assistant message",
                           f"{param}.tool_call_id")
            response = _tool_response(msg.get("content"), f"{param}.content")
            common.add_turn(contents, "user", [{"functionResponse": {"name": name, "response": response}}], key="parts")
        else:
            raise _bad(f"'{param}.role' {role!r} is not supported", f"{param}.role")
    if not contents:
        raise _bad("'messages' must contain at least one user or assistant message", "messages")
    return contents, system


def _function_declaration(tool: Any, i: int) -> dict[str, Any]:
    fn = common.declared_function(tool, i)
    decl: dict[str, Any] = {"name": fn["name"]}
    if fn.get("description"):
        decl["description"] = fn["description"]
    params = fn.get("parameters")
    if isinstance(params, dict):
        schema = gemini_schema(params)
        # Gemini rejects an OBJECT without properties: a function without parameters omits them.
        if schema.get("properties") or schema.get("type") not in (None, "OBJECT"):
            decl["parameters"] = schema
    return decl


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice == "auto":
        mode: dict[str, Any] = {"mode": "AUTO"}
    elif choice == "none":
        mode = {"mode": "NONE"}
    elif choice == "required":
        mode = {"mode": "ANY"}
    elif (name := common.named_function(choice)) is not None:
        mode = {"mode": "ANY", "allowedFunctionNames": [name]}
    else:
        raise common.invalid_tool_choice()
    return {"functionCallingConfig": mode}


# --- the request ------------------------------------------------------------------------------

def generate_content_body(body: dict[str, Any], safety_settings: list[dict[str, Any]] | None) -> dict[str, Any]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _bad("'messages' must be an array", "messages")
    contents, system = contents_and_system(messages)
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    tools = body.get("tools")
    if tools:
        out["tools"] = [{"functionDeclarations": [_function_declaration(t, i) for i, t in enumerate(tools)]}]
        config = _tool_config(body.get("tool_choice"))
        if config:
            out["toolConfig"] = config
    else:
        common.require_tools_for(body.get("tool_choice"))
    gen = generation_config(body)
    if gen:
        out["generationConfig"] = gen
    if safety_settings:
        out["safetySettings"] = safety_settings
    return out


def generation_config(body: dict[str, Any]) -> dict[str, Any]:
    gen: dict[str, Any] = {}
    if body.get("logprobs"):
        raise _bad("'logprobs' is not supported by provider type google", "logprobs")
    for src, dst in (("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed"),
                     ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty")):
        if body.get(src) is not None:
            gen[dst] = body[src]
    limit = common.max_tokens(body)
    if limit is not None:
        gen["maxOutputTokens"] = limit
    n = body.get("n")
    if n is not None and n != 1:
        gen["candidateCount"] = n
    stop = body.get("stop")
    if stop:
        stops = [stop] if isinstance(stop, str) else list(stop)
        if len(stops) > _MAX_STOP:
            raise _bad(f"'stop' accepts at most {_MAX_STOP} sequences for provider type google", "stop")
        gen["stopSequences"] = stops
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        kind = fmt.get("type")
        if kind == "json_object":
            gen["responseMimeType"] = "application/json"
        elif kind == "json_schema":
            spec = fmt.get("json_schema") or {}
            if not isinstance(spec.get("schema"), dict):
                raise _bad("'response_format.json_schema.schema' must be an object",
                           "response_format.json_schema.schema")
            gen["responseMimeType"] = "application/json"
            gen["responseSchema"] = gemini_schema(spec["schema"])
        elif kind not in (None, "text"):
            raise _bad(f"'response_format.type' {kind!r} is not supported", "response_format.type")
    effort = body.get("reasoning_effort")
    if isinstance(effort, str):
        if effort not in _THINKING_BUDGET:
            raise _bad(f"'reasoning_effort' {effort!r} is not supported", "reasoning_effort")
        budget = _THINKING_BUDGET[effort]
        # asking for reasoning is asking to see it: the thoughts come back as reasoning_content
        gen["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": True} if budget else \
            {"thinkingBudget": 0}
    extra = body.get("thinking_config")
    if isinstance(extra, dict):  # extension: Gemini's own thinkingConfig (snake or camel case), as is
        config = gen.setdefault("thinkingConfig", {})
        for key, value in extra.items():
            config[_THINKING_KEYS.get(key, key)] = value
    return gen


def embed_body(body: dict[str, Any], model_path: str, task_type: str | None) -> tuple[bool, dict[str, Any]]:
    """(batched, body): a string input uses `embedContent`, an array `batchEmbedContents`."""
    inputs = body.get("input")
    dims = body.get("dimensions")

    def request(text: Any, param: str) -> dict[str, Any]:
        if not isinstance(text, str):
            raise _bad(f"'{param}' must be a string: provider type google embeds text, not token ids", param)
        req: dict[str, Any] = {"content": {"parts": [{"text": text}]}}
        if task_type:
            req["taskType"] = task_type
        if dims is not None:
            req["outputDimensionality"] = dims
        return req

    fmt = body.get("encoding_format")
    if fmt not in (None, "float", "base64"):
        raise _bad("'encoding_format' must be 'float' or 'base64'", "encoding_format")
    if isinstance(inputs, str):
        return False, request(inputs, "input")
    if not isinstance(inputs, list) or not inputs:
        raise _bad("'input' must be a string or a non-empty array of strings", "input")
    return True, {"requests": [{"model": model_path, **request(t, f"input[{i}]")} for i, t in enumerate(inputs)]}

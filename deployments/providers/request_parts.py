"""Pieces of an OpenAI chat request that the native adapters (anthropic, cohere, google, bedrock) read
the same way: the token limit, stop sequences, text-only content, base64 data URLs, tool-call
arguments, function tools and tool_choice, merging consecutive same-role turns, and an assistant
message's `thinking_blocks` (Anthropic / Bedrock reasoning with signatures, sent back by clients).

Each helper reads and validates; what the provider's API calls the result stays in the adapter.
Errors are the gateway's 400s with the `param` they are about.
"""

from __future__ import annotations

from typing import Any

import orjson

from serve_app.errors import GatewayError, bad_request


def invalid(message: str, param: str | None = None, code: str = "invalid_value") -> GatewayError:
    """A 400 about one request field (code `invalid_value` unless said otherwise)."""
    return bad_request(message, param=param, code=code)


# --- generation settings ------------------------------------------------------------------------

# reasoning_effort -> extended thinking's budget_tokens (LiteLLM's values; 1024 is the API's minimum)
THINKING_BUDGET = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096}


def thinking_blocks(msg: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """An assistant message's `thinking_blocks` (LiteLLM's field, as responses give it): thinking
    blocks with their signatures and redacted blocks with their data, checked. `reasoning_content`
    alone (no signature) cannot be sent back and is not read."""
    raw = msg.get("thinking_blocks")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid(f"'{where}.thinking_blocks' must be an array", f"{where}.thinking_blocks")
    out = []
    for k, block in enumerate(raw):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "thinking" and isinstance(block.get("signature"), str) and block["signature"]:
            out.append({"type": "thinking", "thinking": str(block.get("thinking") or ""),
                        "signature": block["signature"]})
        elif kind == "redacted_thinking" and isinstance(block.get("data"), str):
            out.append({"type": "redacted_thinking", "data": block["data"]})
        else:
            raise invalid(f"'{where}.thinking_blocks[{k}]' must be a thinking block with its signature or a "
                          "redacted_thinking block with its data", f"{where}.thinking_blocks[{k}]")
    return out


def max_tokens(body: dict[str, Any]) -> Any:
    """The completion token limit: `max_completion_tokens`, else the older `max_tokens` (None: unset)."""
    value = body.get("max_completion_tokens")
    return body.get("max_tokens") if value is None else value


def stop_sequences(stop: Any) -> list[str]:
    """`stop` (a string or an array) as a list of its non-empty strings."""
    if not stop:
        return []
    return [stop] if isinstance(stop, str) else [s for s in stop if isinstance(s, str) and s]


# --- content ------------------------------------------------------------------------------------

def text_of(content: Any, param: str) -> str:
    """The text of a system/developer/tool message (a string or an array of text/refusal parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
                raise invalid(f"'{param}[{j}]' must be a text part here", f"{param}[{j}]")
            texts.append(str(part.get("text") or part.get("refusal") or ""))
        return "".join(texts)
    raise invalid(f"'{param}' must be a string or an array of content parts", param)


def base64_data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a `data:<media type>[;...];base64,<data>` URL; None when the URL
    does not say base64."""
    head, sep, data = url.partition(",")
    if not sep or ";base64" not in head:
        return None
    return head[5:].split(";", 1)[0], data


def tool_arguments(raw: Any) -> Any:
    """A tool call's `function.arguments` decoded (an object given as is, empty -> {}); ValueError
    when it is not JSON."""
    if isinstance(raw, dict):
        return raw
    if raw in (None, ""):
        return {}
    try:
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        raise ValueError(f"not JSON: {raw!r:.40}") from None


def add_turn(turns: list[dict[str, Any]], role: str, items: list[dict[str, Any]],
             key: str = "content") -> None:
    """Append a turn of `items`; a turn of the same role as the last one merges into it (so tool
    results and the text after them, or N parallel results, make one turn)."""
    if not items:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(items)
    else:
        turns.append({"role": role, key: items})


# --- tools --------------------------------------------------------------------------------------

def function_tools(tools: Any, provider_type: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(tool, function) of every entry of `tools`: each must be a function tool with a name."""
    out = []
    for i, tool in enumerate(tools or ()):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise bad_request(f"{provider_type} supports function tools only, not {kind!r}",
                              param=f"{where}.type", code="unsupported_parameter")
        fn = tool.get("function") or {}
        if not fn.get("name"):
            raise bad_request(f"'{where}.function.name' is required", param=f"{where}.function.name")
        out.append((tool, fn))
    return out


def declared_function(tool: Any, i: int) -> dict[str, Any]:
    """The `function` of `tools[i]`, which must be a function tool with a string name."""
    is_function = isinstance(tool, dict) and tool.get("type", "function") == "function"
    fn = tool.get("function") if is_function else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise invalid(f"'tools[{i}]' must be a function tool with a name", f"tools[{i}]")
    return fn


def named_function(choice: Any) -> str | None:
    """The function a `tool_choice` object names ({"type": "function", "function": {"name": ...}})."""
    name = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    return name if isinstance(name, str) else None


def allowed_tools(choice: dict[str, Any]) -> tuple[set[Any], bool]:
    """(the tool names, whether calling one is required) of an `allowed_tools` tool_choice."""
    allowed = choice.get("allowed_tools") or {}
    names = {(t.get("function") or {}).get("name") for t in allowed.get("tools") or [] if isinstance(t, dict)}
    return names, allowed.get("mode") == "required"


def unsupported_tool_choice(provider_type: str, choice: Any) -> GatewayError:
    return bad_request(f"{provider_type} does not support tool_choice {choice!r}", param="tool_choice",
                       code="unsupported_parameter")


def invalid_tool_choice() -> GatewayError:
    return invalid("'tool_choice' must be 'auto', 'none', 'required' or a named function", "tool_choice")


def require_tools_for(choice: Any) -> None:
    """A tool_choice that forces a call (required, a named function) is a 400 without `tools`."""
    if choice not in (None, "none", "auto"):
        raise invalid("'tool_choice' needs 'tools'", "tool_choice")

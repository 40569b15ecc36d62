"""A local Anthropic Messages API (`POST /v1/messages`) that replays tests/fixtures/providers/anthropic.

It checks what the real API checks first (the `x-api-key` and `anthropic-version` headers, then
the body: `model`, `max_tokens`, non-empty `messages` that start with a user turn and alternate,
no `system` role inside `messages`, every `tool_use` answered by a `tool_result` in the next user
turn, `tool_choice` only with `tools`, and with `thinking` enabled a tool-use assistant turn that
starts with a thinking block carrying a signature the mock issued) and answers with the API's own
error bodies. Then the request's `model` picks the scenario: `<name>` replays `chat/<name>.json`,
or `stream/<name>.sse` when `stream` is true; `error-<name>` replays `errors/<name>.json`.

    with start_anthropic_mock(api_key="sk-ant-mock") as server:
        server.base_url  # use as the provider's base_url
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from aiohttp import web

from .common import MockServer, fixture_path, json_response, load_json, stream_bytes

PROVIDER = "anthropic"


def _error(status: int, etype: str, message: str) -> web.Response:
    return json_response(status, {"type": "error", "error": {"type": etype, "message": message},
                                  "request_id": "req_" + uuid.uuid4().hex[:24]})


def _invalid(message: str) -> web.Response:
    return _error(400, "invalid_request_error", message)


def _issued_signatures() -> frozenset[str]:
    """Every thinking-block signature the fixtures hand out (what the mock accepts back)."""
    found: set[str] = set()
    for path in (fixture_path(PROVIDER, "chat").glob("*.json")):
        found.update(re.findall(r'"signature":\s*"([^"]+)"', path.read_text()))
    for path in (fixture_path(PROVIDER, "stream").glob("*.sse")):
        found.update(re.findall(r'"signature":"([^"]+)"', path.read_text()))
    return frozenset(found)


SIGNATURES = _issued_signatures()


def thinking_violation(body: dict[str, Any]) -> str | None:
    """With thinking enabled, the last assistant turn that used tools must start with the thinking
    block the API sent, its signature intact (extended thinking with tool use)."""
    if (body.get("thinking") or {}).get("type") != "enabled":
        return None
    messages = body["messages"]
    for i in range(len(messages) - 1, -1, -1):
        msg = messages[i]
        blocks = msg.get("content") if isinstance(msg.get("content"), list) else []
        if msg.get("role") != "assistant" or not any(b.get("type") == "tool_use" for b in blocks):
            continue
        first = blocks[0].get("type")
        if first not in ("thinking", "redacted_thinking"):
            return (f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                    f"`{first}`. When `thinking` is enabled, a final `assistant` message must start with a "
                    "thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We "
                    "recommend you include thinking blocks from previous turns. To avoid this requirement, "
                    "disable `thinking`. Please consult our documentation at "
                    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking")
        for j, block in enumerate(blocks):
            if block.get("type") == "thinking" and block.get("signature") not in SIGNATURES:
                return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
        return None
    return None


def validate(body: Any) -> str | None:
    """The API's complaint about a request body, or None."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    for field in ("model", "max_tokens", "messages"):
        if field not in body:
            return f"{field}: Field required"
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        return "max_tokens: Input should be a valid integer greater than 0"
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    if body.get("tool_choice") is not None and not body.get("tools"):
        return "tool_choice may only be specified while providing tools."
    pending: set[str] = set()
    for i, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role not in ("user", "assistant"):
            return (f'messages.{i}.role: Unexpected role "{role}". The Messages API accepts a top-level `system` '
                    'parameter, not "system" as an input message role.')
        if i == 0 and role != "user":
            return "messages: first message must use the \"user\" role"
        if i > 0 and messages[i - 1].get("role") == role:
            return f'messages: roles must alternate between "user" and "assistant", but found multiple "{role}" roles in a row'
        content = msg.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list) or not blocks:
            return f"messages.{i}: all messages must have non-empty content"
        results = set()
        for j, block in enumerate(blocks):
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text" and not block.get("text"):
                return f"messages.{i}.content.{j}.text: text content blocks must be non-empty"
            if kind == "tool_use":
                if role != "assistant" or not isinstance(block.get("input"), dict):
                    return f"messages.{i}.content.{j}: tool_use blocks need an object input in an assistant turn"
                pending.add(block.get("id"))
            elif kind == "tool_result":
                results.add(block.get("tool_use_id"))
            elif kind == "image":
                source = block.get("source") or {}
                if source.get("type") not in ("base64", "url"):
                    return f"messages.{i}.content.{j}.image.source: Input tag '{source.get('type')}' found using 'type' does not match any of the expected tags: 'base64', 'url'"
            elif kind not in ("text", "tool_use", "tool_result", "image", "document", "thinking", "redacted_thinking"):
                return f"messages.{i}.content.{j}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
        if role == "user":
            unknown = results - pending
            if unknown:
                return (f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{sorted(unknown)[0]}. Each `tool_result` block must have a corresponding `tool_use` "
                        "block in the previous message.")
            if pending and pending - results:
                return (f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                        f"{sorted(pending - results)[0]}. Each `tool_use` block must have a corresponding "
                        "`tool_result` block in the next message.")
            pending = set()
    return thinking_violation(body)


def create_app(api_key: str = "sk-ant-mock", piece: int = 0) -> web.Application:
    async def messages(request: web.Request) -> web.StreamResponse:
        key = request.headers.get("x-api-key")
        if not key:
            return _error(401, "authentication_error", "x-api-key header is required")
        if key != api_key:
            return _error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _invalid("anthropic-version: header is required")
        try:
            body = await request.json()
        except ValueError:
            return _invalid("There was an error parsing the body of your request as JSON")
        problem = validate(body)
        if problem:
            return _invalid(problem)
        scenario = str(body["model"])
        if scenario.startswith("error-"):
            path = fixture_path(PROVIDER, "errors", scenario[6:] + ".json")
            if path.exists():
                fx = load_json(PROVIDER, "errors", path.name)
                return json_response(fx["status"], fx["body"], fx.get("headers"))
        elif body.get("stream"):
            path = fixture_path(PROVIDER, "stream", scenario + ".sse")
            if path.exists():
                return await stream_bytes(request, path.read_bytes(), piece=piece,
                                          headers={"request-id": "req_" + uuid.uuid4().hex[:24]})
        else:
            path = fixture_path(PROVIDER, "chat", scenario + ".json")
            if path.exists():
                return json_response(200, path.read_bytes())
        return _error(404, "not_found_error", f"model: {scenario}")

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    return app


def start_anthropic_mock(api_key: str = "sk-ant-mock", piece: int = 0) -> MockServer:
    """Start the mock; `piece` > 0 sends streams in writes of that many bytes."""
    return MockServer(create_app(api_key, piece)).start()

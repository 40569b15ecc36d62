"""Anthropic Messages API responses, SSE streams and errors -> OpenAI (pure translation)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from serve_app import errors as E
from serve_app.errors import UpstreamError

from ..base import CallContext, require_json, upstream_error
from ..chunks import SSEJSONStream, completion, reasoning_fields
from .request import JSON_TOOL

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: str | None, has_tool_calls: bool) -> str:
    reason = FINISH_REASONS.get(stop_reason or "", "stop")
    if reason == "tool_calls" and not has_tool_calls:  # the JSON-mode tool, or server tools only
        return "stop"
    return reason


def openai_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI usage from Anthropic's: prompt_tokens counts cache reads and writes too (OpenAI's
    prompt_tokens includes cached tokens; Anthropic's input_tokens excludes them)."""
    read = usage.get("cache_read_input_tokens")
    write = usage.get("cache_creation_input_tokens")
    prompt = int(usage.get("input_tokens") or 0) + int(read or 0) + int(write or 0)
    completion = int(usage.get("output_tokens") or 0)
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                           "total_tokens": prompt + completion}
    if read is not None or write is not None:
        out["prompt_tokens_details"] = {"cached_tokens": int(read or 0), "cache_write_tokens": int(write or 0)}
    details = usage.get("output_tokens_details")
    if isinstance(details, dict) and details.get("thinking_tokens") is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": int(details["thinking_tokens"])}
    return out


def _arguments(value: Any) -> str:
    return orjson.dumps(value if value is not None else {}).decode()


def chat_completion(payload: bytes, ctx: CallContext) -> bytes:
    data = require_json(payload, ctx.provider)
    if not isinstance(data, dict) or data.get("type") == "error":
        raise error_from_body(502, {}, payload, ctx.provider)
    texts: list[str] = []
    json_text: str | None = None
    tool_calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for block in data.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind in ("thinking", "redacted_thinking"):
            thinking.append(thinking_block(block))
        elif kind == "tool_use":
            if block.get("name") == JSON_TOOL:
                json_text = _arguments(block.get("input"))
            else:
                tool_calls.append({"id": block.get("id"), "type": "function",
                                   "function": {"name": block.get("name"), "arguments": _arguments(block.get("input"))}})
        # server-tool blocks have no OpenAI counterpart: dropped.
    content = json_text if json_text is not None else ("".join(texts) if texts else None)
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if thinking:
        message.update(reasoning_fields(thinking))
    if tool_calls:
        message["tool_calls"] = tool_calls
    usage = openai_usage(data["usage"]) if isinstance(data.get("usage"), dict) else None
    return completion(ctx, message, finish_reason(data.get("stop_reason"), bool(tool_calls)),
                      id=data.get("id"), model=data.get("model"), usage=usage)


# --- reasoning -------------------------------------------------------------------------------
# Thinking goes to the client as `reasoning_content` + `thinking_blocks` (chunks.reasoning_fields),
# signatures included, so the client can send the blocks back and a tool-use turn with thinking is
# accepted (request.py puts them first in the assistant turn).


def thinking_block(block: dict[str, Any]) -> dict[str, Any]:
    if block.get("type") == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.get("data") or ""}
    return {"type": "thinking", "thinking": block.get("thinking") or "",
            "signature": block.get("signature") or ""}


# --- errors ----------------------------------------------------------------------------------

# Anthropic error.type -> (the status it comes with, error class); used for SSE `error` events,
# which carry no status, and to classify bodies whose status alone says too little.
_BY_TYPE: dict[str, tuple[int, str | None]] = {
    "invalid_request_error": (400, None),
    "authentication_error": (401, E.AUTH),
    "billing_error": (402, E.AUTH),
    "permission_error": (403, E.AUTH),
    "not_found_error": (404, E.NOT_FOUND),
    "request_too_large": (413, E.BAD_REQUEST),
    "rate_limit_error": (429, E.RATE_LIMITED),
    "api_error": (500, E.SERVER),
    "timeout_error": (504, E.TIMEOUT),
    "overloaded_error": (529, E.OVERLOADED),
}
_CONTEXT = ("prompt is too long", "exceed context limit", "context window", "context length")


def _error_obj(payload: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        return {}
    err = data.get("error") if isinstance(data, dict) else None
    return err if isinstance(err, dict) else {}


def error_from_body(status: int, headers: Mapping[str, str], payload: bytes, provider: str) -> UpstreamError:
    err = _error_obj(payload)
    etype = str(err.get("type") or "")
    message = str(err.get("message") or "").lower()
    if status == 402 or etype == "billing_error":
        # The gateway's provider account cannot pay: not the client's fault, and never its text.
        return UpstreamError(502, f"provider {provider!r} refused the request for a billing reason "
                             f"(upstream status {status})", provider=provider, code="upstream_billing_error",
                             type="upstream_error", error_class=E.AUTH)
    error_class = _BY_TYPE.get(etype, (0, None))[1]
    if status in (400, 413) and any(m in message for m in _CONTEXT):
        error_class = E.CONTEXT_LENGTH
    return upstream_error(status, headers, payload, provider, error_class=error_class)


def stream_error(event: dict[str, Any], provider: str) -> UpstreamError:
    """An SSE `error` event (sent after the 200, e.g. overloaded mid-stream)."""
    err = event.get("error")
    etype = str(err.get("type") or "") if isinstance(err, dict) else ""
    status = _BY_TYPE.get(etype, (500, None))[0]
    return error_from_body(status, {}, orjson.dumps(event), provider)


# --- streaming -------------------------------------------------------------------------------

_TEXT, _TOOL, _JSON, _SKIP, _THINK = 0, 1, 2, 3, 4


class AnthropicStream(SSEJSONStream):
    """Anthropic SSE (`message_start` ... `message_stop`) -> OpenAI chat.completion.chunk SSE.

    Content blocks are tracked by their index: text blocks become content deltas, tool_use blocks
    become tool-call deltas with their own OpenAI index (id and name once, then argument pieces),
    the JSON-mode tool becomes content, thinking deltas become `reasoning_content` deltas and each
    finished thinking block one `thinking_blocks` delta (the whole block with its signature, for
    the client to send back). An `error` event raises the mapped UpstreamError (after whatever
    preceded it in the same read is returned); EOF before `message_stop` raises stream_cut.
    """

    __slots__ = ("_blocks", "_tools", "_stop_reason", "_usage_raw", "_thinking")

    end_event = "message_stop"

    def __init__(self, ctx: CallContext) -> None:
        super().__init__(ctx)
        self._blocks: dict[int, tuple[int, int]] = {}  # block index -> (kind, OpenAI tool index)
        self._tools = 0
        self._stop_reason: str | None = None
        self._usage_raw: dict[str, Any] = {}
        self._thinking: dict[int, dict[str, Any]] = {}  # block index -> the thinking block so far

    def _event(self, ev: dict[str, Any], out: list[bytes]) -> None:
        kind = ev.get("type")
        if kind == "content_block_delta":
            block = self._blocks.get(ev.get("index", -1))
            delta = ev.get("delta") or {}
            if block is None:
                return
            if delta.get("type") == "text_delta" and block[0] == _TEXT:
                if delta.get("text"):
                    out.append(self._content(delta["text"]))
            elif block[0] == _THINK:
                held = self._thinking[ev["index"]]
                if delta.get("type") == "thinking_delta" and delta.get("thinking"):
                    held["thinking"] += delta["thinking"]
                    out.append(self._chunk({"reasoning_content": delta["thinking"]}))
                elif delta.get("type") == "signature_delta":
                    held["signature"] += delta.get("signature") or ""
            elif delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                if block[0] == _TOOL:
                    out.append(self._tool_arguments(block[1], delta["partial_json"]))
                elif block[0] == _JSON:
                    out.append(self._content(delta["partial_json"]))
            # citations_delta: dropped
        elif kind == "content_block_stop":
            held = self._thinking.pop(ev.get("index", -1), None)
            if held is not None:
                out.append(self._chunk({"thinking_blocks": [held]}))
        elif kind == "content_block_start":
            self._block_start(ev.get("index", -1), ev.get("content_block") or {}, out)
        elif kind == "message_start":
            msg = ev.get("message") or {}
            self.id = msg.get("id") or self.id
            self.model = msg.get("model") or self.model
            if isinstance(msg.get("usage"), dict):
                self._usage_raw.update(msg["usage"])
            out.append(self._role_chunk())
        elif kind == "message_delta":
            self._stop_reason = (ev.get("delta") or {}).get("stop_reason") or self._stop_reason
            usage = ev.get("usage")
            if isinstance(usage, dict):  # cumulative counts: later values win
                self._usage_raw.update({k: v for k, v in usage.items() if v is not None})
        elif kind == "message_stop":
            self._role(out)  # no message_start: the role chunk still comes first
            self._end(out, finish_reason(self._stop_reason, self._tools > 0), openai_usage(self._usage_raw))
        # ping and unknown (future) events: nothing to send

    def _stream_error(self, err: dict[str, Any]) -> UpstreamError:
        return stream_error(err, self.provider)

    def _block_start(self, index: int, block: dict[str, Any], out: list[bytes]) -> None:
        btype = block.get("type")
        if btype == "text":
            self._blocks[index] = (_TEXT, -1)
            if block.get("text"):
                out.append(self._content(block["text"]))
        elif btype == "tool_use" and block.get("name") == JSON_TOOL:
            self._blocks[index] = (_JSON, -1)
            if block.get("input"):
                out.append(self._content(_arguments(block["input"])))
        elif btype == "tool_use":
            tool = self._tools
            self._tools += 1
            self._blocks[index] = (_TOOL, tool)
            args = _arguments(block["input"]) if block.get("input") else ""
            out.append(self._tool_start(tool, block.get("id"), block.get("name"), args))
        elif btype in ("thinking", "redacted_thinking"):
            self._role(out)
            self._blocks[index] = (_THINK, -1)
            self._thinking[index] = thinking_block(block)
        else:
            self._blocks[index] = (_SKIP, -1)

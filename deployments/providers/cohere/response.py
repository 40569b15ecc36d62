"""Cohere v2 Chat / Embed responses, SSE streams and errors -> OpenAI (pure translation)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from serve_app import errors as E
from serve_app.errors import UpstreamError

from ..base import CallContext, refused, require_json, upstream_error
from ..chunks import SSEJSONStream, completion, error_status
from ..embeddings import embedding_list

FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "ERROR_LIMIT": "length",
    "TOOL_CALL": "tool_calls",
    "CONTENT_BLOCKED": "content_filter",
}
_FAILED = frozenset({"ERROR", "TIMEOUT"})  # the generation failed: an error, not a clean end


def finish_reason(reason: Any, has_tool_calls: bool) -> str:
    mapped = FINISH_REASONS.get(str(reason or "").upper(), "stop")
    if mapped == "tool_calls" and not has_tool_calls:
        return "stop"
    return mapped


def generation_failed(reason: Any, provider: str) -> UpstreamError | None:
    text = str(reason or "").upper()
    if text not in _FAILED:
        return None
    error_class = E.TIMEOUT if text == "TIMEOUT" else E.SERVER
    return UpstreamError(502, f"provider {provider!r} ended the generation with finish_reason {text}",
                         provider=provider, code="upstream_generation_error", error_class=error_class)


def openai_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI usage from Cohere's: the model's `tokens` counts (which include Cohere's own prompt
    preamble, and which `cached_tokens` is a part of), falling back to `billed_units`."""
    tokens = usage.get("tokens") if isinstance(usage.get("tokens"), dict) else {}
    billed = usage.get("billed_units") if isinstance(usage.get("billed_units"), dict) else {}
    prompt = tokens.get("input_tokens")
    if prompt is None:
        prompt = billed.get("input_tokens")
    completion = tokens.get("output_tokens")
    if completion is None:
        completion = billed.get("output_tokens")
    prompt, completion = int(prompt or 0), int(completion or 0)
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                           "total_tokens": prompt + completion}
    if usage.get("cached_tokens") is not None:
        out["prompt_tokens_details"] = {"cached_tokens": int(usage["cached_tokens"])}
    return out


def chat_completion(payload: bytes, ctx: CallContext) -> bytes:
    data = require_json(payload, ctx.provider)
    if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
        raise UpstreamError(502, f"provider {ctx.provider!r} returned a chat body without a message",
                            provider=ctx.provider, code="upstream_bad_response", error_class=E.SERVER)
    failed = generation_failed(data.get("finish_reason"), ctx.provider)
    if failed is not None:
        raise failed
    msg = data["message"]
    texts = [c.get("text") or "" for c in msg.get("content") or [] if isinstance(c, dict) and c.get("type") == "text"]
    tool_calls = []
    for k, call in enumerate(msg.get("tool_calls") or []):
        fn = call.get("function") or {}
        tool_calls.append({"id": call.get("id") or f"call_{k}", "type": "function",
                           "function": {"name": fn.get("name") or "", "arguments": fn.get("arguments") or "{}"}})
    # tool_plan (the model's plan before calling tools), citations and thinking items: dropped.
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    usage = openai_usage(data["usage"]) if isinstance(data.get("usage"), dict) else None
    return completion(ctx, message, finish_reason(data.get("finish_reason"), bool(tool_calls)),
                      id=data.get("id"), usage=usage)


def embeddings(payload: bytes, ctx: CallContext) -> bytes:
    data = require_json(payload, ctx.provider)
    embs = data.get("embeddings") if isinstance(data, dict) else None
    if isinstance(embs, list):  # the v1 "embeddings_floats" shape
        vectors, as_base64 = embs, False
    elif isinstance(embs, dict) and isinstance(embs.get("float"), list):
        vectors, as_base64 = embs["float"], "base64" in embs
    else:
        raise UpstreamError(502, f"provider {ctx.provider!r} returned no float embeddings", provider=ctx.provider,
                            code="upstream_bad_response", error_class=E.SERVER)
    billed = ((data.get("meta") or {}).get("billed_units") or {})
    return embedding_list(vectors, ctx.model, int(billed.get("input_tokens") or 0), as_base64)


# --- errors ----------------------------------------------------------------------------------

_FILTER = ("blocked input", "blocked output", "usage policy", "usage guidelines")


def error_from_body(status: int, headers: Mapping[str, str], payload: bytes, provider: str) -> UpstreamError:
    """Cohere errors are `{"id": ..., "message": ...}`; 498 means an invalid API token (auth),
    499 that the request was closed before Cohere answered, 501 that the model does not support
    a requested feature (the client's request, not a server fault: a 400)."""
    if status == 498:
        status = 401
    elif status == 499:
        return upstream_error(502, headers, payload, provider, error_class=E.SERVER)
    elif status == 501:
        return upstream_error(400, headers, payload, provider, error_class=E.BAD_REQUEST)
    error_class = None
    if status in (400, 422):
        try:
            data = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            data = {}
        message = str(data.get("message") or "") if isinstance(data, dict) else ""
        hit = next((m for m in _FILTER if m in message.lower()), None)
        if hit is not None:  # Cohere's safety system refused the request: the client's refusal
            return refused(provider, hit, message)
    return upstream_error(status, headers, payload, provider, error_class=error_class)


# --- streaming -------------------------------------------------------------------------------


class CohereStream(SSEJSONStream):
    """Cohere v2 chat SSE (`message-start` ... `message-end`) -> OpenAI chat.completion.chunk SSE.

    content-delta text -> content deltas; tool-call-start -> a tool-call delta with id, name and
    an OpenAI index of its own (Cohere's event index counts content blocks too); tool-call-delta
    -> argument pieces; tool-plan-delta, citations and thinking are dropped. message-end carries
    finish_reason and usage; `ERROR` there raises an UpstreamError. EOF before message-end raises
    stream_cut from finish().
    """

    __slots__ = ("_tools", "_calls")

    end_event = "message-end"

    def __init__(self, ctx: CallContext) -> None:
        super().__init__(ctx)
        self._tools: dict[int, int] = {}  # Cohere tool-call index -> OpenAI tool index
        self._calls = 0

    def _stream_error(self, err: dict[str, Any]) -> UpstreamError:
        return error_from_body(error_status(err), {}, orjson.dumps(err), self.provider)

    def _event(self, ev: dict[str, Any], out: list[bytes]) -> None:
        kind = ev.get("type")
        message = ((ev.get("delta") or {}).get("message") or {}) if isinstance(ev.get("delta"), dict) else {}
        if kind in ("content-delta", "content-start"):
            content = message.get("content") if isinstance(message.get("content"), dict) else {}
            if content.get("text"):  # thinking items carry `thinking`, not `text`: dropped
                self._role(out)
                out.append(self._content(content["text"]))
        elif kind == "tool-call-start":
            call = message.get("tool_calls") if isinstance(message.get("tool_calls"), dict) else {}
            fn = call.get("function") or {}
            tool = self._calls
            self._calls += 1
            self._tools[ev.get("index", tool)] = tool
            self._role(out)
            out.append(self._tool_start(tool, call.get("id") or f"call_{tool}", fn.get("name") or "",
                                        fn.get("arguments") or ""))
        elif kind == "tool-call-delta":
            call = message.get("tool_calls") if isinstance(message.get("tool_calls"), dict) else {}
            args = (call.get("function") or {}).get("arguments")
            tool = self._tools.get(ev.get("index", -1))
            if args and tool is not None:
                out.append(self._tool_arguments(tool, args))
        elif kind == "message-start":
            self.id = ev.get("id") or self.id
            self._role(out)
        elif kind == "message-end":
            self._message_end(ev.get("delta") if isinstance(ev.get("delta"), dict) else {}, out)
        # content-end, tool-plan-delta, tool-call-end, citation-start/end: nothing to send

    def _message_end(self, delta: dict[str, Any], out: list[bytes]) -> None:
        reason = delta.get("finish_reason")
        failed = generation_failed(reason, self.provider)
        if failed is not None:
            raise failed
        self._role(out)
        usage = openai_usage(delta["usage"]) if isinstance(delta.get("usage"), dict) else None
        self._end(out, finish_reason(reason, self._calls > 0), usage)

"""Bedrock Converse responses, ConverseStream event streams and errors -> OpenAI shapes.

- `output.message.content`: text blocks joined, `toolUse` -> `tool_calls` (id = toolUseId, arguments
  = the JSON of `input`), `reasoningContent` -> `reasoning_content` + `thinking_blocks` (text and
  signature, or redacted data; in streams reasoning deltas, then the whole block at
  contentBlockStop), which clients send back on the assistant message (request.py).
- `stopReason`: end_turn / stop_sequence -> stop, tool_use -> tool_calls, max_tokens and
  model_context_window_exceeded -> length, guardrail_intervened / content_filtered ->
  content_filter, except a guardrail that blocked the prompt (its trace's inputAssessment has a
  BLOCKED policy): that is a 400 `content_filter` naming the policies; malformed_model_output /
  malformed_tool_use -> 502 upstream_bad_response.
- `usage`: Converse counts cache reads and writes outside `inputTokens`; OpenAI's prompt_tokens
  includes cached tokens, so prompt_tokens = inputTokens + cacheReadInputTokens +
  cacheWriteInputTokens and prompt_tokens_details.cached_tokens = cacheReadInputTokens. Bedrock
  does not report reasoning tokens separately (they are inside outputTokens).
- Stream: binary event stream (eventstream.py). messageStart -> role delta; contentBlockStart with
  toolUse -> a tool-call delta with id and name (index = count of tool blocks so far);
  contentBlockDelta text / toolUse.input -> content / arguments deltas; messageStop -> the finish
  chunk; metadata -> usage (the usage chunk when the client asked). `:message-type exception`
  events raise the mapped error. The stream is complete once messageStop has arrived.
- Errors: the exception name (`x-amzn-ErrorType` header or `__type` in the body) decides the class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from serve_app import errors as E
from serve_app.errors import UpstreamError

from ..base import CallContext, refused, require_json, stream_cut, upstream_error
from ..chunks import DONE, ChunkStream, completion, reasoning_fields
from ..embeddings import ENCODING_KEY, embedding_list
from ..eventstream import Decoder, EventStreamError, Message

_STOP = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
_MALFORMED = frozenset({"malformed_model_output", "malformed_tool_use"})


def finish_reason(reason: Any, called_tools: bool, provider: str) -> str:
    if reason in _MALFORMED:
        raise UpstreamError(502, f"provider {provider!r} produced malformed output ({reason})", provider=provider,
                            code="upstream_bad_response", error_class=E.SERVER)
    mapped = _STOP.get(str(reason), "stop")
    return "tool_calls" if mapped == "stop" and called_tools else mapped


def usage(u: Any) -> dict[str, Any] | None:
    if not isinstance(u, dict):
        return None
    cached = int(u.get("cacheReadInputTokens") or 0)
    prompt = int(u.get("inputTokens") or 0) + cached + int(u.get("cacheWriteInputTokens") or 0)
    completion = int(u.get("outputTokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}}


def _bad_body(ctx: CallContext, what: str) -> UpstreamError:
    return UpstreamError(502, f"provider {ctx.provider!r} returned {what}", provider=ctx.provider,
                         code="upstream_bad_response", error_class=E.SERVER)


def chat_completion(payload: bytes, ctx: CallContext) -> bytes:
    data = require_json(payload, ctx.provider)
    message = ((data.get("output") or {}).get("message") if isinstance(data, dict) else None)
    if not isinstance(message, dict):
        raise _bad_body(ctx, "a body without output.message")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    reasoning: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("reasoningContent"), dict):
            reasoning.append(reasoning_block(block["reasoningContent"]))
        elif isinstance(block.get("toolUse"), dict):
            tu = block["toolUse"]
            calls.append({"id": tu.get("toolUseId") or f"call_{len(calls)}", "type": "function",
                          "function": {"name": tu.get("name") or "",
                                       "arguments": orjson.dumps(tu.get("input") or {}).decode()}})
    if data.get("stopReason") == "guardrail_intervened":
        blocked = guardrail_block(data, ctx.provider, "".join(texts))
        if blocked is not None:
            raise blocked
    reason = finish_reason(data.get("stopReason"), bool(calls), ctx.provider)
    msg: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None,
                           "refusal": None}
    if reasoning:
        msg.update(reasoning_fields(reasoning))
    if calls:
        msg["tool_calls"] = calls
    return completion(ctx, msg, reason, usage=usage(data.get("usage")))


def reasoning_block(content: dict[str, Any]) -> dict[str, Any]:
    """A Converse `reasoningContent` as a thinking block (chunks.reasoning_fields)."""
    if content.get("redactedContent") is not None:
        return {"type": "redacted_thinking", "data": str(content["redactedContent"])}
    text = content.get("reasoningText") if isinstance(content.get("reasoningText"), dict) else {}
    return {"type": "thinking", "thinking": str(text.get("text") or ""),
            "signature": str(text.get("signature") or "")}


def guardrail_block(data: dict[str, Any], provider: str, text: str = "") -> UpstreamError | None:
    """The refusal when a guardrail blocked the prompt (`trace.guardrail.inputAssessment` has a
    BLOCKED policy: Bedrock reports it when the guardrail's trace is enabled), else None: a
    guardrail that stopped the answer is `finish_reason: content_filter`."""
    trace = data.get("trace")
    guardrail = trace.get("guardrail") if isinstance(trace, dict) else None
    assessment = guardrail.get("inputAssessment") if isinstance(guardrail, dict) else None
    blocked: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("action") == "BLOCKED":
                label = node.get("type") or node.get("name") or node.get("match")
                if label and str(label) not in blocked:
                    blocked.append(str(label))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(assessment)
    if not blocked:
        return None
    return refused(provider, "guardrail_intervened: " + ", ".join(blocked), text)  # text: its message


# In-stream exception events, by their `:exception-type`, with the HTTP status of their shape.
_STREAM_EXCEPTION_STATUS = {
    "internalServerException": 500,
    "modelStreamErrorException": 424,
    "validationException": 400,
    "throttlingException": 429,
    "serviceUnavailableException": 503,
    "modelTimeoutException": 408,
}


class BedrockStream(ChunkStream):
    """ConverseStream binary event stream -> OpenAI chat.completion.chunk SSE."""

    __slots__ = ("_decoder", "_tools", "_stopped", "_reasoning")

    def __init__(self, ctx: CallContext) -> None:
        super().__init__(ctx)
        self._decoder = Decoder()
        self._tools: dict[int, int] = {}  # contentBlockIndex -> tool call index
        self._stopped = False
        self._reasoning: dict[int, dict[str, Any]] = {}  # contentBlockIndex -> the thinking block so far

    def feed(self, chunk: bytes) -> bytes:
        self._raise_held()
        try:
            messages = self._decoder.feed(chunk)
        except EventStreamError as exc:
            raise stream_cut(self.provider, str(exc)) from None
        return self._deliver(messages, self._message)

    def _message(self, msg: Message, out: list[bytes]) -> None:
        headers, payload = msg.headers, msg.payload
        kind = headers.get(":message-type")
        if kind == "exception":
            name = str(headers.get(":exception-type") or "internalServerException")
            raise stream_exception(name, payload, self.provider)
        if kind == "error":
            message = str(headers.get(":error-message") or headers.get(":error-code") or "stream error")
            raise UpstreamError(502, f"provider {self.provider!r}: {message}", provider=self.provider,
                                code=str(headers.get(":error-code") or "upstream_error"), error_class=E.SERVER)
        event = headers.get(":event-type")
        try:
            data = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            raise stream_cut(self.provider, f"a {event} event that is not JSON") from None
        if event == "messageStart":
            self._role(out)
        elif event == "contentBlockStart":
            self._role(out)
            tool = (data.get("start") or {}).get("toolUse")
            if isinstance(tool, dict):
                k = len(self._tools)
                self._tools[int(data.get("contentBlockIndex") or 0)] = k
                out.append(self._tool_start(k, tool.get("toolUseId"), tool.get("name")))
        elif event == "contentBlockDelta":
            self._role(out)
            delta = data.get("delta") or {}
            if isinstance(delta.get("text"), str):
                if delta["text"]:
                    out.append(self._content(delta["text"]))
            elif isinstance(delta.get("toolUse"), dict):
                k = self._tools.get(int(data.get("contentBlockIndex") or 0))
                if k is None:
                    raise stream_cut(self.provider, "tool input for a block that never started")
                out.append(self._tool_arguments(k, str(delta["toolUse"].get("input") or "")))
            elif isinstance(delta.get("reasoningContent"), dict):
                self._reasoning_delta(int(data.get("contentBlockIndex") or 0), delta["reasoningContent"], out)
        elif event == "contentBlockStop":
            held = self._reasoning.pop(int(data.get("contentBlockIndex") or 0), None)
            if held is not None:  # the whole block, signature included, for the client to send back
                out.append(self._chunk({"thinking_blocks": [held]}))
        elif event == "messageStop":
            self._role(out)
            reason = finish_reason(data.get("stopReason"), bool(self._tools), self.provider)
            self._stopped = True
            out.append(self._chunk({}, reason))
        elif event == "metadata":
            self.usage = usage(data.get("usage")) or self.usage
            if self.include_usage and self.usage:
                out.append(self._usage_chunk())

    def _reasoning_delta(self, block: int, part: dict[str, Any], out: list[bytes]) -> None:
        if part.get("redactedContent") is not None:
            self._reasoning[block] = reasoning_block(part)
            return
        held = self._reasoning.setdefault(block, {"type": "thinking", "thinking": "", "signature": ""})
        if isinstance(part.get("text"), str) and part["text"]:
            held["thinking"] += part["text"]
            out.append(self._chunk({"reasoning_content": part["text"]}))
        if isinstance(part.get("signature"), str):
            held["signature"] += part["signature"]

    def finish(self) -> bytes:
        self._raise_held()
        if self._decoder.pending:
            raise stream_cut(self.provider, f"{self._decoder.pending} bytes of an unfinished event")
        if not self._stopped:
            raise stream_cut(self.provider, "no messageStop event")
        return DONE


# --- errors ------------------------------------------------------------------------------------

_AUTH = frozenset({"AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
                   "ExpiredTokenException", "IncompleteSignatureException", "MissingAuthenticationTokenException",
                   "InvalidClientTokenId", "SignatureDoesNotMatch"})
# exception -> (status for the status rules, error class, code)
_BY_TYPE: dict[str, tuple[int, str, str]] = {
    "ThrottlingException": (429, E.RATE_LIMITED, "rate_limit_exceeded"),
    "ServiceQuotaExceededException": (429, E.RATE_LIMITED, "quota_exceeded"),
    "ModelNotReadyException": (503, E.OVERLOADED, "model_not_ready"),
    "ServiceUnavailableException": (503, E.OVERLOADED, "upstream_overloaded"),
    "ModelTimeoutException": (408, E.TIMEOUT, "upstream_timeout"),
    "ModelErrorException": (502, E.SERVER, "model_error"),
    "ModelStreamErrorException": (502, E.SERVER, "model_error"),
    "InternalServerException": (500, E.SERVER, "internal_error"),
    "ResourceNotFoundException": (404, E.NOT_FOUND, "model_not_found"),
}
_CONTEXT = ("too long", "context window", "context limit", "context length", "too many input tokens",
            "maximum context", "exceeds the maximum")


def _error_type(headers: Mapping[str, str], data: Any) -> str:
    raw = ""
    for k, v in headers.items():
        if k.lower() == "x-amzn-errortype":
            raw = v
            break
    if not raw and isinstance(data, dict):
        raw = str(data.get("__type") or data.get("code") or data.get("type") or "")
    return raw.split(":", 1)[0].rsplit("#", 1)[-1].strip()


def _classify(name: str, status: int, message: str, headers: Mapping[str, str], provider: str) -> UpstreamError:
    if name in _AUTH or status in (401, 403):
        return upstream_error(403, headers, b"", provider)
    st, cls, code = _BY_TYPE.get(name) or (status, None, name or None)
    if st == 400 and any(m in message.lower() for m in _CONTEXT):
        cls = E.CONTEXT_LENGTH  # upstream_error then sets code context_length_exceeded
    return upstream_error(st, headers, b"", provider, message=message or None, code=code, error_class=cls)


def bedrock_error(status: int, headers: Mapping[str, str], payload: bytes, provider: str) -> UpstreamError:
    """A Bedrock error response (`{"message": ...}` + `x-amzn-ErrorType`) -> UpstreamError."""
    try:
        data = orjson.loads(payload) if payload else {}
    except orjson.JSONDecodeError:
        data = {}
    message = ""
    if isinstance(data, dict):
        message = str(data.get("message") or data.get("Message") or "")
    return _classify(_error_type(headers, data), status, message, headers, provider)


def stream_exception(name: str, payload: bytes, provider: str) -> UpstreamError:
    try:
        data = orjson.loads(payload) if payload else {}
    except orjson.JSONDecodeError:
        data = {}
    message = str(data.get("message") or "") if isinstance(data, dict) else ""
    status = _STREAM_EXCEPTION_STATUS.get(name, 500)
    return _classify(name[:1].upper() + name[1:], status, message, {}, provider)


# --- embeddings --------------------------------------------------------------------------------

def embeddings_list(payload: bytes, ctx: CallContext, family: str) -> bytes:
    data = require_json(payload, ctx.provider)
    if not isinstance(data, dict):
        raise _bad_body(ctx, "an unexpected embeddings body")
    tokens = 0
    if family == "titan":
        vec = data.get("embedding")
        if not isinstance(vec, list):
            raise _bad_body(ctx, "no embedding")
        vectors = [vec]
        tokens = int(data.get("inputTextTokenCount") or 0)
    else:
        emb = data.get("embeddings")
        if isinstance(emb, dict):  # response_type embeddings_by_type
            emb = emb.get("float")
        if not isinstance(emb, list):
            raise _bad_body(ctx, "no embeddings")
        vectors = emb
    return embedding_list(vectors, ctx.model, tokens, ctx.state.get(ENCODING_KEY) == "base64")

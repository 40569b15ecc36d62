"""Gemini responses, streams and errors -> OpenAI shapes.

- `candidates[i]` -> `choices[i]`: text parts joined, thought parts (`thought: true`, sent only when
  the request set `thinkingConfig.includeThoughts`) -> `reasoning_content`, `functionCall` parts
  -> `tool_calls` (Gemini's `functionCall.id` when it sends one, else a stable `call_<hash>` of the
  request id, choice and position, the same in streamed and whole answers), a part's
  `thoughtSignature` -> `tool_calls[].extra_content.google.thought_signature`.
- `finishReason`: STOP -> stop (tool_calls when the candidate called functions), MAX_TOKENS ->
  length, SAFETY / RECITATION / BLOCKLIST / PROHIBITED_CONTENT / SPII / IMAGE_SAFETY -> content_filter
  (HTTP 200 from Gemini: the choice keeps whatever text came before the block). A prompt blocked
  by `promptFeedback.blockReason` (no candidates) is the client's refusal, not a gateway failure:
  a 400 `content_filter` naming the reason and the blocked categories (in a stream too: Gemini
  reports it in the first event, so it is a 400 before the first byte). MALFORMED_FUNCTION_CALL
  (and UNEXPECTED_TOOL_CALL) is a 502 `upstream_bad_response`, never a silent "stop".
- `usageMetadata`: prompt_tokens = promptTokenCount (+ toolUsePromptTokenCount), completion_tokens
  = candidatesTokenCount + thoughtsTokenCount (OpenAI counts reasoning inside completion tokens),
  prompt_tokens_details.cached_tokens = cachedContentTokenCount, completion_tokens_details.
  reasoning_tokens = thoughtsTokenCount (Gemini omits zero counts; they are reported as 0).
- Stream (`alt=sse`, events separated by CRLF CRLF): Gemini has no terminal event; the stream is
  complete when every candidate has a finishReason. EOF before that is a stream cut; an error
  object (`data: {"error": ...}`, or the bare JSON `{"error": {"code": 499, "status": "CANCELLED"}}`
  Gemini writes without a `data:` prefix) is mapped like an error response, also after the last
  finishReason (`[DONE]` goes out only at EOF).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from serve_app import errors as E
from serve_app.errors import UpstreamError

from ..base import CallContext, refused, require_json, stream_cut, upstream_error
from ..chunks import DONE, SSEJSONStream
from ..embeddings import embedding_list

_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "LANGUAGE": "stop",
    "OTHER": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
}
_MALFORMED = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"})


def tool_call_id(ctx: CallContext, choice: int, k: int) -> str:
    digest = hashlib.sha256(f"{ctx.request_id}:{choice}:{k}".encode()).hexdigest()[:24]
    return f"call_{digest}"


def finish_reason(reason: str | None, called_tools: bool, provider: str) -> str:
    if reason in _MALFORMED:
        raise UpstreamError(502, f"provider {provider!r} produced an invalid function call ({reason})",
                            provider=provider, code="upstream_bad_response", error_class=E.SERVER)
    mapped = _FINISH.get(reason or "STOP", "stop")
    if mapped == "stop" and called_tools:
        return "tool_calls"
    return mapped


def usage(meta: Any) -> dict[str, Any] | None:
    if not isinstance(meta, dict):
        return None
    prompt = int(meta.get("promptTokenCount") or 0) + int(meta.get("toolUsePromptTokenCount") or 0)
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    completion = int(meta.get("candidatesTokenCount") or 0) + thoughts
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(meta.get("totalTokenCount") or prompt + completion),
        "prompt_tokens_details": {"cached_tokens": int(meta.get("cachedContentTokenCount") or 0)},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


def _tool_call(part: dict[str, Any], ctx: CallContext, choice: int, k: int) -> dict[str, Any]:
    fc = part["functionCall"]
    call: dict[str, Any] = {
        "id": fc.get("id") or tool_call_id(ctx, choice, k),
        "type": "function",
        "function": {"name": fc.get("name") or "", "arguments": orjson.dumps(fc.get("args") or {}).decode()},
    }
    sig = part.get("thoughtSignature") or fc.get("thoughtSignature")
    if sig:
        call["extra_content"] = {"google": {"thought_signature": sig}}
    return call


def _response_id(data: dict[str, Any], ctx: CallContext) -> str:
    return "chatcmpl-" + str(data.get("responseId") or ctx.request_id)


def chat_completion(payload: bytes, ctx: CallContext) -> bytes:
    data = require_json(payload, ctx.provider)
    if not isinstance(data, dict):
        raise UpstreamError(502, f"provider {ctx.provider!r} returned an unexpected body", provider=ctx.provider,
                            code="upstream_bad_response", error_class=E.SERVER)
    choices = []
    for pos, cand in enumerate(data.get("candidates") or []):
        index = int(cand.get("index", pos) or 0)
        texts: list[str] = []
        thoughts: list[str] = []
        calls: list[dict[str, Any]] = []
        for part in (cand.get("content") or {}).get("parts") or []:
            if part.get("thought"):
                if isinstance(part.get("text"), str):
                    thoughts.append(part["text"])
            elif "functionCall" in part:
                calls.append(_tool_call(part, ctx, index, len(calls)))
            elif isinstance(part.get("text"), str):
                texts.append(part["text"])
        reason = finish_reason(cand.get("finishReason"), bool(calls), ctx.provider)
        content = "".join(texts) if texts else (None if calls or reason == "content_filter" else "")
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        if thoughts:
            message["reasoning_content"] = "".join(thoughts)
        if calls:
            message["tool_calls"] = calls
        choices.append({"index": index, "message": message, "logprobs": None, "finish_reason": reason})
    if not choices:
        blocked = prompt_block(data, ctx.provider)
        if blocked is not None:
            raise blocked
        raise UpstreamError(502, f"provider {ctx.provider!r} returned no candidates", provider=ctx.provider,
                            code="upstream_bad_response", error_class=E.SERVER)
    out: dict[str, Any] = {
        "id": _response_id(data, ctx),
        "object": "chat.completion",
        "created": ctx.created,
        "model": data.get("modelVersion") or ctx.model,
        "choices": sorted(choices, key=lambda c: c["index"]),
    }
    u = usage(data.get("usageMetadata"))
    if u:
        out["usage"] = u
    return orjson.dumps(out)


def prompt_block(data: dict[str, Any], provider: str) -> UpstreamError | None:
    """The refusal for a response whose prompt Gemini blocked (`promptFeedback.blockReason`), or None."""
    feedback = data.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if not reason:
        return None
    categories = [str(r.get("category")) for r in feedback.get("safetyRatings") or []
                  if isinstance(r, dict) and r.get("blocked") and r.get("category")]
    detail = f"blockReason {reason}" + (": " + ", ".join(categories) if categories else "")
    return refused(provider, detail)


class GeminiStream(SSEJSONStream):
    """`streamGenerateContent?alt=sse` events -> OpenAI chat.completion.chunk SSE."""

    __slots__ = ("_finished", "_calls", "_seen")

    end_event = "finishReason"

    def __init__(self, ctx: CallContext) -> None:
        super().__init__(ctx)
        self._finished: set[int] = set()
        self._calls: dict[int, int] = {}  # choice -> tool calls sent
        self._seen = False

    def _stream_error(self, err: dict[str, Any]) -> UpstreamError:
        inner = err.get("error")
        code = inner.get("code") if isinstance(inner, dict) else None
        status = code if isinstance(code, int) and 400 <= code <= 599 else 500
        return gemini_error(status, {}, orjson.dumps(err), self.provider)

    def _event(self, obj: dict[str, Any], out: list[bytes]) -> None:
        if not self._seen:
            self._seen = True
            self.id = _response_id(obj, self.ctx)
            self.model = obj.get("modelVersion") or self.ctx.model
        u = usage(obj.get("usageMetadata"))
        if u:
            self.usage = u
        cands = obj.get("candidates") or []
        if not cands:
            blocked = prompt_block(obj, self.provider)
            if blocked is not None:
                raise blocked
        for pos, cand in enumerate(cands):
            index = int(cand.get("index", pos) or 0)
            self._role(out, index)
            for part in (cand.get("content") or {}).get("parts") or []:
                text = part.get("text")
                if part.get("thought"):
                    if isinstance(text, str) and text:
                        out.append(self._chunk({"reasoning_content": text}, index=index))
                elif "functionCall" in part:
                    k = self._calls.get(index, 0)
                    self._calls[index] = k + 1
                    call = _tool_call(part, self.ctx, index, k)
                    extra = {"extra_content": call["extra_content"]} if "extra_content" in call else {}
                    out.append(self._tool_start(k, call["id"], call["function"]["name"], index=index, **extra))
                    out.append(self._tool_arguments(k, call["function"]["arguments"], index=index))
                elif isinstance(text, str) and text:
                    out.append(self._content(text, index=index))
            reason = cand.get("finishReason")
            if reason and index not in self._finished:
                mapped = finish_reason(reason, self._calls.get(index, 0) > 0, self.provider)
                self._finished.add(index)
                out.append(self._chunk({}, mapped, index=index))

    def _close(self) -> bytes:
        # No terminal event: complete once every candidate has finished, and only known at EOF
        # (an error object may still follow the last finishReason).
        if not self._opened or not self._opened <= self._finished:
            raise stream_cut(self.provider, "no finishReason")
        self.done = True
        tail = self._usage_chunk() if self.include_usage and self.usage else b""
        return tail + DONE


# --- errors ----------------------------------------------------------------------------------

_AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED", "ACCESS_TOKEN_EXPIRED"})
_CLASS_BY_STATUS = {
    "RESOURCE_EXHAUSTED": E.RATE_LIMITED,
    "UNAVAILABLE": E.OVERLOADED,
    "DEADLINE_EXCEEDED": E.TIMEOUT,
    "NOT_FOUND": E.NOT_FOUND,
    "INTERNAL": E.SERVER,
    "CANCELLED": E.SERVER,
}
_CONTEXT = ("exceeds the maximum number of tokens", "input token count", "too many tokens", "context length")


def gemini_error(status: int, headers: Mapping[str, str], payload: bytes, provider: str) -> UpstreamError:
    """`{"error": {"code", "message", "status", "details"}}` -> UpstreamError.

    Gemini answers an invalid API key with 400 INVALID_ARGUMENT (reason API_KEY_INVALID): that is
    an auth failure (502 upstream_auth_error), not the client's bad request. 429 carries its
    retry delay in `details[RetryInfo].retryDelay` rather than a Retry-After header.
    """
    try:
        data = orjson.loads(payload) if payload else {}
    except orjson.JSONDecodeError:
        data = {}
    if isinstance(data, list) and data:
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    err = err if isinstance(err, dict) else {}
    message = str(err.get("message") or "")
    gstatus = str(err.get("status") or "")
    reasons, delay = set(), None
    for d in err.get("details") or []:
        if isinstance(d, dict):
            if d.get("reason"):
                reasons.add(str(d["reason"]))
            if d.get("retryDelay"):
                delay = str(d["retryDelay"]).rstrip("s")
    if reasons & _AUTH_REASONS or gstatus in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return upstream_error(401 if status not in (401, 403) else status, headers, b"", provider)
    if delay and "retry-after" not in {k.lower() for k in headers}:
        headers = {**headers, "retry-after": delay}
    if status == 499 or gstatus == "CANCELLED":
        # Gemini cancelled the call itself (the gateway's client is still waiting): a server failure.
        status = 502
    cls = _CLASS_BY_STATUS.get(gstatus)
    lowered = message.lower()
    if status == 400 and any(m in lowered for m in _CONTEXT):
        cls = E.CONTEXT_LENGTH
    return upstream_error(status, headers, b"", provider, message=message or None,
                          code=gstatus.lower() or None, error_class=cls)


# --- embeddings --------------------------------------------------------------------------------

def embeddings_list(payload: bytes, ctx: CallContext, encoding: str | None) -> bytes:
    data = require_json(payload, ctx.provider)
    if isinstance(data, dict) and isinstance(data.get("embedding"), dict):
        vectors = [data["embedding"].get("values") or []]
    elif isinstance(data, dict) and isinstance(data.get("embeddings"), list):
        vectors = [(e or {}).get("values") or [] for e in data["embeddings"]]
    else:
        raise UpstreamError(502, f"provider {ctx.provider!r} returned no embeddings", provider=ctx.provider,
                            code="upstream_bad_response", error_class=E.SERVER)
    # Gemini's embedding responses carry no token counts.
    return embedding_list(vectors, ctx.model, 0, encoding == "base64")

"""Shared base for OpenAI-like provider types (azure-openai, mistral, groq, together, vllm, ray-serve,
ollama's /v1 endpoint): the `openai` adapter plus the normalisation their raw bodies need.

Their APIs speak the Chat Completions wire format, but what they send back is not always what the
official `openai` SDK accepts when it validates strictly, nor what clients that read
`chunk.choices[0]` expect. A type declares what differs (class attributes and small hooks); this
module does the work, the same way for all of them:

- requests: the fields the API does not take dropped or refused (`params`, params.py), fields
  renamed, `stream_options` only where it is understood;
- responses: `finish_reason` mapped onto OpenAI's set (`eos` -> stop, `model_length` -> length,
  `stop` with tool calls -> tool_calls, `error` -> an error), tool calls given `type`, `id`,
  string `arguments` and (in streams) a stable `index`, content-part lists flattened to text,
  unknown `service_tier` values dropped, missing `id`/`object`/`created`/`model` filled in, usage
  normalised (also from provider-specific places such as Groq's `x_groq.usage`);
- streams: chunks with no choices and no usage (Azure's `prompt_filter_results` chunk) dropped,
  usage moved to one usage-only chunk before `[DONE]` (kept only if the client asked), upstream
  error events (`data: {"error": ...}`, `event: error`, a bare JSON error line) and events that are
  not JSON turned into one OpenAI error event (chunks.read_event), a missing `[DONE]` reported as
  a cut;
- errors: provider error shapes (`{"error": {...}}`, `{"object": "error", "message": ...}`,
  FastAPI `detail` lists) read into OpenAI errors; non-OpenAI `type`s and numeric `code`s dropped.

Every stream event is parsed here (unlike the `openai` relay's fast path): these providers are the
ones whose events need fixing, and parsing an event costs a few microseconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from serve_app import errors as E
from serve_app.errors import GatewayError, UpstreamError

from .base import (
    Adapter,
    CallContext,
    UpstreamRequest,
    error_fields,
    json_body,
    require_json,
    upstream_error,
)
from .chunks import DONE, DONE_DATA, FramedStream, bad_event, error_status, read_event, sse
from .embeddings import conform_vector, floats_to_base64, remember_encoding, wants_base64
from .openai import OpenAIAdapter
from .params import NO_PARAMS, Params, apply_params

OPENAI_FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})
OPENAI_SERVICE_TIERS = frozenset({"auto", "default", "flex", "scale", "priority", "fast"})
OPENAI_ERROR_TYPES = frozenset({
    "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
    "rate_limit_error", "insufficient_quota", "server_error", "api_error", "timeout_error",
    "service_unavailable_error", "upstream_error", "conflict_error",
})


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def normalize_usage(usage: Any) -> dict[str, Any] | None:
    """OpenAI `usage` from an OpenAI-like one (extra keys such as Groq's timings are kept)."""
    if not isinstance(usage, dict):
        return None
    prompt = _int(usage.get("prompt_tokens", usage.get("input_tokens")))
    completion = _int(usage.get("completion_tokens", usage.get("output_tokens")))
    total = _int(usage.get("total_tokens")) or prompt + completion
    out = dict(usage)
    out["prompt_tokens"], out["completion_tokens"], out["total_tokens"] = prompt, completion, total
    for key in ("prompt_tokens_details", "completion_tokens_details"):
        if key in out and not isinstance(out[key], dict):
            if out[key] is not None:
                del out[key]
    cached = usage.get("cached_tokens")
    if isinstance(cached, int) and not (out.get("prompt_tokens_details") or {}).get("cached_tokens"):
        out["prompt_tokens_details"] = {**(out.get("prompt_tokens_details") or {}), "cached_tokens": cached}
    reasoning = usage.get("reasoning_tokens")
    if isinstance(reasoning, int) and not (out.get("completion_tokens_details") or {}).get("reasoning_tokens"):
        out["completion_tokens_details"] = {**(out.get("completion_tokens_details") or {}),
                                            "reasoning_tokens": reasoning}
    return out


def flatten_content(content: list[Any]) -> tuple[str | None, str | None]:
    """(text, reasoning) from a list of content parts (Mistral's text/thinking chunks and the like)."""
    texts: list[str] = []
    thoughts: list[str] = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict):
            kind = part.get("type")
            if kind == "thinking":
                inner = part.get("thinking")
                if isinstance(inner, list):
                    thoughts.extend(p.get("text", "") for p in inner if isinstance(p, dict))
                elif isinstance(inner, str):
                    thoughts.append(inner)
            elif isinstance(part.get("text"), str) and kind in (None, "text", "output_text"):
                texts.append(part["text"])
    return ("".join(texts) if texts or not thoughts else None), ("".join(thoughts) if thoughts else None)


def arguments_text(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    if arguments is None:
        return ""
    return orjson.dumps(arguments).decode()


def error_message(payload: bytes) -> tuple[str, Any]:
    """(readable message, parsed body) for provider error bodies, including validation lists."""
    try:
        data = orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        return payload[:500].decode("utf-8", "replace").strip(), None
    err = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, dict):
        msg = err.get("message")
        if msg is None:
            msg = err.get("detail", err.get("msg"))
    else:
        msg = err
    return _readable(msg), data


def _readable(msg: Any) -> str:
    if msg is None:
        return ""
    if isinstance(msg, str):
        return msg
    if isinstance(msg, dict):
        if "detail" in msg:
            return _readable(msg["detail"])
        if "message" in msg:
            return _readable(msg["message"])
        return orjson.dumps(msg).decode()[:500]
    if isinstance(msg, list):
        parts = []
        for item in msg:
            if isinstance(item, dict) and "msg" in item:
                loc = item.get("loc")
                where = ".".join(str(p) for p in loc if p != "body") if isinstance(loc, list) else ""
                parts.append(f"{where}: {item['msg']}" if where else str(item["msg"]))
            else:
                parts.append(_readable(item))
        return "; ".join(p for p in parts if p)
    return str(msg)


class OpenAICompatAdapter(OpenAIAdapter):
    """The `openai` adapter plus normalisation; subclasses configure it, they do not copy it."""

    forwards_metadata = False  # `metadata` with `store` is OpenAI's own feature
    # Send `stream_options.include_usage` (False: the provider reports usage anyway / rejects it).
    stream_usage_option: ClassVar[bool] = True
    # Provider finish_reason -> OpenAI's; values in `error_finish_reasons` end the call with an error.
    finish_reasons: ClassVar[Mapping[str, str]] = {
        "eos": "stop", "end_turn": "stop", "stop_sequence": "stop", "eot": "stop",
        "max_tokens": "length", "model_length": "length", "tool_use": "tool_calls",
    }
    error_finish_reasons: ClassVar[frozenset[str]] = frozenset({"error"})
    # The OpenAI fields the API does not take, dropped or refused (params.py).
    params: ClassVar[Params] = NO_PARAMS
    # Request fields renamed before sending (OpenAI name -> provider name).
    rename_fields: ClassVar[Mapping[str, str]] = {}
    # The upstream honours `encoding_format: "base64"` (False: the field is not sent, floats come
    # back and are encoded here when the client asked for base64).
    embeddings_base64: ClassVar[bool] = True
    embeddings_rename: ClassVar[Mapping[str, str]] = {}

    # -- requests -------------------------------------------------------------------------------
    def chat_url_for(self, ctx: CallContext) -> str:
        return self.chat_url

    def embeddings_url_for(self, ctx: CallContext) -> str:
        return self.embeddings_url

    def prepare_chat(self, body: dict[str, Any], ctx: CallContext, stream: bool) -> dict[str, Any]:
        """Hook: adjust the OpenAI request body for this provider (runs before encoding)."""
        apply_params(self.params, body, self.config.name, self.config.type, ctx.model)
        for old, new in self.rename_fields.items():
            if old in body:
                value = body.pop(old)
                if value is not None and new not in body:
                    body[new] = value
        return body

    def chat_request(self, body: dict[str, Any], ctx: CallContext, stream: bool) -> UpstreamRequest:
        body = self.prepare_chat(body, ctx, stream)
        if stream and not self.stream_usage_option:
            body.pop("stream_options", None)
            body["model"] = ctx.model
            req = UpstreamRequest("POST", self.chat_url, self.headers, json_body(body))
        else:
            req = super().chat_request(body, ctx, stream)
        req.url = self.chat_url_for(ctx)
        return req

    def embeddings_request(self, body: dict[str, Any], ctx: CallContext) -> UpstreamRequest:
        if not self.supports_embeddings:
            return Adapter.embeddings_request(self, body, ctx)  # the base's clear 400
        remember_encoding(ctx, body)
        if not self.embeddings_base64:  # floats are every API's default; encoded on the way back
            body.pop("encoding_format", None)
        for old, new in self.embeddings_rename.items():
            if old in body:
                body[new] = body.pop(old)
        req = super().embeddings_request(body, ctx)
        req.url = self.embeddings_url_for(ctx)
        return req

    # -- responses ------------------------------------------------------------------------------
    def chat_response(self, status: int, payload: bytes, ctx: CallContext) -> bytes:
        data = require_json(payload, ctx.provider)
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            if isinstance(data, dict) and data.get("error"):
                raise self.error(502, {}, payload, ctx)
            raise UpstreamError(502, f"provider {ctx.provider!r} returned a body without choices",
                                provider=ctx.provider, code="upstream_bad_response", error_class=E.SERVER)
        return orjson.dumps(self.normalize_completion(data, ctx))

    def normalize_completion(self, data: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        self._fill_meta(data, ctx, "chat.completion")
        choices = []
        for pos, choice in enumerate(data["choices"]):
            if not isinstance(choice, dict):
                continue
            if not isinstance(choice.get("index"), int):
                choice["index"] = pos
            msg = choice.get("message")
            if not isinstance(msg, dict):
                msg = {"content": choice.get("text") if isinstance(choice.get("text"), str) else None}
                choice["message"] = msg
            msg["role"] = "assistant"
            content = msg.get("content")
            if isinstance(content, list):
                msg["content"], reasoning = flatten_content(content)
                if reasoning and not msg.get("reasoning_content"):
                    msg["reasoning_content"] = reasoning
            elif content is not None and not isinstance(content, str):
                msg["content"] = str(content)
            calls = msg.get("tool_calls")
            saw_tools = False
            if isinstance(calls, list):
                fixed = [self._fix_tool_call(tc, ctx, choice["index"], i) for i, tc in enumerate(calls)
                         if isinstance(tc, dict)]
                msg["tool_calls"] = fixed or None
                saw_tools = bool(fixed)
                if saw_tools and msg.get("content") == "":
                    msg["content"] = None
            elif calls is not None:
                msg["tool_calls"] = None
            choice["finish_reason"] = self.map_finish(choice.get("finish_reason"), saw_tools, ctx, stream=False)
            if "logprobs" in choice and not isinstance(choice["logprobs"], dict):
                choice["logprobs"] = None
            choices.append(choice)
        data["choices"] = choices
        if "usage" in data:
            data["usage"] = normalize_usage(data["usage"])
            if data["usage"] is None:
                del data["usage"]
        return data

    def _fill_meta(self, data: dict[str, Any], ctx: CallContext, obj: str) -> None:
        if not isinstance(data.get("id"), str) or not data["id"]:
            data["id"] = f"chatcmpl-{ctx.request_id}"
        data["object"] = obj
        if not isinstance(data.get("created"), int) or isinstance(data.get("created"), bool):
            data["created"] = ctx.created
        if not isinstance(data.get("model"), str) or not data["model"]:
            data["model"] = ctx.model
        tier = data.get("service_tier")
        if tier is not None and tier not in OPENAI_SERVICE_TIERS:
            del data["service_tier"]
        fp = data.get("system_fingerprint")
        if fp is not None and not isinstance(fp, str):
            del data["system_fingerprint"]

    def _fix_tool_call(self, tc: dict[str, Any], ctx: CallContext, choice: int, pos: int) -> dict[str, Any]:
        tc["type"] = "function"
        if not isinstance(tc.get("id"), str) or not tc["id"]:
            tc["id"] = tool_call_id(ctx, choice, pos)
        fn = tc.get("function")
        if not isinstance(fn, dict):
            fn = tc["function"] = {"name": "", "arguments": ""}
        fn["arguments"] = arguments_text(fn.get("arguments"))
        if not isinstance(fn.get("name"), str):
            fn["name"] = str(fn.get("name") or "")
        return tc

    def map_finish(self, reason: Any, saw_tools: bool, ctx: CallContext, stream: bool) -> str | None:
        """OpenAI finish_reason for a provider one; raises for the provider's error reasons."""
        if reason is None:
            if stream:
                return None
            reason = "tool_calls" if saw_tools else "stop"
        reason = str(reason)
        if reason in self.error_finish_reasons:
            raise UpstreamError(502, f"provider {ctx.provider!r} ended the generation with an error "
                                     f"(finish_reason {reason!r})", provider=ctx.provider,
                                code="upstream_generation_error", error_class=E.SERVER)
        if reason not in OPENAI_FINISH_REASONS:
            reason = self.finish_reasons.get(reason, "stop")
        if reason == "stop" and saw_tools:
            reason = "tool_calls"
        return reason

    def chat_stream(self, ctx: CallContext) -> CompatStream:  # type: ignore[override]
        return CompatStream(self, ctx)

    def stream_usage(self, chunk: dict[str, Any]) -> Any:
        """Hook: pop and return the usage a stream chunk carries (None when it has none)."""
        usage = chunk.pop("usage", None)
        return usage

    def embeddings_response(self, status: int, payload: bytes, ctx: CallContext) -> bytes:
        data = require_json(payload, ctx.provider)
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise UpstreamError(502, f"provider {ctx.provider!r} returned embeddings without data",
                                provider=ctx.provider, code="upstream_bad_response", error_class=E.SERVER)
        want_base64 = wants_base64(ctx)
        items = []
        for pos, item in enumerate(data["data"]):
            if not isinstance(item, dict):
                continue
            item["object"] = "embedding"
            if not isinstance(item.get("index"), int):
                item["index"] = pos
            if "embedding" in item:
                item["embedding"] = conform_vector(item["embedding"], want_base64)
            items.append(item)
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        prompt = _int(usage.get("prompt_tokens"))
        data.update(object="list", data=items,
                    usage={**usage, "prompt_tokens": prompt, "total_tokens": _int(usage.get("total_tokens")) or prompt})
        if not isinstance(data.get("model"), str) or not data["model"]:
            data["model"] = ctx.model
        return orjson.dumps(data)

    # -- errors ---------------------------------------------------------------------------------
    def classify_error(self, status: int, message: str, code: str | None, data: Any) -> str | None:
        """Hook: the error class when the provider's body says more than its status (None: default)."""
        return None

    def error(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> UpstreamError:
        return provider_error(status, headers, payload, ctx.provider, self.classify_error)

    def stream_error(self, event: dict[str, Any], ctx: CallContext) -> UpstreamError:
        """The error an in-stream `{"error": ...}` event stands for (its status, or the usual one
        for its OpenAI-style type / code), mapped like an error response."""
        return self.error(error_status(event), {}, orjson.dumps(event), ctx)


def provider_error(status: int, headers: Mapping[str, str], payload: bytes, provider: str,
                   classify: Any = None) -> UpstreamError:
    """An OpenAI error for a provider error body, by the foundation's status rules.

    Reads the common shapes (see `error_message`); `classify(status, message, code, data)` may name
    the error class when the body says more than the status. Numeric provider codes and
    non-OpenAI `type`s are dropped (the OpenAI SDK and clients match on OpenAI's values).
    """
    message, data = error_message(payload)
    _, _, code, _ = error_fields(payload)
    if code is not None and code.isdigit():
        code = None
    error_class = classify(status, message, code, data) if classify is not None else None
    err = upstream_error(status, headers, payload, provider, message=message or None, code=code,
                         error_class=error_class)
    if err.code is not None and err.code.isdigit():
        err.code = None
    if err.type not in OPENAI_ERROR_TYPES:
        err.type = GatewayError(err.status, "").type
    return err


def tool_call_id(ctx: CallContext, choice: int, pos: int) -> str:
    """A stable id for a tool call the provider sent without one."""
    digest = hashlib.sha1(f"{ctx.request_id}:{choice}:{pos}".encode()).hexdigest()[:24]
    return f"call_{digest}"


class _ChoiceState:
    __slots__ = ("role_sent", "by_id", "by_upstream", "next_index", "saw_tools")

    def __init__(self) -> None:
        self.role_sent = False
        self.by_id: dict[str, int] = {}
        self.by_upstream: dict[int, int] = {}
        self.next_index = 0
        self.saw_tools = False


class CompatStream(FramedStream):
    """OpenAI-like SSE in, normalised OpenAI SSE out (see the module docstring)."""

    __slots__ = ("adapter", "ctx", "provider", "keep_usage_chunk", "usage", "done", "errored", "failure",
                 "_pending", "_choices", "_meta")

    cut_detail = "no [DONE] event"

    def __init__(self, adapter: OpenAICompatAdapter, ctx: CallContext) -> None:
        self.adapter = adapter
        self.ctx = ctx
        self.provider = ctx.provider
        self.keep_usage_chunk = ctx.include_usage
        self.usage: dict[str, Any] | None = None
        self.done = False
        self.errored = False
        self.failure: UpstreamError | None = None
        self._pending = b""
        self._choices: dict[int, _ChoiceState] = {}
        self._meta: dict[str, Any] | None = None

    def _split(self, data: bytes) -> list[bytes]:
        if b"\r" in data:
            if data.endswith(b"\r"):  # a CRLF split across reads: wait for the \n
                self._pending = data
                return []
            data = data.replace(b"\r\n", b"\n")
        events = data.split(b"\n\n")
        self._pending = events.pop()
        return events

    def _rest(self, pending: bytes) -> bytes:
        return pending.replace(b"\r\n", b"\n").strip()

    # -- one SSE event ----------------------------------------------------------------------------
    def _frame(self, event: bytes, out: list[bytes]) -> None:
        try:
            _, obj, err = read_event(event, self.provider)
        except UpstreamError as exc:  # not JSON, not SSE: nothing a client could use
            self._fail(exc, out)
            return
        if err is not None:
            self._fail(self.adapter.stream_error(err, self.ctx), out)
            return
        if obj is None:
            return  # comments (": keep-alive"), bare `event:` lines
        if obj is DONE_DATA:
            if self.keep_usage_chunk and self.usage is not None:
                out.append(self._usage_event())
            out.append(DONE)
            self.done = True
            return
        if not isinstance(obj, dict):
            self._fail(bad_event(self.provider, "a stream event that is not a JSON object"), out)
            return
        chunk = self._chunk(obj)
        if chunk is not None:
            out.append(sse(chunk))
        if self.failure is not None:  # an error finish_reason: what came with it is delivered first
            self._fail(self.failure, out)

    def _fail(self, err: UpstreamError, out: list[bytes]) -> None:
        self.errored = True
        self.failure = err
        out.append(E.sse_error_event(err))

    def _usage_event(self) -> bytes:
        meta = self._meta or {"id": f"chatcmpl-{self.ctx.request_id}", "created": self.ctx.created,
                              "model": self.ctx.model}
        return sse({**meta, "object": "chat.completion.chunk", "choices": [], "usage": self.usage})

    def _chunk(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        adapter = self.adapter
        usage = normalize_usage(adapter.stream_usage(obj))
        if usage is not None:
            self.usage = usage
        raw = obj.get("choices")
        choices = []
        if isinstance(raw, list):
            for pos, choice in enumerate(raw):
                if isinstance(choice, dict):
                    fixed = self._choice(choice, pos)
                    if fixed is not None:
                        choices.append(fixed)
        if not choices:
            return None  # usage-only (re-sent before [DONE]) or filter-result chunks
        obj["choices"] = choices
        meta = self._meta
        if meta is not None:  # every chunk of a stream has the same id, created and model
            if not isinstance(obj.get("id"), str) or not obj["id"]:
                obj["id"] = meta["id"]
            if not isinstance(obj.get("created"), int):
                obj["created"] = meta["created"]
            if not isinstance(obj.get("model"), str) or not obj["model"]:
                obj["model"] = meta["model"]
        adapter._fill_meta(obj, self.ctx, "chat.completion.chunk")
        if meta is None:
            self._meta = {"id": obj["id"], "created": obj["created"], "model": obj["model"]}
        return obj

    def _choice(self, choice: dict[str, Any], pos: int) -> dict[str, Any] | None:
        index = choice.get("index")
        if not isinstance(index, int):
            index = choice["index"] = pos
        delta = choice.get("delta")
        reason = choice.get("finish_reason")
        if not isinstance(delta, dict):
            if reason is None:
                return None  # annotation-only choice (e.g. Azure's content_filter_offsets)
            delta = choice["delta"] = {}
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _ChoiceState()
        if not state.role_sent:
            delta["role"] = "assistant"
            state.role_sent = True
        elif "role" in delta and delta["role"] not in (None, "assistant"):
            del delta["role"]
        content = delta.get("content")
        if isinstance(content, list):
            delta["content"], reasoning = flatten_content(content)
            if reasoning and not delta.get("reasoning_content"):
                delta["reasoning_content"] = reasoning
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            fixed = [self._tool_delta(tc, state, index, i) for i, tc in enumerate(calls) if isinstance(tc, dict)]
            if fixed:
                delta["tool_calls"] = fixed
            else:
                del delta["tool_calls"]
        elif "tool_calls" in delta and calls is not None:
            del delta["tool_calls"]
        if reason is not None:
            try:
                choice["finish_reason"] = self.adapter.map_finish(reason, state.saw_tools, self.ctx, stream=True)
            except UpstreamError as exc:  # never shown as a clean finish; the stream fails after this chunk
                choice["finish_reason"] = None
                self.failure = exc
        elif "finish_reason" not in choice:
            choice["finish_reason"] = None
        if "logprobs" in choice and not isinstance(choice["logprobs"], dict):
            choice["logprobs"] = None
        return choice

    def _tool_delta(self, tc: dict[str, Any], state: _ChoiceState, choice: int, pos: int) -> dict[str, Any]:
        up = tc.get("index")
        up = up if isinstance(up, int) else pos
        call_id = tc.get("id")
        new = False
        if isinstance(call_id, str) and call_id:
            ours = state.by_id.get(call_id)
            if ours is None:
                ours = state.by_id[call_id] = state.next_index
                state.next_index += 1
                new = True
            state.by_upstream[up] = ours
        else:
            ours = state.by_upstream.get(up)
            if ours is None:  # a call that starts without an id: give it one
                ours = state.by_upstream[up] = state.next_index
                state.next_index += 1
                tc["id"] = tool_call_id(self.ctx, choice, ours)
                state.by_id[tc["id"]] = ours
                new = True
            else:
                tc.pop("id", None)
        tc["index"] = ours
        if new:
            tc["type"] = "function"
        elif "type" in tc and tc["type"] != "function":
            del tc["type"]
        fn = tc.get("function")
        if isinstance(fn, dict):
            if "arguments" in fn and not isinstance(fn["arguments"], str):
                fn["arguments"] = arguments_text(fn["arguments"])
            if new and not isinstance(fn.get("name"), str):
                fn["name"] = str(fn.get("name") or "")
            if new and "arguments" not in fn:
                fn["arguments"] = ""
        elif new:
            tc["function"] = {"name": "", "arguments": ""}
        state.saw_tools = True
        return tc


__all__ = [
    "CompatStream",
    "OpenAICompatAdapter",
    "arguments_text",
    "error_message",
    "flatten_content",
    "normalize_usage",
    "provider_error",
    "tool_call_id",
]

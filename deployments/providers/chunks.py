"""OpenAI chat.completion.chunk SSE for the stream translators that write their chunks themselves
(anthropic, cohere, google, bedrock, ollama's native API), and the one-choice chat.completion body
their whole answers become (`completion`).

`ChunkStream` keeps what each of them holds per stream (id, created, model, usage, which choices
have had their role chunk, a failure held back) and writes the events in OpenAI's order: the role
chunk (`{"role": "assistant", "content": ""}`), content and tool-call deltas (id, type and name
once, then argument pieces), the finish chunk, the usage-only chunk (`choices: []`) when the client
asked for it (`ctx.include_usage`), and `data: [DONE]`.

A failure found while translating is delivered after the chunks that came before it in the same
read (`_deliver`): those are returned, and the failure is raised on the next `feed` or `finish`.

`read_event` is the one reader of an SSE event block for every SSE stream translator (Anthropic,
Cohere, Gemini, the OpenAI-like types, the `openai` relay when an event mentions an error). It is
where "fails loudly" lives: whatever is not a well-formed content event is an error object, so
each translator only maps that object to its provider's error (as it maps non-streamed errors):

- `event: error` (whatever its data), data that is `{"error": ...}` (or `[{"error": ...}]`);
- lines that are no SSE field: a bare JSON object such as the `{"error": {"code": 499, ...}}`
  Gemini writes after its data events, or an HTML error page from a proxy;
- data, or stray lines, that are not JSON: `upstream_bad_response`.

`SSEJSONStream` adds the reading side for providers whose streams are SSE with one JSON object per
event (Anthropic, Cohere, Gemini): events split on blank lines (LF or CRLF), a last event without
its blank line read at EOF, an error (above) raised after the chunks before it, and EOF before the
provider's terminal event a stream cut. A subclass names its terminal event, translates events and
maps error objects (`_stream_error`).
"""

from __future__ import annotations

import abc

from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar, TypeVar

import orjson

from serve_app import errors as E
from serve_app.errors import UpstreamError

from .base import CallContext, stream_cut, upstream_error

DONE = b"data: [DONE]\n\n"
DONE_DATA = b"[DONE]"
_FIELDS = frozenset({b"data", b"event", b"id", b"retry"})

T = TypeVar("T")


def sse(obj: Any) -> bytes:
    """One SSE event carrying `obj` as JSON."""
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def completion(ctx: CallContext, message: dict[str, Any], finish_reason: str, *, id: str | None = None,
               model: str | None = None, usage: dict[str, Any] | None = None) -> bytes:
    """The whole-answer counterpart: a one-choice chat.completion (id and model default to the call's)."""
    out: dict[str, Any] = {
        "id": id or f"chatcmpl-{ctx.request_id}",
        "object": "chat.completion",
        "created": ctx.created,
        "model": model or ctx.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage:
        out["usage"] = usage
    return orjson.dumps(out)


# --- reading SSE: content or a failure ---------------------------------------------------------

def bad_event(provider: str, what: str = "a stream event that is not JSON") -> UpstreamError:
    return UpstreamError(502, f"provider {provider!r} sent {what}", provider=provider,
                         code="upstream_bad_response", error_class=E.SERVER)


def error_in(obj: Any) -> Any:
    """The error object a stream payload is, or None: `{"error": ...}` with no content beside it
    (also as a one-element list, the way Gemini's JSON-array streams wrap it)."""
    if isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    if isinstance(obj, dict) and obj.get("error") and not obj.get("choices") and not obj.get("candidates"):
        return obj
    return None


def read_event(raw: bytes, provider: str) -> tuple[bytes | None, Any, Any]:
    """(event name, data, error object) of one SSE event block (LF line ends, no blank line).

    data is the parsed JSON of the `data:` lines, DONE_DATA for `[DONE]`, None for a block of
    comments only. When the event is a failure (see the module docstring) data is None and the
    error object is `{"error": ...}` as the provider sent it (an `event: error` whose data has no
    `error` key is wrapped). Raises `bad_event` for data or stray lines that are not JSON.
    """
    name: bytes | None = None
    data: list[bytes] = []
    stray: list[bytes] = []
    for line in raw.split(b"\n"):
        if not line or line[0] == 58:  # b":" starts a comment (keep-alives)
            continue
        field, sep, value = line.partition(b":")
        if sep and field in _FIELDS:
            if field == b"data":
                data.append(value[1:] if value[:1] == b" " else value)
            elif field == b"event":
                name = value.strip()
        elif line.strip():
            stray.append(line)
    if stray:  # not SSE at all: a bare JSON error object, or garbage
        try:
            obj = orjson.loads(b"\n".join(stray))
        except orjson.JSONDecodeError:
            raise bad_event(provider, "a stream line that is not an SSE event") from None
        err = error_in(obj)
        return name, None, err if err is not None else {"error": obj}
    if not data:
        return name, None, ({"error": {}} if name == b"error" else None)
    payload = b"\n".join(data).strip()
    if payload == DONE_DATA:
        return name, DONE_DATA, None
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        if name == b"error":
            return name, None, {"error": {"message": payload[:500].decode("utf-8", "replace")}}
        raise bad_event(provider) from None
    err = error_in(obj)
    if err is None and name == b"error":
        err = obj if isinstance(obj, dict) and "error" in obj else {"error": obj}
    if err is not None:
        return name, None, err
    return name, obj, None


def error_status(err: Any, default: int = 500) -> int:
    """The HTTP status an in-stream error object implies: its own (`status_code`, `status`, `code`
    between 400 and 599), else one inferred from an OpenAI-style `type` / `code`, else `default`."""
    inner = err.get("error") if isinstance(err, dict) else None
    if not isinstance(inner, dict):
        return default
    for key in ("status_code", "status", "code"):
        value = inner.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599:
            return value
    kind = f"{inner.get('type') or ''} {inner.get('code') or ''}"
    if "rate_limit" in kind:
        return 429
    if "invalid_request" in kind:
        return 400
    if "overloaded" in kind:
        return 503
    return default


def generic_stream_error(err: Any, provider: str) -> UpstreamError:
    """An in-stream error object as an OpenAI error, by the common `{"error": {...}}` reading
    (numeric provider codes dropped: clients match on OpenAI's string codes)."""
    out = upstream_error(error_status(err), {}, orjson.dumps(err), provider)
    if out.code is not None and out.code.isdigit():
        out.code = None
    return out


def reasoning_fields(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """Message fields for reasoning blocks (`{"type": "thinking", "thinking", "signature"}` /
    `{"type": "redacted_thinking", "data"}`): `reasoning_content`, the text (the field vLLM,
    DeepSeek and OpenRouter clients read), and `thinking_blocks`, the blocks themselves (LiteLLM's
    field), which a client sends back on the assistant message (request_parts.thinking_blocks)."""
    text = "".join(b.get("thinking") or "" for b in blocks if b["type"] == "thinking")
    return {"reasoning_content": text, "thinking_blocks": blocks}


class ChunkStream:
    """Writes one stream's OpenAI chunks; subclasses read their provider's events and call these."""

    __slots__ = ("ctx", "provider", "include_usage", "created", "model", "id", "usage", "done", "_opened",
                 "_error")

    def __init__(self, ctx: CallContext) -> None:
        self.ctx = ctx
        self.provider = ctx.provider
        self.include_usage = ctx.include_usage
        self.created = ctx.created
        self.model = ctx.model  # a subclass may replace id and model from the provider's first event
        self.id = f"chatcmpl-{ctx.request_id}"
        self.usage: dict[str, Any] | None = None
        self.done = False
        self._opened: set[int] = set()  # choices that have had their role chunk
        self._error: UpstreamError | None = None  # raised on the next call, after the chunks before it

    # -- chunks ----------------------------------------------------------------------------------
    def _head(self) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}

    def _choices(self, choices: list[dict[str, Any]]) -> bytes:
        return sse({**self._head(), "choices": choices})

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, index: int = 0) -> bytes:
        return self._choices([{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}])

    def _role_chunk(self, index: int = 0) -> bytes:
        self._opened.add(index)
        return self._chunk({"role": "assistant", "content": ""}, index=index)

    def _role(self, out: list[bytes], index: int = 0) -> None:
        """The role chunk, once per choice, before anything else the choice sends."""
        if index not in self._opened:
            out.append(self._role_chunk(index))

    def _content(self, text: str, index: int = 0) -> bytes:
        return self._chunk({"content": text}, index=index)

    def _tool_start(self, k: int, call_id: Any, name: Any, arguments: str = "", index: int = 0,
                    **extra: Any) -> bytes:
        """The first delta of tool call `k`: its id, type and name (and arguments, when they come whole)."""
        function = {"name": name, "arguments": arguments}
        call = {"index": k, "id": call_id, "type": "function", "function": function, **extra}
        return self._chunk({"tool_calls": [call]}, index=index)

    def _tool_arguments(self, k: int, arguments: str, index: int = 0) -> bytes:
        return self._chunk({"tool_calls": [{"index": k, "function": {"arguments": arguments}}]}, index=index)

    def _usage_chunk(self) -> bytes:
        return sse({**self._head(), "choices": [], "usage": self.usage})

    def _end(self, out: list[bytes], finish: str, usage: dict[str, Any] | None) -> None:
        """Close the stream: the finish chunk, the usage chunk when asked for (and known), [DONE]."""
        out.append(self._chunk({}, finish))
        self.usage = usage
        if self.include_usage and usage is not None:
            out.append(self._usage_chunk())
        out.append(DONE)
        self.done = True

    # -- failures --------------------------------------------------------------------------------
    def _raise_held(self) -> None:
        if self._error is not None:
            raise self._error

    def _deliver(self, events: Iterable[T], handle: Callable[[T, list[bytes]], None]) -> bytes:
        """`handle` each event. An UpstreamError ends the stream: it is raised now if nothing came
        before it, else held back so the client gets the chunks before it first; either way every
        later `feed` / `finish` raises it again (`_raise_held`)."""
        out: list[bytes] = []
        try:
            for event in events:
                handle(event, out)
        except UpstreamError as exc:
            self._error = exc
            if not out:
                raise
        return b"".join(out)


class SSEJSONStream(ChunkStream, abc.ABC):
    """A provider SSE stream of JSON events -> OpenAI chunks; `_event` translates one event."""

    __slots__ = ("_buf",)

    end_event: ClassVar[str]  # the provider's terminal event (named in the stream-cut error)

    def __init__(self, ctx: CallContext) -> None:
        super().__init__(ctx)
        self._buf = b""

    def feed(self, chunk: bytes) -> bytes:
        self._raise_held()
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        cut = buf.rfind(b"\n\n")
        if cut < 0:
            self._buf = buf
            return b""
        complete, self._buf = buf[:cut], buf[cut + 2:]
        return self._events(complete)

    def finish(self) -> bytes:
        out = b""
        if self._buf.strip() and self._error is None and not self.done:
            out = self._events(self._buf)  # a last event without its blank line
            self._buf = b""
        self._raise_held()
        return out + self._close()

    def _close(self) -> bytes:
        """At EOF, after the last event: what is left to send (the stream ended itself: nothing)."""
        if not self.done:
            raise stream_cut(self.provider, f"no {self.end_event} event")
        return b""

    def _events(self, complete: bytes) -> bytes:
        return self._deliver(self._parsed(complete), self._event)

    def _parsed(self, complete: bytes) -> Iterator[dict[str, Any]]:
        for raw in complete.split(b"\n\n"):
            if self.done:
                return  # whatever follows the terminal event is ignored
            _, data, err = read_event(raw, self.provider)
            if err is not None:
                raise self._stream_error(err)
            if isinstance(data, dict):
                yield data
            elif isinstance(data, list):  # a JSON array of events (Gemini without alt=sse)
                yield from (d for d in data if isinstance(d, dict))

    def _stream_error(self, err: dict[str, Any]) -> UpstreamError:
        """The OpenAI error for an in-stream error object (`{"error": ...}`); providers override."""
        return generic_stream_error(err, self.provider)

    @abc.abstractmethod
    def _event(self, event: dict[str, Any], out: list[bytes]) -> None:
        ...


class FramedStream(abc.ABC):
    """Mixin for translators that end a failed stream with an in-band error event (ollama's native
    NDJSON, the OpenAI-like SSE of openai_compat) rather than by raising: frames are cut from the
    bytes (`_split`, which keeps the partial tail in `_pending`) and translated one by one
    (`_frame`) until the terminal frame (`done`) or an error event (`errored`); nothing is read after
    either, and EOF before both is a stream cut. The subclass holds `provider`, `done`, `errored`
    and `_pending`."""

    __slots__ = ()

    cut_detail: ClassVar[str]  # what was missing at EOF (the stream-cut error says it)
    provider: str
    done: bool
    errored: bool
    _pending: bytes

    def feed(self, chunk: bytes) -> bytes:
        if self.done or self.errored:
            return b""
        out: list[bytes] = []
        for frame in self._split(self._pending + chunk if self._pending else chunk):
            if self.done or self.errored:
                break
            self._frame(frame, out)
        return b"".join(out)

    def finish(self) -> bytes:
        out: list[bytes] = []
        rest, self._pending = self._rest(self._pending), b""
        if rest and not (self.done or self.errored):
            self._frame(rest, out)
        if self.done or self.errored:
            return b"".join(out)
        raise stream_cut(self.provider, self.cut_detail)

    @abc.abstractmethod
    def _split(self, data: bytes) -> list[bytes]:
        """The whole frames in `data`; the partial tail goes to `_pending`."""
        ...

    @abc.abstractmethod
    def _rest(self, pending: bytes) -> bytes:
        """What is left at EOF, as a last frame (b"": nothing)."""
        ...

    @abc.abstractmethod
    def _frame(self, frame: bytes, out: list[bytes]) -> None:
        ...


__all__ = ["DONE", "DONE_DATA", "ChunkStream", "FramedStream", "SSEJSONStream", "bad_event", "completion",
           "error_in", "error_status", "generic_stream_error", "read_event", "reasoning_fields", "sse"]

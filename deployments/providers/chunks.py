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

`SSEJSONStream` adds the reading side for providers whose streams are SSE with one JSON object per
event (Anthropic, Cohere): events split on blank lines (LF or CRLF), a last event without its blank
line read at EOF, an event that is not JSON an `upstream_bad_response` error, and EOF before the
provider's terminal event a stream cut. A subclass names its terminal event and translates events.
"""

from __future__ import annotations

import abc

from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar, TypeVar

import orjson

from serve_app import errors as E
from serve_app.errors import UpstreamError

from .base import CallContext, stream_cut

DONE = b"data: [DONE]\n\n"

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
        if not self.done:
            raise stream_cut(self.provider, f"no {self.end_event} event")
        return out

    def _events(self, complete: bytes) -> bytes:
        return self._deliver(self._parsed(complete), self._event)

    def _parsed(self, complete: bytes) -> Iterator[dict[str, Any]]:
        for raw in complete.split(b"\n\n"):
            if self.done:
                return  # whatever follows the terminal event is ignored
            data = self._data(raw)
            if data is None:
                continue
            try:
                event = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise UpstreamError(502, f"provider {self.provider!r} sent a stream event that is not JSON",
                                    provider=self.provider, code="upstream_bad_response",
                                    error_class=E.SERVER) from None
            if isinstance(event, dict):
                yield event

    def _data(self, raw: bytes) -> bytes | None:
        """The data of one SSE event (its `data:` lines joined), or None for comments/empty events."""
        lines = [line[5:].lstrip(b" ") for line in raw.split(b"\n") if line.startswith(b"data:")]
        if not lines:
            return None
        joined = b"\n".join(lines)
        return joined if joined.strip() else None

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


__all__ = ["DONE", "ChunkStream", "FramedStream", "SSEJSONStream", "completion", "sse"]

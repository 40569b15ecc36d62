"""Output checks on a stream: run on the accumulated text as chunks arrive; text leaves once checked.

Every `stream_window` characters of a choice's text (and at its end) the plan's output checks
run on everything received so far; a blocking failure ends the stream with one error event
(status 422 in the record). Text is released to the client only up to the last checked point,
so a window is also the largest burst held back (0: check on every chunk). When output is
masked (or PII placeholders are restored), a further `HOLD` characters stay back and the cut
falls on whitespace outside any match, so a phone number or a keyword split across chunks is
masked whole. `response_format` runs at the end (a stream cannot be retried once it started:
a `retry` failure there ends it like `block`). Chunks are rewritten only in `delta.content`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from serve_app.lifecycle import aclose

from .base import SpanCheck, Subject
from .engine import STOPS, Bound, Runner
from .text import restore

HOLD = 48
END_ONLY = frozenset({"response_format"})  # checks that judge a whole answer


class ChoiceText:
    __slots__ = ("raw", "checked", "emitted", "done")

    def __init__(self) -> None:
        self.raw = ""
        self.checked = 0  # raw[:checked] passed the checks
        self.emitted = 0  # raw[:emitted] went to the client
        self.done = False


class StreamGuard:
    def __init__(self, bounds: list[Bound], runner: Runner, request: dict[str, Any], entities: dict[str, str],
                 window: int, masks: bool, unmask: bool,
                 on_findings: Callable[[list[Any], bool], Awaitable[None]]) -> None:
        self.during = [b for b in bounds if b.type not in END_ONLY]
        self.at_end = bounds
        self.maskers = [b for b in bounds if b.action == "mask" and isinstance(b.check, SpanCheck)]
        self.runner, self.request, self.entities = runner, request, entities
        self.window, self.hold, self.unmask = window, HOLD if masks else 0, unmask
        self.on_findings = on_findings  # records verdicts; raises the violation when told to
        self.choices: dict[int, ChoiceText] = {}
        self.last: dict[str, Any] = {}  # the last chunk's envelope, for a closing chunk of our own

    async def _check(self, st: ChoiceText, final: bool) -> None:
        message = {"role": "assistant", "content": st.raw}
        subject: Subject = {"phase": "output", "texts": [st.raw], "request": self.request,
                            "entities": self.entities,
                            "response": {"choices": [{"index": 0, "message": message}]}}
        results = await self.runner.run(self.at_end if final else self.during, subject)
        failed = any(not f.ok and b.action in STOPS for b, f in results)
        if final or failed:
            await self.on_findings(results, failed)
        st.checked = len(st.raw)

    def _cut(self, st: ChoiceText, final: bool) -> int:
        if final or not self.hold:
            return st.checked
        limit = st.checked - self.hold
        if limit <= st.emitted:
            return st.emitted
        region = st.raw[st.emitted:st.checked]
        spans = [(s + st.emitted, e + st.emitted) for b in self.maskers for s, e, _ in b.check.spans(region)]
        cut = limit
        while cut > st.emitted and (not st.raw[cut - 1].isspace() or any(s < cut < e for s, e in spans)):
            cut -= 1
        return cut

    def _release(self, st: ChoiceText, final: bool) -> str:
        cut = self._cut(st, final)
        piece = st.raw[st.emitted:cut]
        st.emitted = cut
        if piece and self.maskers:
            subject = {"entities": self.entities}
            for b in self.maskers:
                piece = b.check.mask_text(piece, subject)
        if piece and self.unmask:
            piece = restore(piece, self.entities)
        return piece

    async def _event(self, data: bytes) -> bytes:
        obj = orjson.loads(data)
        choices = obj.get("choices")
        if not isinstance(choices, list) or not choices:
            return b"data: " + data + b"\n\n"
        self.last = {k: obj[k] for k in ("id", "object", "created", "model") if k in obj}
        for choice in choices:
            st = self.choices.setdefault(choice.get("index", 0), ChoiceText())
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str):
                st.raw += content
            final = choice.get("finish_reason") is not None
            if final or len(st.raw) - st.checked >= max(1, self.window):
                await self._check(st, final)
                st.done = final
            if isinstance(content, str) or (final and st.emitted < len(st.raw)):
                released = self._release(st, final)
                choice["delta"] = {**(delta or {}), "content": released}
        return b"data: " + orjson.dumps(obj) + b"\n\n"

    async def _close(self) -> bytes:
        """Choices the upstream never finished: their last checks, and what they still hold."""
        out = []
        for index, st in self.choices.items():
            if st.done:
                continue
            await self._check(st, True)
            st.done = True
            rest = self._release(st, True)
            if rest:
                choice = {"index": index, "delta": {"content": rest}, "finish_reason": None}
                chunk = {**self.last, "choices": [choice]}
                out.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
        return b"".join(out)

    async def wrap(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        pending = b""
        try:
            async for chunk in chunks:
                pending += chunk
                cut = pending.rfind(b"\n\n")
                if cut < 0:
                    continue
                complete, pending = pending[:cut + 2], pending[cut + 2:]
                out = []
                for event in complete.split(b"\n\n")[:-1]:
                    if event == b"data: [DONE]":
                        out.append(await self._close())
                        out.append(b"data: [DONE]\n\n")
                    elif event.startswith(b"data: ") and b'"choices"' in event:
                        out.append(await self._event(event[6:]))
                    else:
                        out.append(event + b"\n\n")
                yield b"".join(out)
            if pending:
                yield pending
        finally:
            await aclose(chunks)

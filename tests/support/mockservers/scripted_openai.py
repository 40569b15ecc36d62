"""An OpenAI-compatible upstream that answers with scripted texts, in order (the last one repeats).

For guardrail tests: an answer that is invalid JSON first and valid on the retry, or a stream whose
text (sent in `piece`-character chunks, so entities are split across chunks) must be masked or
blocked. Records every request like RecordingUpstream.
"""

from __future__ import annotations

from aiohttp import web

from .recording_openai import RecordingUpstream, _chunk, _completion, _usage_chunk


class ScriptedUpstream(RecordingUpstream):
    def __init__(self, piece: int = 5) -> None:
        super().__init__()
        self.script: list[str] = ["scripted reply"]
        self.piece = piece

    def answer(self, *texts: str) -> None:
        """The texts the next calls get, in order; requests recorded so far are forgotten."""
        self.script = list(texts)
        self.requests.clear()

    def _next(self) -> str:
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"path": request.path, "body": body, "headers": dict(request.headers)})
        model, text = body.get("model", ""), self._next()
        if not body.get("stream"):
            return web.json_response(_completion(model, text))
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(_chunk(model, {"role": "assistant", "content": ""}))
        for i in range(0, len(text), self.piece):
            await resp.write(_chunk(model, {"content": text[i:i + self.piece]}))
        await resp.write(_chunk(model, {}, "stop"))
        await resp.write(_usage_chunk(model))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

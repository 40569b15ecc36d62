"""A mock of Ollama's native API (`POST /api/chat`, `POST /api/embed`) replaying tests/fixtures/providers/ollama.

Answers are picked like the OpenAI-like mock's (see openai_like.scenario): `<name>.json`, or
`<name>_stream.ndjson` (application/x-ndjson, written in 11-byte pieces) when `stream` is true
(Ollama's default); `error:<name>` replays `errors/<name>.json`. Like the real server it refuses
what its Go structs cannot decode: `images` that are not bare base64, tool-call `arguments` that
are not JSON objects, OpenAI-only message fields such as content-part lists.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from aiohttp import web

from .common import FIXTURES, MockServer, ServedMock, json_response, stream_bytes
from .openai_like import error_fixture, scenario

FOLDER = "ollama"


def _decode_error(message: str) -> web.Response:
    return json_response(400, {"error": message})


def check_chat(body: Any) -> web.Response | None:
    """What Ollama itself would reject in a /api/chat body."""
    if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body["model"]:
        return _decode_error("model is required")
    for msg in body.get("messages") or []:
        if not isinstance(msg.get("content", ""), str):
            return _decode_error("json: cannot unmarshal array into Go struct field Message.messages.content of type string")
        if msg.get("role") not in ("system", "user", "assistant", "tool"):
            return _decode_error(f"invalid role {msg.get('role')!r}")
        for image in msg.get("images") or []:
            try:
                base64.b64decode(image, validate=True)
            except (binascii.Error, ValueError, TypeError):
                return _decode_error("illegal base64 data at input byte 4")
        for tc in msg.get("tool_calls") or []:
            if not isinstance((tc.get("function") or {}).get("arguments"), dict):
                return _decode_error("json: cannot unmarshal string into Go struct field "
                                     "ToolCallFunction.messages.tool_calls.function.arguments of type api.ToolCallFunctionArguments")
    fmt = body.get("format")
    if fmt is not None and fmt != "json" and not isinstance(fmt, dict):
        return _decode_error(f"invalid format: {fmt!r}")
    return None


class OllamaMock(ServedMock):
    """`with OllamaMock() as mock: mock.base_url` ("http://127.0.0.1:PORT", the provider's base_url)."""

    def __init__(self, piece: int = 11) -> None:
        self.piece = piece
        app = web.Application()
        app.router.add_post("/api/chat", self.chat)
        app.router.add_post("/api/embed", self.embed)
        self.server = MockServer(app)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read() or b"null")
        failure = check_chat(body)
        if failure is not None:
            return failure
        name = scenario(body)
        if name.startswith("error:"):
            return error_fixture(FOLDER, name[6:])
        if body.get("stream", True):
            path = FIXTURES / FOLDER / f"{name}_stream.ndjson"
            if not path.exists():  # stream-only transcripts: stream_cut.ndjson, stream_error.ndjson
                path = FIXTURES / FOLDER / f"{name}.ndjson"
            if not path.exists():
                return json_response(404, {"error": f"mock: no fixture {path.name}"})
            return await stream_bytes(request, path.read_bytes(), content_type="application/x-ndjson",
                                      piece=self.piece)
        path = FIXTURES / FOLDER / f"{name}.json"
        if not path.exists():
            return json_response(404, {"error": f"mock: no fixture {path.name}"})
        return json_response(200, path.read_bytes())

    async def embed(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read() or b"null")
        inputs = body.get("input") if isinstance(body, dict) else None
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            return _decode_error("invalid input type")
        if inputs and inputs[0].startswith("error:"):
            return error_fixture(FOLDER, inputs[0][6:])
        return json_response(200, (FIXTURES / FOLDER / "embeddings.json").read_bytes())


__all__ = ["OllamaMock", "check_chat"]

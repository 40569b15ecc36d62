"""A mock of the OpenAI-like provider APIs (openai, azure-openai, mistral, groq, together, vllm,
ollama's /v1).

One aiohttp app, parametrised by flavour: its URL layout and auth header, the request fields the real
API rejects (422/400, so a gateway that forgets to translate fails the test), and the fixture
folder it replays from tests/fixtures/providers/<type>/.

What it answers is chosen by the last user message: a fixture name (`chat`, `tools`,
`parallel_tools`, `json_mode`, `model_length`, ...) picks `<name>.json`, or `<name>_stream.sse` (else
`<name>.sse`) when the request streams; `error:<name>` replays `errors/<name>.json` (`{"status", "headers", "body"}`
or `"body_text"`); anything else is `chat`. Streams are written in 13-byte pieces, so events arrive
cut at arbitrary points.

Also here: `parse_sse` / `assemble` for tests that read OpenAI SSE output.
"""

from __future__ import annotations

import base64
import re
import struct
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from .common import FIXTURES, MockServer, ServedMock, json_response, stream_bytes


@dataclass(frozen=True)
class Flavour:
    fixtures: str
    prefix: str  # the path the API lives under ("" for Azure, whose paths name the deployment)
    auth: str  # "api-key" | "bearer" | "optional-bearer"
    rejected_fields: frozenset[str] = frozenset()
    tool_call_id: re.Pattern[str] | None = None  # ids the API accepts in tool messages
    base64_embeddings: bool = False  # honours `encoding_format: "base64"` (else always floats)


FLAVOURS: dict[str, Flavour] = {
    "openai": Flavour("openai", "/v1", "bearer"),
    "azure-openai": Flavour("azure-openai", "", "api-key", base64_embeddings=True),
    # Mistral rejects OpenAI-only fields (extra inputs are not permitted) and non-Mistral tool-call ids.
    "mistral": Flavour("mistral", "/v1", "bearer",
                       frozenset({"seed", "user", "stream_options", "max_completion_tokens", "store", "metadata",
                                  "service_tier", "logprobs", "top_logprobs", "logit_bias"}),
                       re.compile(r"^[A-Za-z0-9]{9}$")),
    # Groq: "logprobs, logit_bias, top_logprobs ... will result in a 400 error if they are supplied"
    "groq": Flavour("groq", "/openai/v1", "bearer",
                    frozenset({"store", "metadata", "stream_options", "logprobs", "top_logprobs", "logit_bias"})),
    "together": Flavour("together", "/v1", "bearer", frozenset({"stream_options"})),
    "vllm": Flavour("vllm", "/v1", "optional-bearer", base64_embeddings=True),
    "ollama-openai": Flavour("ollama/openai", "/v1", "optional-bearer"),
}

_NAME = re.compile(r"^(error:)?[a-z_]+$")


def scenario(body: Any) -> str:
    """The fixture a request asks for: its last user message, when that names one."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for msg in reversed(messages or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, list):
                content = next((p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"), "")
            if isinstance(content, str) and _NAME.match(content.strip()):
                return content.strip()
            break
    return "chat"


def error_fixture(folder: str, name: str) -> web.Response:
    case = orjson.loads((FIXTURES / folder / "errors" / f"{name}.json").read_bytes())
    headers = dict(case.get("headers") or {})
    if "body_text" in case:
        ctype = headers.pop("content-type", "text/plain")
        return web.Response(status=case["status"], text=case["body_text"], content_type=ctype.split(";")[0],
                            headers=headers)
    return json_response(case["status"], case["body"], headers)


class OpenAILikeMock(ServedMock):
    """`with OpenAILikeMock("mistral", api_key="k") as mock: mock.base_url` (what the provider config takes)."""

    def __init__(self, flavour: str | Flavour, api_key: str | None = "test-key", piece: int = 13) -> None:
        # a Flavour object: an API described by its caller (tests/conformance/test_presets.py)
        self.flavour = FLAVOURS[flavour] if isinstance(flavour, str) else flavour
        self.flavour_name = flavour if isinstance(flavour, str) else flavour.fixtures
        self.api_key = api_key
        self.piece = piece
        app = web.Application()
        if flavour == "azure-openai":
            app.router.add_post("/openai/deployments/{deployment}/chat/completions", self.chat)
            app.router.add_post("/openai/deployments/{deployment}/embeddings", self.embeddings)
        else:
            app.router.add_post(self.flavour.prefix + "/chat/completions", self.chat)
            app.router.add_post(self.flavour.prefix + "/embeddings", self.embeddings)
        self.server = MockServer(app)

    # -- where it serves ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The provider's `base_url` (Azure: the resource root; others: the API root)."""
        return self.server.base_url + self.flavour.prefix

    # -- checks the real API makes ------------------------------------------------------------------
    def _auth_error(self, request: web.Request) -> web.Response | None:
        auth = self.flavour.auth
        if auth == "api-key":
            ok = self.api_key is not None and request.headers.get("api-key") == self.api_key \
                and "authorization" not in request.headers
        elif auth == "bearer" or (auth == "optional-bearer" and self.api_key):
            ok = request.headers.get("authorization") == f"Bearer {self.api_key}" and "api-key" not in request.headers
        else:
            ok = True
        if ok:
            return None
        if (FIXTURES / self.flavour.fixtures / "errors" / "auth.json").exists():
            return error_fixture(self.flavour.fixtures, "auth")
        return json_response(401, {"error": {"message": "Unauthorized", "type": "invalid_request_error"}})

    def _request_error(self, request: web.Request, body: Any) -> web.Response | None:
        if self.flavour_name == "azure-openai" and not request.query.get("api-version"):
            return json_response(404, {"error": {"code": "404", "message": "Resource not found"}})
        if not isinstance(body, dict):
            return json_response(400, {"error": {"message": "body is not a JSON object"}})
        bad = sorted(self.flavour.rejected_fields & body.keys())
        if bad:
            return json_response(422, {"object": "error", "message": {"detail": [
                {"type": "extra_forbidden", "loc": ["body", k], "msg": "Extra inputs are not permitted"} for k in bad]},
                "type": "invalid_request_error", "param": None, "code": None})
        pattern = self.flavour.tool_call_id
        if pattern is not None:
            for msg in body.get("messages") or []:
                ids = [msg.get("tool_call_id")] if msg.get("role") == "tool" else \
                    [tc.get("id") for tc in msg.get("tool_calls") or []]
                for tc_id in ids:
                    if tc_id is not None and not pattern.match(tc_id):
                        return json_response(422, {"object": "error", "message": f"Tool call id was {tc_id} but must be "
                                                   "a-z, A-Z, 0-9, with a length of 9.", "type": "invalid_request_error",
                                                   "param": None, "code": "3280"})
        return None

    # -- handlers -----------------------------------------------------------------------------------
    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read() or b"null")
        failure = self._auth_error(request) or self._request_error(request, body)
        if failure is not None:
            return failure
        name = scenario(body)
        if name.startswith("error:"):
            return error_fixture(self.flavour.fixtures, name[6:])
        folder = FIXTURES / self.flavour.fixtures
        if body.get("stream"):
            path = folder / f"{name}_stream.sse"
            if not path.exists():  # stream-only transcripts: stream_cut.sse, stream_error.sse
                path = folder / f"{name}.sse"
            if not path.exists():
                return json_response(404, {"error": {"message": f"mock: no fixture {path.name}"}})
            return await stream_bytes(request, path.read_bytes(), piece=self.piece)
        path = folder / f"{name}.json"
        if not path.exists():
            return json_response(404, {"error": {"message": f"mock: no fixture {path.name}"}})
        return json_response(200, path.read_bytes())

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read() or b"null")
        failure = self._auth_error(request)
        if failure is not None:
            return failure
        if isinstance(body, dict) and isinstance(body.get("input"), str) and body["input"].startswith("error:"):
            return error_fixture(self.flavour.fixtures, body["input"][6:])
        data = orjson.loads((FIXTURES / self.flavour.fixtures / "embeddings.json").read_bytes())
        if self.flavour.base64_embeddings and isinstance(body, dict) and body.get("encoding_format") == "base64":
            for item in data["data"]:
                vec = item["embedding"]
                item["embedding"] = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
        return json_response(200, data)


# --- reading OpenAI SSE output in tests --------------------------------------------------------------

def parse_sse(data: bytes) -> tuple[list[dict[str, Any]], bool]:
    """(JSON events, whether `data: [DONE]` ended the stream) of OpenAI SSE bytes."""
    events: list[dict[str, Any]] = []
    done = False
    for raw in data.replace(b"\r\n", b"\n").split(b"\n\n"):
        raw = raw.strip()
        if not raw:
            continue
        assert raw.startswith(b"data: "), raw
        assert not done, "an event came after [DONE]"
        payload = raw[6:]
        if payload == b"[DONE]":
            done = True
            continue
        events.append(orjson.loads(payload))
    return events, done


def assemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge chat.completion.chunk events (choice 0) the way an OpenAI client does."""
    content: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    role = None
    usage = None
    for chunk in chunks:
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            role = role or delta.get("role")
            if delta.get("content"):
                content.append(delta["content"])
            for tc in delta.get("tool_calls") or []:
                call = calls.setdefault(tc["index"], {"id": None, "type": None, "name": "", "arguments": ""})
                if tc.get("id"):
                    assert call["id"] in (None, tc["id"]), "a tool call index got a second id"
                    call["id"] = tc["id"]
                if tc.get("type"):
                    call["type"] = tc["type"]
                fn = tc.get("function") or {}
                call["name"] += fn.get("name") or ""
                call["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
    return {"role": role, "content": "".join(content), "tool_calls": [calls[i] for i in sorted(calls)],
            "finish_reason": finish, "usage": usage}


def collect_sdk_stream(stream: Any) -> dict[str, Any]:
    """Read an `openai` SDK stream (ChatCompletionChunk objects) the way a client does, checking the
    OpenAI stream contract on the way: the role once, in the first chunk; one id; tool-call id and
    name once per index; usage only on a final chunk with no choices."""
    content, calls, finish, usage, ids, roles = "", {}, None, None, set(), []
    first = True
    for chunk in stream:
        ids.add(chunk.id)
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            assert chunk.choices == [], "usage rides on its own chunk"
            usage = chunk.usage
            continue
        assert chunk.choices, "a chunk without choices breaks clients that read choices[0]"
        for choice in chunk.choices:
            delta = choice.delta
            if delta.role:
                roles.append(delta.role)
            if first:
                assert delta.role == "assistant", "the first delta carries the role"
            content += delta.content or ""
            for tc in delta.tool_calls or []:
                call = calls.setdefault(tc.index, {"id": None, "type": None, "name": None, "arguments": ""})
                if tc.id:
                    assert call["id"] is None, "a tool call id is sent once"
                    call["id"], call["type"] = tc.id, tc.type
                if tc.function and tc.function.name:
                    assert call["name"] is None, "a tool call name is sent once"
                    call["name"] = tc.function.name
                if tc.function and tc.function.arguments:
                    call["arguments"] += tc.function.arguments
            if choice.finish_reason:
                finish = choice.finish_reason
        first = False
    return {"content": content, "tool_calls": [calls[i] for i in sorted(calls)], "finish": finish,
            "usage": usage, "ids": ids, "roles": roles}


__all__ = ["FLAVOURS", "Flavour", "OpenAILikeMock", "assemble", "collect_sdk_stream", "error_fixture", "parse_sse", "scenario"]

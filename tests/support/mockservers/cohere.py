"""A local Cohere v2 API (`POST /v2/chat`, `POST /v2/embed`) that replays tests/fixtures/providers/cohere.

It checks the `Authorization: Bearer <key>` header (401 with Cohere's body otherwise) and the
body the way the API does (chat: `model`, non-empty `messages` with known roles, assistant turns
with content or tool_calls, tool turns with `tool_call_id`, `tool_choice` REQUIRED/NONE only with
tools, `p` in 0.01..0.99; embed: `texts`, `input_type`, known `embedding_types`). The request's
`model` picks the scenario: `<name>` replays `chat/<name>.json` or `stream/<name>.sse`;
`error-<name>` replays `errors/<name>.json`. Embed answers from `embed/float.json` (or
`embed/float_base64.json` when base64 is asked), one vector per text.
"""

from __future__ import annotations

import base64
import struct
import uuid
from typing import Any

from aiohttp import web

from .common import MockServer, fixture_path, json_response, load_json, stream_bytes

PROVIDER = "cohere"
_EMBEDDING_TYPES = {"float", "int8", "uint8", "binary", "ubinary", "base64"}
_INPUT_TYPES = {"search_document", "search_query", "classification", "clustering", "image"}


def _error(status: int, message: str) -> web.Response:
    return json_response(status, {"id": str(uuid.uuid4()), "message": message})


def validate_chat(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "invalid request: body must be a JSON object"
    if not body.get("model"):
        return "invalid request: model must be specified"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "invalid request: messages must contain at least one message"
    for i, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role not in ("system", "user", "assistant", "tool"):
            return f"invalid request: messages[{i}].role must be one of system, user, assistant, tool"
        if role == "assistant" and not msg.get("tool_calls") and "content" not in msg:
            return f"invalid request: messages[{i}] must have content or tool_calls"
        if role == "assistant" and msg.get("tool_calls") and msg.get("content"):
            return f"invalid request: messages[{i}] cannot have both content and tool_calls; use tool_plan"
        if role == "tool" and not msg.get("tool_call_id"):
            return f"invalid request: messages[{i}].tool_call_id is required for tool messages"
        if role == "user" and isinstance(msg.get("content"), list):
            for part in msg["content"]:
                if part.get("type") not in ("text", "image_url", "document"):
                    return f"invalid request: unsupported content type {part.get('type')!r}"
    choice = body.get("tool_choice")
    if choice is not None:
        if choice not in ("REQUIRED", "NONE"):
            return "invalid request: tool_choice must be one of REQUIRED, NONE"
        if not body.get("tools"):
            return "invalid request: tool_choice requires tools to be specified"
    p = body.get("p")
    if p is not None and not 0.01 <= p <= 0.99:
        return "invalid request: p must be between 0.01 and 0.99, inclusive."
    if not isinstance(body.get("stream", False), bool):
        return "invalid request: stream must be a boolean"
    return None


def validate_embed(body: Any) -> str | None:
    if not isinstance(body, dict) or not body.get("model"):
        return "invalid request: model must be specified"
    texts = body.get("texts")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        return "invalid request: texts must be a non-empty list of strings"
    if body.get("input_type") not in _INPUT_TYPES:
        return "invalid request: valid input_type must be provided with the provided model"
    types = body.get("embedding_types") or ["float"]
    if not set(types) <= _EMBEDDING_TYPES:
        return f"invalid request: embedding_types must be a subset of {sorted(_EMBEDDING_TYPES)}"
    return None


def _error_fixture(scenario: str) -> web.Response | None:
    path = fixture_path(PROVIDER, "errors", scenario[6:] + ".json")
    if not path.exists():
        return None
    fx = load_json(PROVIDER, "errors", path.name)
    return json_response(fx["status"], fx["body"], fx.get("headers"))


def create_app(api_key: str = "co-mock-key", piece: int = 0) -> web.Application:
    def auth(request: web.Request) -> web.Response | None:
        header = request.headers.get("authorization", "")
        if not header:
            return _error(401, "no api key supplied")
        if header != f"Bearer {api_key}":
            return _error(401, "invalid api token")
        return None

    async def read(request: web.Request) -> tuple[Any, web.Response | None]:
        """The JSON body of an authorized request, or the error the API answers instead."""
        denied = auth(request)
        if denied is not None:
            return None, denied
        try:
            return await request.json(), None
        except ValueError:
            return None, _error(400, "invalid request: body is not valid JSON")

    async def chat(request: web.Request) -> web.StreamResponse:
        body, failure = await read(request)
        if failure is not None:
            return failure
        problem = validate_chat(body)
        if problem:
            return _error(400, problem)
        scenario = str(body["model"])
        if scenario.startswith("error-"):
            resp = _error_fixture(scenario)
            if resp is not None:
                return resp
        elif body.get("stream"):
            path = fixture_path(PROVIDER, "stream", scenario + ".sse")
            if path.exists():
                return await stream_bytes(request, path.read_bytes(), piece=piece)
        else:
            path = fixture_path(PROVIDER, "chat", scenario + ".json")
            if path.exists():
                return json_response(200, path.read_bytes())
        return _error(404, f"model '{scenario}' not found, make sure the correct model ID was used and that you "
                           "have access to the model.")

    async def embed(request: web.Request) -> web.Response:
        body, failure = await read(request)
        if failure is not None:
            return failure
        if isinstance(body, dict) and str(body.get("model", "")).startswith("error-"):
            resp = _error_fixture(str(body["model"]))
            if resp is not None:
                return resp
        problem = validate_embed(body)
        if problem:
            return _error(400, problem)
        types = body.get("embedding_types") or ["float"]
        fx = load_json(PROVIDER, "embed", "float_base64.json" if "base64" in types else "float.json")
        floats = fx["embeddings"]["float"]
        vectors = [floats[i % len(floats)] for i in range(len(body["texts"]))]
        if body.get("output_dimension"):
            dim = int(body["output_dimension"])
            vectors = [(v * (dim // len(v) + 1))[:dim] for v in vectors]
        embeddings: dict[str, Any] = {"float": vectors}
        if "base64" in types:
            embeddings["base64"] = [base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() for v in vectors]
        return json_response(200, {"id": fx["id"], "embeddings": embeddings, "texts": body["texts"],
                                   "meta": {"api_version": {"version": "2"},
                                            "billed_units": {"input_tokens": sum(len(t.split()) for t in body["texts"])}}})

    app = web.Application()
    app.router.add_post("/v2/chat", chat)
    app.router.add_post("/v2/embed", embed)
    return app


def start_cohere_mock(api_key: str = "co-mock-key", piece: int = 0) -> MockServer:
    """Start the mock; `piece` > 0 sends streams in writes of that many bytes."""
    return MockServer(create_app(api_key, piece)).start()

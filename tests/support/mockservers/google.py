"""A local Gemini API (generativelanguage v1beta) replaying fixtures.

Routes: `POST /{version}/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`,
`:embedContent`, `:batchEmbedContents` (also `tunedModels/...`).

The API key must arrive in `x-goog-api-key` (or `?key=`): a wrong key gets Gemini's real
400 API_KEY_INVALID body, a missing one the 403 PERMISSION_DENIED body. The scenario comes from
the model name: `<scenario>` replays chat/<scenario>.json or stream/<scenario>.sse (unknown
names: `text`), `error-<name>` replays errors/<name>.json. Request bodies are checked for what
Gemini rejects (roles other than user/model, empty parts, a part with no data field, an OBJECT
schema with empty properties): a violation is a 400 INVALID_ARGUMENT.
"""

from __future__ import annotations

from itertools import cycle, islice
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web

from .common import MockServer, fixture_path, json_response, load_bytes, load_json, stream_bytes

PROVIDER = "google"
API_KEY = "AIzaSy-raygate-test-key"
_PART_FIELDS = {"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
                "codeExecutionResult"}


def _error(name: str) -> web.Response:
    case = load_json(PROVIDER, "errors", f"{name}.json")
    return json_response(case["status"], case["body"], case["headers"])


def _invalid(message: str) -> web.Response:
    return json_response(400, {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}})


def request_violation(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("contents"), list) or not body["contents"]:
        return "* GenerateContentRequest.contents: contents is not specified"
    for i, content in enumerate(body["contents"]):
        if content.get("role") not in ("user", "model"):
            return f"Please use a valid role: user, model. (contents[{i}].role = {content.get('role')!r})"
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
        for j, part in enumerate(parts):
            if not _PART_FIELDS & set(part):
                return f"* GenerateContentRequest.contents[{i}].parts[{j}].data: required oneof field 'data' must have one initialized field"
    for tool in body.get("tools") or []:
        for k, decl in enumerate(tool.get("functionDeclarations") or []):
            params = decl.get("parameters")
            if params is not None and params.get("type") == "OBJECT" and not params.get("properties"):
                return (f"* GenerateContentRequest.tools[0].function_declarations[{k}].parameters.properties: "
                        "should be non-empty for OBJECT type")
    return None


def make_app(*, api_key: str = API_KEY, piece: int = 0) -> web.Application:
    """`piece` > 0 sends stream bodies in writes of that many bytes (events cut anywhere)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path = unquote(request.raw_path.split("?", 1)[0])
        head, _, method = path.rpartition(":")
        marker = "/models/" if "/models/" in head else "/tunedModels/"
        if request.method != "POST" or marker not in head:
            return json_response(404, {"error": {"code": 404, "message": "Not Found", "status": "NOT_FOUND"}})
        model = head.split(marker, 1)[1]
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            return _error("missing_api_key_403")
        if key != api_key:
            return _error("invalid_api_key_400")
        if model.startswith("error-"):
            return _error(model[6:])
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _invalid("Invalid JSON payload received.")
        if method == "embedContent":
            return json_response(200, load_json(PROVIDER, "embeddings", "single.json"))
        if method == "batchEmbedContents":
            requests = parsed.get("requests") or []
            if any(r.get("model") != f"models/{model}" for r in requests):
                return _invalid("* BatchEmbedContentsRequest.requests: model must match the request URL")
            vectors = load_json(PROVIDER, "embeddings", "batch.json")["embeddings"]
            return json_response(200, {"embeddings": list(islice(cycle(vectors), len(requests)))})
        problem = request_violation(parsed)
        if problem:
            return _invalid(problem)
        if method == "generateContent":
            name = model if fixture_path(PROVIDER, "chat", f"{model}.json").exists() else "text"
            return json_response(200, load_json(PROVIDER, "chat", f"{name}.json"))
        if method == "streamGenerateContent":
            if request.query.get("alt") != "sse":
                return _invalid("this mock serves streamGenerateContent with alt=sse only")
            name = model if fixture_path(PROVIDER, "stream", f"{model}.sse").exists() else "text"
            return await stream_bytes(request, load_bytes(PROVIDER, "stream", f"{name}.sse"), piece=piece)
        return json_response(404, {"error": {"code": 404, "message": f"Method {method} not found", "status": "NOT_FOUND"}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def serve(**kwargs: Any) -> MockServer:
    """Start a mock Gemini API: `with serve() as server: server.base_url`."""
    return MockServer(make_app(**kwargs))

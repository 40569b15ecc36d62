"""A local Bedrock runtime (Converse, ConverseStream, InvokeModel) replaying fixtures.

Routes: `POST /model/{modelId}/converse`, `/converse-stream`, `/invoke`.

Authentication is checked the way AWS does it: a request must carry either `Authorization: Bearer
<api key>` or a SigV4 signature, which is recomputed here with botocore from the raw request
(method, path, signed headers, body, `x-amz-date`) and the test secret. A missing header, an
unknown access key or a wrong signature gets Bedrock's real 403 body and `x-amzn-ErrorType`. The
canonical path is rebuilt from the raw path by decoding each segment and encoding it again the
way the SDKs do (so `:` and `%3A` on the wire both verify; see the bedrock adapter docstring).

The scenario comes from the model id: its last `/` segment without a `:<version>` suffix, e.g.
`tool_use:0` or `arn:aws:bedrock:us-east-1:123456789012:inference-profile/parallel_tools` ->
`tool_use` / `parallel_tools`; `error-<name>` replays errors/<name>.json; anything else `text`.
Streams are stream/<scenario>.bin (binary event stream, written from stream/<scenario>.json by
`write_stream_fixtures()`; run `python -m tests.support.mockservers.bedrock` after editing).

The Converse body is checked for the rules Bedrock enforces (messages alternate user/assistant
starting with user, no empty content, toolConfig present when tool blocks are): a violation is
the 400 ValidationException Bedrock would send.
"""

from __future__ import annotations

import re
from itertools import cycle, islice
from typing import Any
from urllib.parse import quote, unquote

import orjson
from aiohttp import web

from deployments.providers import eventstream

from .common import MockServer, fixture_path, json_response, load_json, stream_bytes

PROVIDER = "bedrock"
ACCESS_KEY = "AKIDRAYGATETEST0001"
SECRET_KEY = "raygate/test+secret/0123456789abcdefghij"
REGION = "us-east-1"
API_KEY = "ABSKraygate-test-bedrock-api-key"
RAW_PATHS = web.AppKey("raw_paths", list)  # request targets exactly as received (RecordedRequest.path is decoded)
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                   r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


# --- event-stream transcripts ---------------------------------------------------------------------

def encode_transcript(spec: dict[str, Any]) -> bytes:
    """A stream/<name>.json transcript as Bedrock's binary event stream (our own encoder)."""
    out = b""
    for msg in spec["messages"]:
        payload = orjson.dumps(msg["payload"])
        if "exception" in msg:
            out += eventstream.exception(msg["exception"], payload)
        else:
            out += eventstream.event(msg["event"], payload)
    if spec.get("truncate"):
        out = out[: -int(spec["truncate"])]
    return out


def write_stream_fixtures() -> list[str]:
    written = []
    for path in sorted(fixture_path(PROVIDER, "stream").glob("*.json")):
        path.with_suffix(".bin").write_bytes(encode_transcript(orjson.loads(path.read_bytes())))
        written.append(path.stem)
    return written


# --- authentication ---------------------------------------------------------------------------------

def _aws_error(status: int, etype: str, message: str, service: str = "com.amazon.coral.service") -> web.Response:
    return json_response(status, {"message": message},
                         {"x-amzn-ErrorType": f"{etype}:http://internal.amazon.com/coral/{service}/"})


def canonical_wire_path(raw_path: str) -> str:
    """The path as the SDKs put it on the wire: each segment percent-encoded once (safe `-._~`)."""
    path = raw_path.split("?", 1)[0]
    return "/".join(quote(unquote(seg), safe="-._~") for seg in path.split("/"))


def check_auth(request: web.Request, body: bytes, *, access_key: str, secret_key: str, region: str,
               api_key: str | None) -> web.Response | None:
    header = request.headers.get("Authorization")
    if not header:
        return _aws_error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    if header.startswith("Bearer "):
        if api_key is not None and header[7:] == api_key:
            return None
        return _aws_error(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
    m = _AUTH.match(header)
    if not m:
        return _aws_error(400, "IncompleteSignatureException", "Authorization header requires 'Credential', "
                          "'SignedHeaders' and 'Signature' parameters.")
    key, day, sig_region, service, signed, signature = m.groups()
    if key != access_key:
        return _aws_error(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
    amz_date = request.headers.get("X-Amz-Date", "")
    if sig_region != region or service != "bedrock" or not amz_date.startswith(day):
        return _aws_error(403, "InvalidSignatureException", "Credential should be scoped to a valid region and service.")
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    names = signed.split(";")
    headers = {n: request.headers.get(n, "") for n in names if n != "host"}
    aws_req = AWSRequest(method=request.method, url=f"http://{request.host}{canonical_wire_path(request.raw_path)}",
                         data=body, headers=headers)
    aws_req.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(access_key, secret_key, request.headers.get("X-Amz-Security-Token")), service, region)
    if ";".join(sorted(signer.headers_to_sign(aws_req))) != signed:
        return _aws_error(403, "InvalidSignatureException", "Signed headers do not match the request headers.")
    expected = signer.signature(signer.string_to_sign(aws_req, signer.canonical_request(aws_req)), aws_req)
    if expected != signature:
        return _aws_error(403, "InvalidSignatureException", "The request signature we calculated does not match the "
                          "signature you provided. Check your AWS Secret Access Key and signing method. Consult the "
                          "service documentation for details.")
    return None


# --- body checks (what Converse rejects) ------------------------------------------------------------

def converse_violation(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        return "The messages field is required and must not be empty."
    has_tool_blocks = False
    for i, msg in enumerate(body["messages"]):
        want = "user" if i % 2 == 0 else "assistant"
        if msg.get("role") != want:
            return ("A conversation must alternate between user and assistant roles. Make sure the conversation "
                    "alternates between user and assistant roles and try again.")
        content = msg.get("content")
        if not isinstance(content, list) or not content:
            return f"The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the content field and try again."
        for j, block in enumerate(content):
            if len(block) != 1:
                return f"messages.{i}.content.{j}: exactly one member of the ContentBlock union must be set."
            if "text" in block and not block["text"].strip():
                return f"The text field in the ContentBlock object at messages.{i}.content.{j} is blank. Add text to the text field, and try again."
            if "toolUse" in block or "toolResult" in block:
                has_tool_blocks = True
    if has_tool_blocks and not body.get("toolConfig"):
        return ("The toolConfig field must be defined when using toolUse and toolResult content blocks.")
    return None


# --- the app ----------------------------------------------------------------------------------------

def scenario(model_id: str) -> str:
    return model_id.rsplit("/", 1)[-1].split(":", 1)[0]


def make_app(*, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, region: str = REGION,
             api_key: str | None = API_KEY, piece: int = 0) -> web.Application:
    """`piece` > 0 sends stream bodies in writes of that many bytes (frames cut anywhere)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        raw_paths.append(request.raw_path)
        segments = request.raw_path.split("?", 1)[0].split("/")
        if len(segments) != 4 or segments[1] != "model" or request.method != "POST":
            return _aws_error(404, "UnknownOperationException", "Unknown operation", "com.amazon.coral.service")
        model_id, op = unquote(segments[2]), segments[3]
        denied = check_auth(request, body, access_key=access_key, secret_key=secret_key, region=region, api_key=api_key)
        if denied is not None:
            return denied
        name = scenario(model_id)
        if name.startswith("error-"):
            case = load_json(PROVIDER, "errors", f"{name[6:]}.json")
            headers = {k: v for k, v in case["headers"].items() if k.lower() != "content-type"}
            return json_response(case["status"], case["body"], headers)
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _aws_error(400, "SerializationException", "Unexpected content in the request body.", "com.amazon.bedrock")
        if op == "invoke":
            return _invoke(model_id, parsed)
        if op not in ("converse", "converse-stream"):
            return _aws_error(404, "UnknownOperationException", f"Unknown operation {op}")
        problem = converse_violation(parsed)
        if problem:
            return _aws_error(400, "ValidationException", problem, "com.amazon.bedrock")
        if op == "converse":
            path = fixture_path(PROVIDER, "chat", f"{name}.json")
            name = name if path.exists() else "text"
            return json_response(200, load_json(PROVIDER, "chat", f"{name}.json"),
                                 {"x-amzn-RequestId": "00000000-0000-4000-8000-000000000000"})
        path = fixture_path(PROVIDER, "stream", f"{name}.bin")
        if not path.exists():
            path = fixture_path(PROVIDER, "stream", "text.bin")
        return await stream_bytes(request, path.read_bytes(), content_type="application/vnd.amazon.eventstream",
                                  piece=piece)

    raw_paths: list[str] = []
    app = web.Application()
    app[RAW_PATHS] = raw_paths
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def _invoke(model_id: str, body: Any) -> web.Response:
    if "titan-embed" in model_id:
        if not isinstance(body, dict) or not isinstance(body.get("inputText"), str):
            return _aws_error(400, "ValidationException", "Malformed input request: required key [inputText] not found",
                              "com.amazon.bedrock")
        return json_response(200, load_json(PROVIDER, "embeddings", "titan.json"))
    if "cohere.embed" in model_id:
        texts = body.get("texts") if isinstance(body, dict) else None
        if not isinstance(texts, list) or not texts:
            return _aws_error(400, "ValidationException", "Malformed input request: required key [texts] not found",
                              "com.amazon.bedrock")
        data = load_json(PROVIDER, "embeddings", "cohere_by_type.json" if body.get("embedding_types") else "cohere.json")
        vectors = data["embeddings"]["float"] if isinstance(data["embeddings"], dict) else data["embeddings"]
        vectors = list(islice(cycle(vectors), len(texts)))
        data["embeddings"] = {"float": vectors} if isinstance(data["embeddings"], dict) else vectors
        data["texts"] = texts
        return json_response(200, data)
    return _aws_error(400, "ValidationException", "The provided model identifier is invalid.", "com.amazon.bedrock")


def serve(**kwargs: Any) -> MockServer:
    """Start a mock Bedrock runtime: `with serve() as server: server.base_url`."""
    return MockServer(make_app(**kwargs))


if __name__ == "__main__":  # regenerate stream/*.bin from stream/*.json
    print("wrote", ", ".join(write_stream_fixtures()))

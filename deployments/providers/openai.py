"""`openai`: OpenAI Chat Completions and Embeddings, and any OpenAI-compatible `base_url`.

The fast path: the request body is re-encoded once (gateway fields removed, model set), the
response body is forwarded unchanged, and stream bytes are relayed as they arrive. The relay only
looks inside the events it must: the usage-only chunk the gateway asked for on the client's
behalf (dropped unless the client asked), the terminal `[DONE]`, and error events (any event
that mentions an error is read by chunks.read_event: `data: {"error": ...}`, `event: error`, a
bare JSON error line become one OpenAI error event, and nothing is relayed after it).
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import SecretStr

from serve_app import errors as E
from serve_app.errors import UpstreamError

from .embeddings import conform_list, remember_encoding, wants_base64
from .spec import ProviderSpec
from .base import (
    Adapter,
    CallContext,
    ProviderConfig,
    UpstreamRequest,
    json_body,
    stream_cut,
)
from .chunks import generic_stream_error, read_event


class OpenAIConfig(ProviderConfig):
    type: str = "openai"
    base_url: str | None = "https://api.openai.com/v1"
    organization: str | None = None
    project: str | None = None
    api_key: SecretStr | None = None


class OpenAIAdapter(Adapter):
    supports_embeddings = True
    default_base_url = "https://api.openai.com/v1"

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        base = (config.base_url or self.default_base_url).rstrip("/")
        self.chat_url = base + "/chat/completions"
        self.embeddings_url = base + "/embeddings"
        self.models_url = base + "/models"
        self.headers = self.build_headers(config)

    def build_headers(self, config: ProviderConfig) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        key = config.secret()
        if key:
            headers["authorization"] = f"Bearer {key}"
        org = getattr(config, "organization", None)
        if org:
            headers["openai-organization"] = org
        project = getattr(config, "project", None)
        if project:
            headers["openai-project"] = project
        return headers

    forwards_metadata = True  # OpenAI stores it with the completion when `store` is true

    def chat_request(self, body: dict[str, Any], ctx: CallContext, stream: bool) -> UpstreamRequest:
        body["model"] = ctx.model
        if self.forwards_metadata and ctx.metadata and body.get("store") is True:
            body["metadata"] = ctx.metadata
        if stream:
            # Always ask for usage (accounting); the relay drops the chunk if the client did not ask.
            opts = body.get("stream_options")
            if not isinstance(opts, dict) or not opts.get("include_usage"):
                body["stream_options"] = {**(opts or {}), "include_usage": True}
        return UpstreamRequest("POST", self.chat_url, self.headers, json_body(body))

    def chat_response(self, status: int, payload: bytes, ctx: CallContext) -> bytes:
        return payload

    def chat_stream(self, ctx: CallContext) -> OpenAIStreamRelay:
        return OpenAIStreamRelay(ctx.provider, keep_usage_chunk=ctx.include_usage)

    def embeddings_request(self, body: dict[str, Any], ctx: CallContext) -> UpstreamRequest:
        body["model"] = ctx.model
        remember_encoding(ctx, body)
        return UpstreamRequest("POST", self.embeddings_url, self.headers, json_body(body))

    def embeddings_response(self, status: int, payload: bytes, ctx: CallContext) -> bytes:
        # OpenAI-compatible servers that ignore `encoding_format` send floats where the client's
        # SDK (base64 by default) decodes a string: the vectors are put in the asked encoding.
        return conform_list(payload, wants_base64(ctx))

    def models_request(self) -> UpstreamRequest | None:
        return UpstreamRequest("GET", self.models_url, self.headers)


_DONE = b"data: [DONE]"


class OpenAIStreamRelay:
    """Relays OpenAI SSE bytes; holds back only a partial trailing event.

    Fast path per upstream chunk: three substring scans. Events are split only when a chunk
    mentions usage (OpenAI sends `"usage":null` on every chunk once usage is requested), an
    error, or `[DONE]`; JSON is parsed only for the event that carries a usage object.
    """

    __slots__ = ("provider", "keep_usage_chunk", "usage", "done", "errored", "_pending", "_sep", "_started")

    def __init__(self, provider: str, keep_usage_chunk: bool) -> None:
        self.provider = provider
        self.keep_usage_chunk = keep_usage_chunk
        self.usage: dict[str, Any] | None = None
        self.done = False
        self.errored = False
        self._pending = b""
        self._sep = b"\n\n"
        self._started = False

    def feed(self, chunk: bytes) -> bytes:
        if self.errored:
            return b""  # one error event ends the stream: nothing after it
        if not self._started:
            self._started = True
            if b"\r\n" in chunk[:512]:
                self._sep = b"\r\n\r\n"
        data = self._pending + chunk if self._pending else chunk
        cut = data.rfind(self._sep)
        if cut < 0:
            self._pending = data
            return b""
        cut += len(self._sep)
        complete, self._pending = data[:cut], data[cut:]
        if (b'"usage"' not in complete and _DONE not in complete and b'"error"' not in complete
                and b"event:" not in complete):
            return complete
        return self._inspect(complete)

    def _inspect(self, complete: bytes) -> bytes:
        out = []
        for event in complete.split(self._sep):
            if not event:
                continue
            if event.startswith(_DONE):
                self.done = True
                out.append(event)
                continue
            if b'"usage":{' in event or b'"usage": {' in event:
                try:
                    parsed = orjson.loads(event[event.index(b"{"):])
                except (ValueError, orjson.JSONDecodeError):
                    parsed = None
                if isinstance(parsed, dict) and isinstance(parsed.get("usage"), dict):
                    self.usage = parsed["usage"]
                    if parsed.get("choices") == [] and not self.keep_usage_chunk:
                        continue
            elif b"error" in event:  # `data: {"error"...}`, `event: error`, a bare JSON error line
                failure = self._failure(event)
                if failure is not None:
                    self.errored = True
                    out.append(E.sse_error_event(failure).rstrip(b"\n"))
                    break
            out.append(event)
        if not out:
            return b""
        return self._sep.join(out) + self._sep

    def _failure(self, event: bytes) -> UpstreamError | None:
        """The OpenAI error an event stands for (chunks.read_event), None for a content event."""
        raw = event.replace(b"\r\n", b"\n")
        try:
            _, _, err = read_event(raw, self.provider)
        except UpstreamError as exc:
            return exc
        return generic_stream_error(err, self.provider) if err is not None else None

    def finish(self) -> bytes:
        if self.done or self.errored:
            return b""
        raise stream_cut(self.provider, "no [DONE] event")


SPEC = ProviderSpec(config_model=OpenAIConfig, adapter=OpenAIAdapter)

"""`cohere`: Cohere v2 Chat (`POST {base_url}/v2/chat`) and Embed (`POST {base_url}/v2/embed`), Bearer key.

Chat request: OpenAI messages map almost one to one (system/developer -> system, user text and
image_url parts, assistant tool_calls with their text as `tool_plan`, tool messages with
`tool_call_id`); tools keep the OpenAI function shape (`strict` on any tool -> `strict_tools`);
tool_choice required/none -> REQUIRED/NONE, a named tool -> REQUIRED over that tool alone;
response_format json_object / json_schema -> `{"type": "json_object"[, "json_schema": schema]}`;
top_p -> p (clamped to 0.01..0.99), top_k -> k (extension), stop -> stop_sequences, seed,
penalties clamped to Cohere's 0..1; `n > 1` is a 400; `user` has no equivalent.

Response and stream: text content, tool calls (ids kept), finish_reason COMPLETE/STOP_SEQUENCE ->
stop, MAX_TOKENS/ERROR_LIMIT -> length, TOOL_CALL -> tool_calls, CONTENT_BLOCKED ->
content_filter, ERROR/TIMEOUT -> an upstream error; tool_plan, citations and thinking are dropped
cleanly. Usage from `usage.tokens` (falling back to `billed_units`), `cached_tokens` ->
`prompt_tokens_details.cached_tokens`.

Embeddings: `input` strings -> `texts`, `input_type` from the config (`embed_input_type`) or the
request's `input_type` extension, `dimensions` -> `output_dimension`, float vectors (base64 when
the client asks, encoded by the gateway). Errors: `{"message"}` bodies; 498 (invalid token) counts
as an auth failure (502 upstream_auth_error).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from ..base import Adapter, CallContext, ProviderConfig, UpstreamError, UpstreamRequest, json_body, require_json
from ..spec import ProviderSpec
from .request import chat_body, embed_body
from .response import CohereStream, chat_completion, embeddings, error_from_body, openai_usage

DEFAULT_BASE_URL = "https://api.cohere.com"


class CohereConfig(ProviderConfig):
    type: str = "cohere"
    base_url: str | None = Field(DEFAULT_BASE_URL, description="Endpoint root; `/v2/chat` and `/v2/embed` are appended.")
    client_name: str | None = Field("raygate", description="The `X-Client-Name` header (None: not sent).")
    embed_input_type: Literal["search_document", "search_query", "classification", "clustering"] = Field(
        "search_document", description="Embed `input_type` when the request does not set one.")
    embed_truncate: Literal["NONE", "START", "END"] | None = None
    safety_mode: Literal["CONTEXTUAL", "STRICT", "OFF"] | None = None


class CohereAdapter(Adapter):
    supports_embeddings = True

    def models_request(self) -> UpstreamRequest | None:
        return UpstreamRequest("GET", self.models_url, self.headers)

    def models_response(self, payload: bytes) -> list[str]:
        data = require_json(payload, self.config.name)
        return [m["name"] for m in (data.get("models") or []) if isinstance(m, dict) and m.get("name")]

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        base = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.chat_url = base + "/v2/chat"
        self.embed_url = base + "/v2/embed"
        self.models_url = base + "/v1/models?page_size=1000"
        headers = {"content-type": "application/json", "accept": "application/json"}
        key = config.secret()
        if key:
            headers["authorization"] = f"Bearer {key}"
        client_name = getattr(config, "client_name", None)
        if client_name:
            headers["x-client-name"] = client_name
        self.headers = headers
        self.stream_headers = {**headers, "accept": "text/event-stream"}
        self.safety_mode = getattr(config, "safety_mode", None)
        self.input_type = getattr(config, "embed_input_type", "search_document")
        self.truncate = getattr(config, "embed_truncate", None)

    def chat_request(self, body: dict[str, Any], ctx: CallContext, stream: bool) -> UpstreamRequest:
        payload = chat_body(body, ctx.model, stream, self.safety_mode)
        return UpstreamRequest("POST", self.chat_url, self.stream_headers if stream else self.headers,
                               json_body(payload))

    def chat_response(self, status: int, payload: bytes, ctx: CallContext) -> bytes:
        return chat_completion(payload, ctx)

    def chat_stream(self, ctx: CallContext) -> CohereStream:
        return CohereStream(ctx)

    def embeddings_request(self, body: dict[str, Any], ctx: CallContext) -> UpstreamRequest:
        payload = embed_body(body, ctx.model, self.input_type, self.truncate)
        return UpstreamRequest("POST", self.embed_url, self.headers, json_body(payload))

    def embeddings_response(self, status: int, payload: bytes, ctx: CallContext) -> bytes:
        return embeddings(payload, ctx)

    def error(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> UpstreamError:
        return error_from_body(status, headers, payload, ctx.provider)


SPEC = ProviderSpec(config_model=CohereConfig, adapter=CohereAdapter)

__all__ = ["SPEC", "CohereAdapter", "CohereConfig", "CohereStream", "openai_usage"]

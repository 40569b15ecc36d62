"""`google`: the Gemini API (Google AI Studio keys), spoken natively.

Chat goes to `{base_url}/{api_version}/models/{model}:generateContent`, streams to
`:streamGenerateContent?alt=sse`, embeddings to `:embedContent` (one string) or
`:batchEmbedContents` (an array). The key is sent in the `x-goog-api-key` header, never in the
URL. A model may be given as `gemini-2.5-flash` or as a resource name (`models/...`,
`tunedModels/...`). How each field maps is documented in request.py and response.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from pydantic import Field

from serve_app.errors import UpstreamError

from ..base import Adapter, CallContext, ProviderConfig, UpstreamRequest, json_body, require_json
from ..embeddings import ENCODING_KEY, remember_encoding
from ..spec import ProviderSpec
from .request import embed_body, generate_content_body
from .response import GeminiStream, chat_completion, embeddings_list, gemini_error

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"


class GoogleConfig(ProviderConfig):
    type: str = "google"
    base_url: str | None = DEFAULT_BASE_URL
    api_version: str = Field("v1beta", description="API version path segment (v1beta has every feature used).")
    safety_settings: list[dict[str, Any]] | None = Field(
        None, description="Sent as `safetySettings` ({category, threshold} objects) with every chat call.")
    embedding_task_type: str | None = Field(
        None, description="`taskType` for embeddings, e.g. RETRIEVAL_DOCUMENT or SEMANTIC_SIMILARITY.")


class GoogleAdapter(Adapter):
    supports_embeddings = True

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        base = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.root = f"{base}/{getattr(config, 'api_version', 'v1beta')}"
        self.headers = {"content-type": "application/json"}
        if config.secret():
            self.headers["x-goog-api-key"] = config.secret()
        self.safety = getattr(config, "safety_settings", None)
        self.task_type = getattr(config, "embedding_task_type", None)

    def models_request(self) -> UpstreamRequest | None:
        return UpstreamRequest("GET", f"{self.root}/models?pageSize=1000", self.headers)

    def models_response(self, payload: bytes) -> list[str]:
        data = require_json(payload, self.config.name)
        names = [m.get("name", "") for m in (data.get("models") or []) if isinstance(m, dict)]
        return [n.removeprefix("models/") for n in names if n]

    @staticmethod
    def model_path(model: str) -> str:
        name = model if "/" in model else f"models/{model}"
        return quote(name, safe="/-_.~")

    def chat_request(self, body: dict[str, Any], ctx: CallContext, stream: bool) -> UpstreamRequest:
        payload = generate_content_body(body, self.safety)
        path = self.model_path(ctx.model)
        url = f"{self.root}/{path}:streamGenerateContent?alt=sse" if stream else f"{self.root}/{path}:generateContent"
        return UpstreamRequest("POST", url, self.headers, json_body(payload))

    def chat_response(self, status: int, payload: bytes, ctx: CallContext) -> bytes:
        return chat_completion(payload, ctx)

    def chat_stream(self, ctx: CallContext) -> GeminiStream:
        return GeminiStream(ctx)

    def embeddings_request(self, body: dict[str, Any], ctx: CallContext) -> UpstreamRequest:
        path = self.model_path(ctx.model)
        batched, payload = embed_body(body, path, self.task_type)
        method = "batchEmbedContents" if batched else "embedContent"
        remember_encoding(ctx, body)
        return UpstreamRequest("POST", f"{self.root}/{path}:{method}", self.headers, json_body(payload))

    def embeddings_response(self, status: int, payload: bytes, ctx: CallContext) -> bytes:
        return embeddings_list(payload, ctx, ctx.state.get(ENCODING_KEY))

    def error(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> UpstreamError:
        return gemini_error(status, headers, payload, ctx.provider)


SPEC = ProviderSpec(config_model=GoogleConfig, adapter=GoogleAdapter)

__all__ = ["SPEC", "GoogleAdapter", "GoogleConfig"]

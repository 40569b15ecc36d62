"""`azure-openai`: Azure OpenAI Service (Chat Completions and Embeddings of a deployment).

The OpenAI wire format at a per-deployment URL:
`{base}/openai/deployments/{deployment}/chat/completions?api-version=...`, with `base`
`https://{resource_name}.openai.azure.com` unless `base_url` replaces it, and the key in an
`api-key` header (or a Microsoft Entra token as `Authorization: Bearer`); `stream_options` (usage in
streams) is sent only with API versions from 2024-09-01 on, which accept it. What it adds over
`openai`: content-filter annotations. They stay on non-streamed bodies (extra keys the SDK
accepts), while the stream's first chunk, which has no choices and carries only
`prompt_filter_results`, is dropped (the shared normaliser drops chunks without choices). Content
filter refusals of the prompt (HTTP 400 with code `content_filter` / innererror
`ResponsibleAIPolicyViolation`) are the client's: a 400 `content_filter` naming the filtered
categories (error class content_filtered); a 200 whose every choice was filtered away becomes one too when
`content_filter_as_error` is set (default: the OpenAI answer with `finish_reason: content_filter`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson
from pydantic import Field, SecretStr, model_validator

from serve_app import errors as E
from serve_app.errors import UpstreamError

from .base import CallContext, ProviderConfig, UpstreamRequest, refused
from .openai_compat import OpenAICompatAdapter
from .spec import ProviderSpec

# The latest generally available data-plane API version with stream usage and json_schema.
DEFAULT_API_VERSION = "2024-10-21"


class AzureOpenAIConfig(ProviderConfig):
    type: str = "azure-openai"
    resource_name: str | None = Field(None, description="The Azure OpenAI resource (`<name>.openai.azure.com`).")
    deployment_id: str | None = Field(
        None, description="Chat deployment; default: the request's model names the deployment.")
    embeddings_deployment_id: str | None = Field(
        None, description="Embeddings deployment; default: the request's model names the deployment.")
    api_version: str = DEFAULT_API_VERSION
    azure_ad_token: SecretStr | None = Field(None, description="Entra ID token, sent instead of `api-key`.")
    content_filter_as_error: bool = Field(
        False, description="A 200 whose choices were all filtered away becomes a content_filtered error.")

    @model_validator(mode="after")
    def _endpoint(self) -> AzureOpenAIConfig:
        if not self.resource_name and not self.base_url:
            raise ValueError("azure-openai needs resource_name or base_url")
        return self


# The first data-plane API version that accepts `stream_options` (older ones reject the field).
STREAM_OPTIONS_SINCE = "2024-09-01"


class AzureOpenAIAdapter(OpenAICompatAdapter):
    embeddings_base64 = True

    def __init__(self, config: ProviderConfig) -> None:
        assert isinstance(config, AzureOpenAIConfig)
        root = (config.base_url or f"https://{config.resource_name}.openai.azure.com").rstrip("/")
        self.root = root + "/openai/deployments/"
        self.query = "?api-version=" + quote(config.api_version, safe="")
        # The base class wants a base URL; chat_url_for / embeddings_url_for build the real ones.
        config_for_base = config.model_copy(update={"base_url": root})
        super().__init__(config_for_base)
        self.config = config
        # Date versions compare as strings; "preview" / "latest" sort after every date.
        self.stream_usage_option = config.api_version >= STREAM_OPTIONS_SINCE  # type: ignore[misc]
        self._chat_url = self._url(config.deployment_id, "chat/completions") if config.deployment_id else None
        self._emb_url = (self._url(config.embeddings_deployment_id, "embeddings")
                         if config.embeddings_deployment_id else None)
        self._models_url = root + "/openai/models" + self.query

    def models_request(self) -> UpstreamRequest | None:
        return UpstreamRequest("GET", self._models_url, self.headers)

    def build_headers(self, config: ProviderConfig) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        token = getattr(config, "azure_ad_token", None)
        if token is not None and token.get_secret_value():
            headers["authorization"] = f"Bearer {token.get_secret_value()}"
        elif config.secret():
            headers["api-key"] = config.secret()
        return headers

    def _url(self, deployment: str, path: str) -> str:
        return f"{self.root}{quote(deployment, safe='')}/{path}{self.query}"

    def chat_url_for(self, ctx: CallContext) -> str:
        return self._chat_url or self._url(ctx.model, "chat/completions")

    def embeddings_url_for(self, ctx: CallContext) -> str:
        return self._emb_url or self._url(ctx.model, "embeddings")

    def normalize_completion(self, data: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        data = super().normalize_completion(data, ctx)
        if self.config.content_filter_as_error and data["choices"] and all(
            c.get("finish_reason") == "content_filter" and not c["message"].get("content")
            and not c["message"].get("tool_calls") for c in data["choices"]
        ):
            raise UpstreamError(400, f"provider {ctx.provider!r}: the response was filtered by the "
                                     "provider's content management policy", provider=ctx.provider,
                                code="content_filter", error_class=E.CONTENT_FILTER)
        return data

    def classify_error(self, status: int, message: str, code: str | None, data: Any) -> str | None:
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict):
            inner = err.get("innererror")
            inner_code = inner.get("code") if isinstance(inner, dict) else None
            if err.get("code") == "content_filter" or inner_code == "ResponsibleAIPolicyViolation":
                return E.CONTENT_FILTER
        return None

    def error(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> UpstreamError:
        err = super().error(status, headers, payload, ctx)
        if err.error_class == E.CONTENT_FILTER:
            if err.status == 400:  # the prompt was filtered: the client's refusal, with Azure's categories
                return refused(ctx.provider, filter_categories(payload), err.message.split(": ", 1)[-1])
            err.code = "content_filter"
        return err


def filter_categories(payload: bytes) -> str:
    """`content_filter: violence (medium), jailbreak` from an Azure content-filter error body."""
    try:
        data = orjson.loads(payload)
        result = data["error"]["innererror"]["content_filter_result"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "content_filter"
    hits = []
    for name, v in result.items():
        if isinstance(v, dict) and (v.get("filtered") or v.get("detected")):
            severity = v.get("severity")
            hits.append(f"{name} ({severity})" if isinstance(severity, str) and severity != "safe" else name)
    return "content_filter" + (": " + ", ".join(hits) if hits else "")


SPEC = ProviderSpec(config_model=AzureOpenAIConfig, adapter=AzureOpenAIAdapter)

"""OpenAI-compatible presets: vendors whose API is Chat Completions with a few declared differences.

A preset is data, not code: its default `base_url`, how the key is sent, which OpenAI request fields
its API does not take (`Params`, params.py: each dropped or refused with a 400 naming it, never
forwarded into an upstream 400, with per-model rules), where it reports usage the OpenAI way does
not, and how its error bodies map onto the gateway's error classes. `preset_spec` turns one into a
`ProviderSpec` (a config model and an adapter over `OpenAICompatAdapter`); each preset is one
registry line (`"deepseek": "deployments.providers.presets:DEEPSEEK"`). A vendor that needs more
than data gets its own module, as groq / together / mistral do.

The sources of each declaration are named in tests/fixtures/providers/<type>/README.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, create_model

from serve_app import errors as E
from serve_app.errors import UpstreamError

from .base import CallContext, ProviderConfig
from .openai_compat import OpenAICompatAdapter, error_message
from .params import NO_PARAMS, Params
from .spec import ProviderSpec


@dataclass(frozen=True)
class StatusRule:
    """An upstream status the foundation's mapping gets wrong for this vendor: what the client sees."""

    status: int
    code: str
    error_class: str
    message: str | None = None  # replaces the provider's text (None: keep it)


@dataclass(frozen=True)
class Preset:
    type: str
    base_url: str
    # The key goes in `auth_header` as `auth_prefix + key`; with no key configured nothing is sent
    # (the local servers need none unless started with one).
    auth_header: str = "authorization"
    auth_prefix: str = "Bearer "
    # Optional config fields sent as headers: config field -> (header, description).
    header_fields: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # The OpenAI fields the API does not take (dropped or refused), `n`'s limit, per-model rules.
    params: Params = NO_PARAMS
    # Body fields set when the client did not set them (to get OpenAI's behaviour from the vendor).
    defaults: Mapping[str, Any] = field(default_factory=dict)
    # True: send `stream_options.include_usage`; False: the vendor reports stream usage unasked.
    stream_usage_option: bool = True
    # A usage key holding the cached prompt tokens, read into `prompt_tokens_details.cached_tokens`.
    cached_tokens_key: str | None = None
    # The vendor's error `type` (or TGI's `error_type`) -> the gateway's error class.
    error_types: Mapping[str, str] = field(default_factory=dict)
    # Lower-case message fragments that mean the prompt is over the context window.
    context_markers: tuple[str, ...] = ()
    status_rules: Mapping[int, StatusRule] = field(default_factory=dict)
    embeddings: bool = False
    embeddings_base64: bool = False


class PresetAdapter(OpenAICompatAdapter):
    """The compat adapter driven by a `Preset` (set on each generated subclass)."""

    preset: Preset

    def build_headers(self, config: ProviderConfig) -> dict[str, str]:
        preset = self.preset
        headers = {"content-type": "application/json"}
        key = config.secret()
        if key:
            headers[preset.auth_header] = preset.auth_prefix + key
        for name, (header, _) in preset.header_fields.items():
            value = getattr(config, name, None)
            if value:
                headers[header] = value
        return headers

    def prepare_chat(self, body: dict[str, Any], ctx: CallContext, stream: bool) -> dict[str, Any]:
        body = super().prepare_chat(body, ctx, stream)
        for key, value in self.preset.defaults.items():
            body.setdefault(key, value)
        return body

    # -- usage -----------------------------------------------------------------------------------
    def _usage(self, usage: Any) -> Any:
        key = self.preset.cached_tokens_key
        if key is not None and isinstance(usage, dict) and isinstance(usage.get(key), int):
            details = usage.get("prompt_tokens_details")
            details = details if isinstance(details, dict) else {}
            if not details.get("cached_tokens"):
                usage["prompt_tokens_details"] = {**details, "cached_tokens": usage[key]}
        return usage

    def stream_usage(self, chunk: dict[str, Any]) -> Any:
        return self._usage(chunk.pop("usage", None))

    def normalize_completion(self, data: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        self._usage(data.get("usage"))
        return super().normalize_completion(data, ctx)

    # -- errors ----------------------------------------------------------------------------------
    def classify_error(self, status: int, message: str, code: str | None, data: Any) -> str | None:
        preset = self.preset
        if preset.context_markers and any(m in message.lower() for m in preset.context_markers):
            return E.CONTEXT_LENGTH
        if not preset.error_types or not isinstance(data, dict):
            return None
        err = data.get("error")
        kind = err.get("type") if isinstance(err, dict) else data.get("error_type")
        return preset.error_types.get(kind) if isinstance(kind, str) else None

    def error(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> UpstreamError:
        rule = self.preset.status_rules.get(status)
        err = super().error(status, headers, payload, ctx)
        if rule is not None:
            message = f"provider {ctx.provider!r}: {rule.message or error_message(payload)[0]}"
            err = UpstreamError(rule.status, message, provider=ctx.provider, code=rule.code,
                                error_class=rule.error_class, retry_after=err.retry_after)
        return err


def preset_spec(preset: Preset) -> ProviderSpec:
    """The config model and adapter a preset declares."""
    name = "".join(part.capitalize() for part in preset.type.replace("-", "_").split("_"))
    extra: dict[str, Any] = {
        name_: (str | None, Field(None, description=f"Sent as the `{header}` header: {doc}"))
        for name_, (header, doc) in preset.header_fields.items()
    }
    config = create_model(f"{name}Config", __base__=ProviderConfig, __module__=__name__,
                          type=(str, preset.type), base_url=(str | None, preset.base_url), **extra)
    adapter = type(f"{name}Adapter", (PresetAdapter,), {
        "__module__": __name__,
        "preset": preset,
        "default_base_url": preset.base_url,
        "supports_embeddings": preset.embeddings,
        "embeddings_base64": preset.embeddings_base64,
        "stream_usage_option": preset.stream_usage_option,
        "params": preset.params,
    })
    return ProviderSpec(config_model=config, adapter=adapter)


# The vendor's account is out of money: not the client's fault, and another provider may serve it.
_NO_BALANCE = StatusRule(502, "upstream_insufficient_balance", E.AUTH,
                         "its account has insufficient balance (upstream status 402)")

DEEPSEEK = preset_spec(Preset(
    "deepseek", "https://api.deepseek.com",
    # deepseek-reasoner: sampling knobs are accepted and ignored; logprobs are an error.
    params=Params(models=(("deepseek-reasoner", Params(
        drop=frozenset({"temperature", "top_p", "presence_penalty", "frequency_penalty"}),
        reject=frozenset({"logprobs", "top_logprobs"}))),)),
    cached_tokens_key="prompt_cache_hit_tokens",
    status_rules={402: _NO_BALANCE},
))

XAI = preset_spec(Preset(
    "xai", "https://api.x.ai/v1",
    # Reasoning models refuse these; grok-4 also takes no reasoning_effort (it always reasons).
    params=Params(models=(
        ("grok-4", Params(reject=frozenset({"presence_penalty", "frequency_penalty", "stop", "reasoning_effort"}))),
        ("grok-3-mini", Params(reject=frozenset({"presence_penalty", "frequency_penalty", "stop"}))),
    )),
))

PERPLEXITY = preset_spec(Preset(
    "perplexity", "https://api.perplexity.ai",
    # `search_*`, `return_images`, `web_search_options` pass through; `citations` / `search_results`
    # come back as extra response keys (the SDK keeps them).
    params=Params(drop=frozenset({"store", "metadata", "service_tier", "stream_options"})),
    stream_usage_option=False,  # every chunk carries usage
))

FIREWORKS = preset_spec(Preset(
    "fireworks", "https://api.fireworks.ai/inference/v1",
    # Fireworks shortens max_tokens when the prompt leaves too little room; OpenAI fails instead.
    defaults={"context_length_exceeded_behavior": "error"},
    stream_usage_option=False,  # the last chunk carries usage unasked
    embeddings=True,
))

OPENROUTER = preset_spec(Preset(
    "openrouter", "https://openrouter.ai/api/v1",
    header_fields={"site_url": ("HTTP-Referer", "your site, for OpenRouter's rankings."),
                   "app_name": ("X-Title", "your app's name, for OpenRouter's rankings.")},
    stream_usage_option=False,  # usage is always in the last chunk
    status_rules={
        402: StatusRule(502, "upstream_insufficient_credits", E.AUTH,
                        "its account has insufficient credits (upstream status 402)"),
        # 403 is OpenRouter's moderation refusing the input (401 is the key): the client's request.
        403: StatusRule(400, "content_filter", E.CONTENT_FILTER),
    },
))

CEREBRAS = preset_spec(Preset(
    "cerebras", "https://api.cerebras.ai/v1",
    params=Params(drop=frozenset({"service_tier", "store", "metadata"}),
                  reject=frozenset({"frequency_penalty", "presence_penalty", "logit_bias", "parallel_tool_calls"})),
))

SAMBANOVA = preset_spec(Preset(
    "sambanova", "https://api.sambanova.ai/v1",
    params=Params(drop=frozenset({"store", "metadata", "service_tier"}),
                  reject=frozenset({"logprobs", "top_logprobs", "logit_bias", "presence_penalty",
                                    "frequency_penalty"}),
                  max_n=1),
))

NVIDIA_NIM = preset_spec(Preset(
    "nvidia-nim", "https://integrate.api.nvidia.com/v1",
    params=Params(drop=frozenset({"store", "metadata", "service_tier"})),
    embeddings=True, embeddings_base64=True,
))

DEEPINFRA = preset_spec(Preset(
    "deepinfra", "https://api.deepinfra.com/v1/openai",
    params=Params(drop=frozenset({"store", "metadata", "service_tier"})),
    stream_usage_option=False,  # the finishing chunk carries usage unasked
    embeddings=True,
))

HUGGINGFACE = preset_spec(Preset(
    # Inference Providers' router; a dedicated Inference Endpoint or a TGI server is its own
    # `base_url` (https://<endpoint>.endpoints.huggingface.cloud/v1, http://<host>:8080/v1).
    "huggingface", "https://router.huggingface.co/v1",
    params=Params(drop=frozenset({"store", "metadata", "service_tier"})),
    error_types={"overloaded": E.OVERLOADED},
    context_markers=("`inputs` tokens + `max_new_tokens` must be <=",),
    # TGI's 424 is a failed generation: the server's, not the request's.
    status_rules={424: StatusRule(502, "upstream_generation_error", E.SERVER)},
))

LMSTUDIO = preset_spec(Preset(
    "lmstudio", "http://127.0.0.1:1234/v1",
    params=Params(drop=frozenset({"store", "metadata", "service_tier"})),
    embeddings=True,
))

LLAMACPP = preset_spec(Preset(
    "llamacpp", "http://127.0.0.1:8080/v1",
    params=Params(drop=frozenset({"store", "metadata", "service_tier"}),
                  max_n=1),  # "Only one completion choice is allowed"
    error_types={"exceed_context_size_error": E.CONTEXT_LENGTH},
    embeddings=True,
))

__all__ = ["CEREBRAS", "DEEPINFRA", "DEEPSEEK", "FIREWORKS", "HUGGINGFACE", "LLAMACPP", "LMSTUDIO", "NVIDIA_NIM",
           "OPENROUTER", "PERPLEXITY", "SAMBANOVA", "XAI", "Params", "Preset", "PresetAdapter", "StatusRule",
           "preset_spec"]

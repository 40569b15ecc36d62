"""`groq`: GroqCloud's OpenAI-compatible API (https://api.groq.com/openai/v1).

What Groq adds over `openai`, handled here:
- `n` must be 1 (a clear 400 from the gateway instead of Groq's), and fields Groq rejects as
  unsupported properties (`store`, `metadata`, `modalities`, `audio`, `prediction`) are dropped
  (`params`, params.py);
- responses carry `service_tier: "on_demand"` (and `performance`), which strict SDK parsing
  rejects: unknown tiers are dropped; `x_groq` stays (an extra key the SDK accepts);
- streams report usage in the last chunk's `x_groq.usage`, not in a usage chunk: it is moved to
  the OpenAI usage chunk (kept only if the client asked); `stream_options` is not needed;
- status 498 (flex tier capacity exceeded) is an overload: 503, error class overloaded, retryable;
- no embeddings (GroqCloud has none): /v1/embeddings is a clear 400;
- `logprobs`, `top_logprobs` and `logit_bias` (a 400 at Groq) are refused by the gateway with a
  400 naming the field (`params`), before any upstream call.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from .base import ProviderConfig
from .openai_compat import OpenAICompatAdapter
from .params import Params
from .spec import ProviderSpec


class GroqConfig(ProviderConfig):
    type: str = "groq"
    base_url: str | None = "https://api.groq.com/openai/v1"
    api_key: SecretStr | None = None


class GroqAdapter(OpenAICompatAdapter):
    supports_embeddings = False  # GroqCloud serves no embeddings models: a clear 400, not an upstream 404
    default_base_url = "https://api.groq.com/openai/v1"
    stream_usage_option = False
    params = Params(drop=frozenset({"store", "metadata", "modalities", "audio", "prediction",
                                    "stream_options"}),
                    reject=frozenset({"logprobs", "top_logprobs", "logit_bias"}), max_n=1)

    def stream_usage(self, chunk: dict[str, Any]) -> Any:
        usage = chunk.pop("usage", None)
        x_groq = chunk.get("x_groq")
        if isinstance(x_groq, dict) and isinstance(x_groq.get("usage"), dict):
            usage = x_groq.pop("usage")
        return usage


SPEC = ProviderSpec(config_model=GroqConfig, adapter=GroqAdapter)

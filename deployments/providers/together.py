"""`together`: Together AI's OpenAI-compatible API (https://api.together.xyz/v1).

What Together adds over `openai`, handled here:
- `finish_reason` `eos` (and `stop` with tool calls) is mapped onto OpenAI's set;
- stream chunks may lack `model` (and carry `token`/`generated_text`/`stats` extras, which the SDK
  accepts): missing fields are filled in; usage comes in the last chunk with the finish reason and
  is moved to the OpenAI usage chunk; `stream_options` is not sent;
- embeddings answers have no `usage`, which the SDK requires: zero usage is filled in;
- errors: 503 "overloaded or not ready" -> 503 overloaded; Cloudflare 520/522/524 timeouts ->
  504 timeout; input-validation errors about `inputs` tokens + `max_new_tokens` -> context length.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from serve_app import errors as E
from serve_app.errors import UpstreamError

from .base import CallContext, ProviderConfig
from .openai_compat import OpenAICompatAdapter
from .params import Params
from .spec import ProviderSpec

_EDGE_TIMEOUTS = frozenset({520, 522, 524})


class TogetherConfig(ProviderConfig):
    type: str = "together"
    base_url: str | None = "https://api.together.xyz/v1"
    api_key: SecretStr | None = None


class TogetherAdapter(OpenAICompatAdapter):
    default_base_url = "https://api.together.xyz/v1"
    stream_usage_option = False
    params = Params(drop=frozenset({"store", "metadata", "stream_options"}))
    embeddings_base64 = False

    def classify_error(self, status: int, message: str, code: str | None, data: Any) -> str | None:
        text = message.lower()
        if status in (400, 422) and "tokens" in text and ("must be <=" in text or "max_new_tokens" in text):
            return E.CONTEXT_LENGTH
        return None

    def error(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> UpstreamError:
        if status in _EDGE_TIMEOUTS:
            err = super().error(504, headers, payload, ctx)
            err.message = f"provider {ctx.provider!r} timed out at its edge (upstream status {status})"
            err.code = "upstream_timeout"
            return err
        return super().error(status, headers, payload, ctx)


SPEC = ProviderSpec(config_model=TogetherConfig, adapter=TogetherAdapter)

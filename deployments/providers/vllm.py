"""`vllm`: a vLLM OpenAI-compatible server (default http://127.0.0.1:8000/v1, no key needed).

The request body is forwarded as the client sent it, so vLLM's extra sampling and structured-output
parameters (`guided_json`, `guided_regex`, `guided_choice`, `top_k`, `min_p`,
`repetition_penalty`, `chat_template_kwargs`, ...) pass through unchanged. Responses go through
the shared normaliser: vLLM's extras (`stop_reason`, `prompt_logprobs`, `kv_transfer_params`,
`reasoning_content`) are keys the SDK accepts; `finish_reason` `abort` / `error` end the call with
an upstream error; error bodies (`{"object": "error", "type": "BadRequestError", "code": 400}`)
become OpenAI errors.
"""

from __future__ import annotations

from pydantic import SecretStr

from .base import ProviderConfig
from .openai_compat import OpenAICompatAdapter
from .spec import ProviderSpec


class VLLMConfig(ProviderConfig):
    type: str = "vllm"
    base_url: str | None = "http://127.0.0.1:8000/v1"
    api_key: SecretStr | None = None


class VLLMAdapter(OpenAICompatAdapter):
    default_base_url = "http://127.0.0.1:8000/v1"
    stream_usage_option = True
    error_finish_reasons = frozenset({"error", "abort"})
    embeddings_base64 = True


SPEC = ProviderSpec(config_model=VLLMConfig, adapter=VLLMAdapter)

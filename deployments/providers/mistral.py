"""`mistral`: Mistral AI's chat completions and embeddings (https://api.mistral.ai/v1).

OpenAI-like, with these differences handled here:
- requests: `seed` is `random_seed`, `max_completion_tokens` is `max_tokens`, `user`/`store`/
  `metadata`/`service_tier` are rejected upstream (422) and dropped, `stream_options` is not sent
  (the last chunk carries usage anyway), and tool-call ids that are not Mistral's nine
  alphanumerics (e.g. OpenAI's `call_...` ids in a history that moved between providers) are
  mapped to stable nine-character ids, the same in the assistant message and in the tool result;
- responses: `finish_reason` `model_length` -> length, `error` -> an upstream error; content
  returned as a list of chunks (text / thinking) is flattened to text (+ `reasoning_content`);
  stream tool calls (sent whole, sometimes all with `index` 0) get distinct indexes;
- errors: the body is `{"object": "error", "message": ..., "type": ..., "code": "3051"}`, and for
  422 `message.detail` is a validation list: both read into one OpenAI error; `invalid_model`
  (a 400) has error class not_found;
- embeddings: `dimensions` is `output_dimension`; base64 output is encoded here;
- `logprobs`, `top_logprobs` and `logit_bias` (not in Mistral's API, a 422 there) are refused by
  the gateway with a 400 naming the field (`params`, params.py).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pydantic import SecretStr

from serve_app import errors as E

from .base import CallContext, ProviderConfig
from .openai_compat import OpenAICompatAdapter
from .params import Params
from .spec import ProviderSpec

_MISTRAL_ID = re.compile(r"^[A-Za-z0-9]{9}$")
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


class MistralConfig(ProviderConfig):
    type: str = "mistral"
    base_url: str | None = "https://api.mistral.ai/v1"
    api_key: SecretStr | None = None
    safe_prompt: bool | None = None


def mistral_tool_call_id(call_id: Any) -> Any:
    """Mistral accepts only [A-Za-z0-9]{9} tool-call ids; map others stably."""
    if not isinstance(call_id, str) or _MISTRAL_ID.match(call_id):
        return call_id
    n = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big")
    out = []
    for _ in range(9):
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return "".join(out)


class MistralAdapter(OpenAICompatAdapter):
    default_base_url = "https://api.mistral.ai/v1"
    stream_usage_option = False
    rename_fields = {"seed": "random_seed", "max_completion_tokens": "max_tokens"}
    params = Params(drop=frozenset({"user", "store", "metadata", "service_tier", "stream_options"}),
                    reject=frozenset({"logprobs", "top_logprobs", "logit_bias"}))
    embeddings_base64 = False
    embeddings_rename = {"dimensions": "output_dimension"}

    def prepare_chat(self, body: dict[str, Any], ctx: CallContext, stream: bool) -> dict[str, Any]:
        body = super().prepare_chat(body, ctx, stream)
        safe = getattr(self.config, "safe_prompt", None)
        if safe is not None and "safe_prompt" not in body:
            body["safe_prompt"] = safe
        for msg in body.get("messages") or ():
            if not isinstance(msg, dict):
                continue
            if msg.get("role") == "tool" and "tool_call_id" in msg:
                msg["tool_call_id"] = mistral_tool_call_id(msg["tool_call_id"])
            calls = msg.get("tool_calls")
            if isinstance(calls, list):
                for tc in calls:
                    if isinstance(tc, dict) and "id" in tc:
                        tc["id"] = mistral_tool_call_id(tc["id"])
        return body

    def classify_error(self, status: int, message: str, code: str | None, data: Any) -> str | None:
        if isinstance(data, dict) and data.get("type") == "invalid_model":
            return E.NOT_FOUND
        return None


SPEC = ProviderSpec(config_model=MistralConfig, adapter=MistralAdapter)

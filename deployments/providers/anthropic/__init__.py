"""`anthropic`: the Anthropic Messages API (`POST {base_url}/v1/messages`, `x-api-key`, `anthropic-version`).

Request: system and developer messages are lifted into `system`; user/assistant/tool messages
become alternating turns of content blocks (text, image from an http(s) URL or a base64 data URL,
PDF `file` parts as document blocks, `tool_use` for assistant tool calls, `tool_result` for tool
messages, consecutive same-role turns merged); `max_tokens` is required by the API, so the
config's `max_tokens` fills in when the request sets neither `max_tokens` nor
`max_completion_tokens`. Tools map to `tools[].input_schema`; `tool_choice` auto/none/required/
named map to auto/none/any/tool, `parallel_tool_calls: false` to `disable_parallel_tool_use`.
`temperature` is clamped to Anthropic's 0..1; `stop` -> `stop_sequences`; `user` ->
`metadata.user_id`; `seed`, penalties, `logit_bias` and `logprobs` have no equivalent and are
dropped; `n > 1` is a 400. Extensions passed through: `top_k`, `thinking`, `cache_control` on
text parts and tools. `reasoning_effort` (without `thinking`) enables extended thinking with a
budget of 1024 / 2048 / 4096 tokens. An assistant message's `thinking_blocks` (as responses give
them) go back first in its turn, signatures included, so tool use with thinking round-trips.

JSON mode: `json_object` adds a system instruction. `json_schema` is emulated with a forced tool
(`raygate_json_output`, input_schema = the schema) when the request has no tools of its own and no
extended thinking: the tool's input comes back as the message content with finish_reason
`stop`. With client tools present the schema goes into the system prompt instead (best effort).

Response and stream: text -> content, tool_use -> tool_calls (ids kept), thinking ->
`reasoning_content` + `thinking_blocks` (type, thinking, signature; redacted_thinking with data),
stop_reason -> finish_reason (end_turn/stop_sequence/pause_turn -> stop, max_tokens/
model_context_window_exceeded -> length, tool_use -> tool_calls, refusal -> content_filter),
usage with cache reads in `prompt_tokens_details.cached_tokens` (cache writes in
`cache_write_tokens`) and thinking tokens in `completion_tokens_details.reasoning_tokens`.
Errors: the body's `error.type` sets the error class; 529 overloaded -> 503, 401/403 -> 502
upstream_auth_error, 402 billing -> 502 upstream_billing_error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from ..base import Adapter, CallContext, ProviderConfig, UpstreamError, UpstreamRequest, json_body
from ..spec import ProviderSpec
from .request import JSON_TOOL, chat_body
from .response import AnthropicStream, chat_completion, error_from_body, openai_usage

DEFAULT_BASE_URL = "https://api.anthropic.com"


class AnthropicConfig(ProviderConfig):
    type: str = "anthropic"
    base_url: str | None = Field(DEFAULT_BASE_URL, description="Endpoint root; `/v1/messages` is appended.")
    anthropic_version: str = Field("2023-06-01", description="The `anthropic-version` header.")
    anthropic_beta: list[str] = Field(default_factory=list, description="Values for the `anthropic-beta` header.")
    max_tokens: int = Field(4096, ge=1, description="`max_tokens` sent when the request sets none (the API requires it).")


class AnthropicAdapter(Adapter):
    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        base = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.url = base + "/v1/messages"
        self.models_url = base + "/v1/models?limit=1000"
        self.max_tokens = getattr(config, "max_tokens", 4096)
        headers = {
            "content-type": "application/json",
            "anthropic-version": getattr(config, "anthropic_version", "2023-06-01"),
        }
        key = config.secret()
        if key:
            headers["x-api-key"] = key
        beta = getattr(config, "anthropic_beta", None)
        if beta:
            headers["anthropic-beta"] = ",".join(beta)
        self.headers = headers
        self.stream_headers = {**headers, "accept": "text/event-stream"}

    def models_request(self) -> UpstreamRequest | None:
        return UpstreamRequest("GET", self.models_url, self.headers)

    def chat_request(self, body: dict[str, Any], ctx: CallContext, stream: bool) -> UpstreamRequest:
        payload = chat_body(body, ctx.model, self.max_tokens, stream)
        return UpstreamRequest("POST", self.url, self.stream_headers if stream else self.headers, json_body(payload))

    def chat_response(self, status: int, payload: bytes, ctx: CallContext) -> bytes:
        return chat_completion(payload, ctx)

    def chat_stream(self, ctx: CallContext) -> AnthropicStream:
        return AnthropicStream(ctx)

    def error(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> UpstreamError:
        return error_from_body(status, headers, payload, ctx.provider)


SPEC = ProviderSpec(config_model=AnthropicConfig, adapter=AnthropicAdapter)

__all__ = ["JSON_TOOL", "SPEC", "AnthropicAdapter", "AnthropicConfig", "AnthropicStream", "openai_usage"]

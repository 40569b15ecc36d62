"""The provider contract: config model, pure translation (Adapter) and the request it produces.

An adapter maps OpenAI JSON onto one provider's API and back, for requests, responses, stream
chunks and errors. It is pure: bytes and dicts in, bytes and dicts out, no I/O, no Ray, no
clock except through `CallContext.created`. The transport (transport.py) owns the network.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from serve_app import errors as E
from serve_app.errors import GatewayError, UpstreamError


class ProviderConfig(BaseModel):
    """Fields every provider type accepts; a type's module subclasses this with its own."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The provider's name in the config (filled in by the loader).")
    type: str
    api_key: SecretStr | None = None
    base_url: str | None = Field(None, description="Replaces the type's default endpoint root.")
    model: str | None = Field(None, description="Default upstream model; a request or route overrides it.")
    models: list[str] = Field(default_factory=list, description="Models listed by GET /v1/models.")
    timeout: float = Field(600, gt=0, description="Seconds for a whole call; for streams, to first byte.")
    connect_timeout: float = Field(10, gt=0)
    stream_idle_timeout: float = Field(300, gt=0, description="Max seconds between stream chunks.")
    discover_models: bool = Field(False, description="Add the provider's own model listing to GET /v1/models.")
    discovery_ttl: float = Field(300, gt=0, description="Seconds a discovered listing is reused.")

    def secret(self) -> str:
        return self.api_key.get_secret_value() if self.api_key is not None else ""


@dataclass(slots=True)
class CallContext:
    """What translation needs to know about one upstream call (serializable)."""

    provider: str
    model: str
    request_id: str
    include_usage: bool = False
    created: int = field(default_factory=lambda: int(time.time()))
    client_headers: dict[str, str] = field(default_factory=dict)  # the client's x-raygate-* headers
    metadata: dict[str, str] | None = None  # gateway metadata; only `openai` forwards it (store: true)
    state: dict[str, str] = field(default_factory=dict)  # an adapter's notes from request to response


@dataclass(slots=True)
class UpstreamRequest:
    """`url` must be fully percent-encoded: the transport sends it unchanged."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None


class StreamTranslator(Protocol):
    """Turns a provider's stream bytes into OpenAI SSE bytes (`data: {chunk}\\n\\n` ... `data: [DONE]`).

    `feed` may return b"" while it waits for a whole event. `finish` runs at upstream EOF and
    returns what is left, ending with `data: [DONE]\\n\\n`; it raises an UpstreamError with
    error class STREAM_CUT when the upstream ended without its terminal event.
    `usage` holds the OpenAI usage dict once the provider has reported it.
    """

    usage: dict[str, Any] | None

    def feed(self, chunk: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class Adapter(abc.ABC):
    """Base adapter: every method maps JSON to JSON; subclasses override what their API needs.

    `supports_embeddings = False` makes /v1/embeddings a clear 400 for the type.
    """

    supports_embeddings: ClassVar[bool] = False

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    @abc.abstractmethod
    def chat_request(self, body: dict[str, Any], ctx: CallContext, stream: bool) -> UpstreamRequest:
        ...

    @abc.abstractmethod
    def chat_response(self, status: int, payload: bytes, ctx: CallContext) -> bytes:
        ...

    @abc.abstractmethod
    def chat_stream(self, ctx: CallContext) -> StreamTranslator:
        ...

    def embeddings_request(self, body: dict[str, Any], ctx: CallContext) -> UpstreamRequest:
        raise E.bad_request(
            f"provider {self.config.name!r} (type {self.config.type}) does not serve embeddings",
            param="model",
            code="unsupported_endpoint",
        )

    def embeddings_response(self, status: int, payload: bytes, ctx: CallContext) -> bytes:
        return payload

    def models_request(self) -> UpstreamRequest | None:
        """The provider's model listing (for `discover_models`); None where it has none."""
        return None

    def models_response(self, payload: bytes) -> list[str]:
        """Model ids from a listing body; the default reads `{"data": [{"id": ...}]}` (OpenAI, Anthropic)."""
        data = require_json(payload, self.config.name)
        items = data.get("data") if isinstance(data, dict) else None
        return [m["id"] for m in items or [] if isinstance(m, dict) and isinstance(m.get("id"), str)]

    def error(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> UpstreamError:
        """Map a provider error response; the default reads OpenAI-style bodies."""
        return upstream_error(status, headers, payload, ctx.provider)


# --- status and error mapping shared by every adapter -------------------------------------

# Upstream statuses that mean the same to the client and are passed through unchanged.
PASS_THROUGH = frozenset({400, 404, 413, 422, 429, 500, 502, 503, 504})
# Overload codes outside HTTP's set: Anthropic 529, Groq 498.
OVERLOAD = frozenset({498, 529})

_CLASS_BY_STATUS = {
    400: E.BAD_REQUEST,
    404: E.NOT_FOUND,
    408: E.TIMEOUT,
    413: E.BAD_REQUEST,
    422: E.BAD_REQUEST,
    429: E.RATE_LIMITED,
    500: E.SERVER,
    502: E.SERVER,
    503: E.OVERLOADED,
    504: E.TIMEOUT,
}

_CONTEXT_MARKERS = ("context_length_exceeded", "context length", "maximum context", "too many tokens",
                    "prompt is too long", "input is too long")
_FILTER_MARKERS = ("content_filter", "content_policy", "safety", "responsible ai policy")


def classify(status: int, message: str = "", code: str | None = None) -> str:
    """The error class of an upstream failure (what routing retries or falls back on)."""
    text = f"{code or ''} {message}".lower()
    if status in (401, 403):
        return E.AUTH
    if status in OVERLOAD:
        return E.OVERLOADED
    if status in (400, 413, 422):
        if any(m in text for m in _CONTEXT_MARKERS):
            return E.CONTEXT_LENGTH
        if any(m in text for m in _FILTER_MARKERS):
            return E.CONTENT_FILTER
    cls = _CLASS_BY_STATUS.get(status)
    if cls:
        return cls
    return E.SERVER if status >= 500 else E.BAD_REQUEST


def client_status(status: int) -> int:
    """The status the client sees for an upstream status (foundation rules)."""
    if status in PASS_THROUGH:
        return status
    if status in OVERLOAD:
        return 503
    if status in (401, 403):
        return 502
    if status == 408:
        return 504
    return 502 if status >= 500 else 400


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        ms = headers.get("retry-after-ms")
        try:
            return float(ms) / 1000 if ms else None
        except ValueError:
            return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def error_fields(payload: bytes) -> tuple[str, str | None, str | None, str | None]:
    """(message, type, code, param) from an error body in the common `{"error": {...}}` shapes."""
    try:
        data = orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        text = payload[:500].decode("utf-8", "replace").strip()
        return text, None, None, None
    err = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, dict):
        message = err.get("message") or err.get("msg") or err.get("detail") or ""
        code = err.get("code") if err.get("code") is not None else err.get("status")
        return (str(message), _s(err.get("type")), _s(code), _s(err.get("param")))
    if isinstance(err, str):
        return err, None, None, None
    return "", None, None, None


def _s(v: Any) -> str | None:
    return None if v is None else str(v)


def upstream_error(
    status: int,
    headers: Mapping[str, str],
    payload: bytes,
    provider: str,
    *,
    message: str | None = None,
    code: str | None = None,
    error_class: str | None = None,
) -> UpstreamError:
    """Build the client-facing error for an upstream failure, by the foundation's status rules."""
    up_message, up_type, up_code, param = error_fields(payload)
    code = code or up_code
    error_class = error_class or classify(status, up_message, code)
    out_status = client_status(status)
    if status in (401, 403):
        # Never echo the provider's text: it may quote part of the gateway's credential.
        return UpstreamError(
            502,
            f"provider {provider!r} refused the gateway's credentials (upstream status {status})",
            provider=provider,
            code="upstream_auth_error",
            type="upstream_error",
            error_class=E.AUTH,
        )
    text = message or up_message or f"upstream returned status {status}"
    if error_class == E.OVERLOADED and status in OVERLOAD:
        code = code or "upstream_overloaded"
    if error_class == E.CONTEXT_LENGTH:
        code = "context_length_exceeded"
    return UpstreamError(
        out_status,
        f"provider {provider!r}: {text}",
        provider=provider,
        type=(up_type if out_status == status and up_type else None),
        param=param,
        code=code,
        error_class=error_class,
        retry_after=retry_after_seconds(headers),
    )


def stream_cut(provider: str, detail: str = "") -> UpstreamError:
    msg = f"provider {provider!r} ended the stream before it was complete"
    return UpstreamError(502, msg + (f": {detail}" if detail else ""), provider=provider,
                         code="upstream_stream_cut", error_class=E.STREAM_CUT)


def refused(provider: str, reason: str, detail: str = "") -> UpstreamError:
    """A prompt the provider's safety system blocked: the client's request, a 400 `content_filter`
    naming the provider's reason category (never a gateway failure, never retried elsewhere);
    `detail` is the provider's own explanation, when it gives one."""
    message = f"provider {provider!r} blocked the prompt ({reason})" + (f": {detail}" if detail else "")
    return UpstreamError(400, message, provider=provider, param="messages", code="content_filter",
                         error_class=E.CONTENT_FILTER)


def json_body(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)


def require_json(payload: bytes, provider: str) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise UpstreamError(502, f"provider {provider!r} returned a body that is not JSON",
                            provider=provider, code="upstream_bad_response", error_class=E.SERVER) from None


__all__ = [
    "Adapter",
    "CallContext",
    "GatewayError",
    "ProviderConfig",
    "StreamTranslator",
    "UpstreamError",
    "UpstreamRequest",
    "classify",
    "client_status",
    "error_fields",
    "json_body",
    "refused",
    "require_json",
    "retry_after_seconds",
    "stream_cut",
    "upstream_error",
]

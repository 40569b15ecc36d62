"""The provider-adapter stage: one configured provider = its adapter (translation) over a transport.

`Provider` is a plain class with async entry points; the builder either keeps it in the ingress
(default: no hop, streams piped straight from the upstream) or wraps it as its own deployment
(`ProviderDeployment`), reached through `RemoteProvider` with the same interface.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from serve_app.errors import GatewayError, UpstreamError
from serve_app.protocol import SSE_DONE

from . import registry
from .base import CallContext, ProviderConfig, require_json
from .served import own_model
from .transport import Timeouts


class Provider:
    def __init__(self, config: ProviderConfig, transport: Any | None = None) -> None:
        spec = registry.get(config.type)
        if spec is None:  # the config loader already rejects unknown types
            raise ValueError(f"unknown provider type {config.type!r}")
        self.config = config
        self.name = config.name
        self.adapter = spec.adapter(config)
        # An adapter that must prepare something off the event loop first (Bedrock's AWS credentials).
        self._ready = getattr(self.adapter, "ready", None)
        self.transport = transport if transport is not None else spec.make_transport(config)
        self.timeouts = Timeouts(config.timeout, config.connect_timeout, config.stream_idle_timeout)
        self.own_model = own_model(config) or ""

    def default_model(self, requested: str | None) -> str:
        return requested or self.own_model

    def _timeouts(self, timeout: float | None) -> Timeouts:
        if timeout is None:
            return self.timeouts
        return Timeouts(timeout, min(self.timeouts.connect, timeout), self.timeouts.idle)

    async def chat(self, body: dict[str, Any], ctx: CallContext, timeout: float | None = None) -> bytes:
        """A non-streamed chat completion: OpenAI `chat.completion` JSON bytes, or UpstreamError."""
        if self._ready is not None:
            await self._ready()
        req = self.adapter.chat_request(body, ctx, stream=False)
        resp = await self.transport.request(req, self._timeouts(timeout), self.name)
        if resp.status >= 400:
            raise self.adapter.error(resp.status, resp.headers, resp.body, ctx)
        return self.adapter.chat_response(resp.status, resp.body, ctx)

    async def open_chat_stream(self, body: dict[str, Any], ctx: CallContext,
                               timeout: float | None = None) -> ChatStream:
        """Open the upstream stream; errors before the first byte raise here (fallback is still possible)."""
        if self._ready is not None:
            await self._ready()
        req = self.adapter.chat_request(body, ctx, stream=True)
        up = await self.transport.open_stream(req, self._timeouts(timeout), self.name)
        if up.status >= 400:
            payload = await up.read()
            raise self.adapter.error(up.status, up.headers, payload, ctx)
        stream = ChatStream(up, self.adapter.chat_stream(ctx))
        await stream.start()
        return stream

    async def list_models(self) -> list[str]:
        """The provider's own model listing ([] where it has none)."""
        req = self.adapter.models_request()
        if req is None:
            return []
        resp = await self.transport.request(req, self.timeouts, self.name)
        if resp.status >= 400:
            raise self.adapter.error(resp.status, resp.headers, resp.body, CallContext(self.name, "", "models"))
        return self.adapter.models_response(resp.body)

    async def embeddings(self, body: dict[str, Any], ctx: CallContext, timeout: float | None = None) -> bytes:
        if self._ready is not None:
            await self._ready()
        req = self.adapter.embeddings_request(body, ctx)
        resp = await self.transport.request(req, self._timeouts(timeout), self.name)
        if resp.status >= 400:
            raise self.adapter.error(resp.status, resp.headers, resp.body, ctx)
        return self.adapter.embeddings_response(resp.status, resp.body, ctx)


class ChatStream:
    """An opened upstream stream, translated to OpenAI SSE bytes as it is iterated.

    `start` reads until the translator has its first output: what the provider reports in its
    first events (Gemini's blocked prompt, an error event, a stream that ends at once) then raises
    before the response starts, as a plain error response the client (and fallback) can act on.
    """

    __slots__ = ("_up", "translator", "_chunks", "_first", "_ended")

    def __init__(self, up: Any, translator: Any) -> None:
        self._up = up
        self.translator = translator
        self._chunks: Any = None
        self._first = b""
        self._ended = False

    @property
    def usage(self) -> dict[str, Any] | None:
        return self.translator.usage

    async def start(self) -> None:
        self._chunks = self._up.chunks().__aiter__()
        try:
            while not self._first:
                try:
                    chunk = await self._chunks.__anext__()
                except StopAsyncIteration:
                    self._ended = True
                    self._first = self.translator.finish()
                    return
                self._first = self.translator.feed(chunk)
        except BaseException:
            self._up.release()
            raise

    async def __aiter__(self) -> AsyncIterator[bytes]:
        feed = self.translator.feed
        try:
            if self._chunks is None:
                self._chunks = self._up.chunks().__aiter__()
            if self._first:
                yield self._first
            if self._ended:
                return
            async for chunk in self._chunks:
                out = feed(chunk)
                if out:
                    yield out
            tail = self.translator.finish()
            if tail:
                yield tail
        finally:
            self._up.release()

    def close(self) -> None:
        self._up.release()


class ProviderDeployment:
    """A Provider as its own Serve deployment (placement: deployment)."""

    def __init__(self, config: ProviderConfig) -> None:
        self.provider = Provider(config)

    async def ping(self) -> bool:
        return True

    async def chat(self, body: dict[str, Any], ctx: CallContext, timeout: float | None = None) -> bytes:
        return await self.provider.chat(body, ctx, timeout)

    async def chat_stream(self, body: dict[str, Any], ctx: CallContext,
                          timeout: float | None = None) -> AsyncIterator[bytes | dict[str, Any]]:
        """The stream's bytes; its usage as a dict item just before `[DONE]` (the caller's record needs it)."""
        stream = await self.provider.open_chat_stream(body, ctx, timeout)
        async for chunk in stream:
            if stream.usage is not None and chunk.endswith(SSE_DONE):
                yield {"usage": stream.usage}
            yield chunk

    async def embeddings(self, body: dict[str, Any], ctx: CallContext, timeout: float | None = None) -> bytes:
        return await self.provider.embeddings(body, ctx, timeout)

    async def list_models(self) -> list[str]:
        return await self.provider.list_models()


class RemoteProvider:
    """Ingress-side stand-in for a ProviderDeployment: same interface, one handle hop per call."""

    def __init__(self, config: ProviderConfig, handle: Any) -> None:
        self.config = config
        self.name = config.name
        self._handle = handle
        self._stream_handle = handle.options(stream=True)  # cached: .options() per call is costly
        self.own_model = own_model(config) or ""

    def default_model(self, requested: str | None) -> str:
        return requested or self.own_model

    async def chat(self, body: dict[str, Any], ctx: CallContext, timeout: float | None = None) -> bytes:
        return await self._handle.chat.remote(body, ctx, timeout)

    async def open_chat_stream(self, body: dict[str, Any], ctx: CallContext,
                               timeout: float | None = None) -> RemoteChatStream:
        gen = self._stream_handle.chat_stream.remote(body, ctx, timeout)
        first = await gen.__anext__()  # surfaces errors raised before the first byte
        return RemoteChatStream(gen, first)

    async def embeddings(self, body: dict[str, Any], ctx: CallContext, timeout: float | None = None) -> bytes:
        return await self._handle.embeddings.remote(body, ctx, timeout)

    async def list_models(self) -> list[str]:
        return await self._handle.list_models.remote()


class RemoteChatStream:
    __slots__ = ("_gen", "_first", "usage")

    def __init__(self, gen: Any, first: bytes | dict[str, Any]) -> None:
        self._gen, self._first = gen, first
        self.usage: dict[str, Any] | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if isinstance(self._first, dict):  # a one-chunk stream: its usage report comes first
            self.usage = self._first.get("usage")
        else:
            yield self._first
        async for chunk in self._gen:
            if isinstance(chunk, dict):  # the deployment's usage report (just before [DONE]), not bytes
                self.usage = chunk.get("usage")
                continue
            yield chunk

    def close(self) -> None:
        self._gen.cancel()


def parse_usage(body: bytes) -> dict[str, Any] | None:
    try:
        usage = orjson.loads(body).get("usage")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return usage if isinstance(usage, dict) else None


__all__ = ["ChatStream", "GatewayError", "Provider", "ProviderDeployment", "RemoteProvider",
           "UpstreamError", "parse_usage", "require_json"]

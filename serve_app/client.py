"""Call a deployed raygate from another Ray job or driver, without HTTP.

    import ray                        # with the variables `raygate serve` prints (RAY_ADDRESS=...)
    from serve_app.client import RaygateClient

    ray.init(address="auto")          # RAY_AUTH_MODE=token and the cluster's token, as for any driver
    gw = RaygateClient()              # app "raygate"; api_key from RAYGATE_API_KEY if auth is on
    reply = gw.chat(model="mock", messages=[{"role": "user", "content": "hi"}])
    for chunk in gw.stream_chat(model="mock", messages=[...]):
        print(chunk["choices"][0]["delta"].get("content", ""), end="")
    vectors = gw.embeddings(model="mock", input=["a", "b"])

Replies are the OpenAI JSON as dicts (`chat.completion`, `chat.completion.chunk`, embeddings
`list`). Failures raise `GatewayError` with the same status, message and code as over HTTP.
Async variants: `achat`, `astream_chat`, `aembeddings` (use these inside an event loop: async
code, Jupyter). A handle call costs ~2 ms; a stream
through a handle costs more per chunk than over HTTP (see bench/results/latest.md).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

from .errors import GatewayError

__all__ = ["GatewayError", "RaygateClient"]


def _in_event_loop() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class RaygateClient:
    def __init__(self, app_name: str = "raygate", api_key: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        from ray import serve

        self._handle = serve.get_app_handle(app_name)
        if not _in_event_loop() and not self._handle.is_initialized:
            # Serve's throughput mode runs a handle's router on the caller's loop; a plain
            # (synchronous) driver has none, so give the router its own.
            self._handle._init(_run_router_in_separate_loop=True)
        self._stream = self._handle.options(stream=True)
        self.api_key = api_key if api_key is not None else os.environ.get("RAYGATE_API_KEY")
        self.headers = headers or {}

    def chat(self, **body: Any) -> dict[str, Any]:
        return self._handle.chat.remote(body, self.api_key, self.headers).result()

    def stream_chat(self, **body: Any) -> Iterator[dict[str, Any]]:
        yield from self._stream.chat_stream.remote(body, self.api_key, self.headers)

    def embeddings(self, **body: Any) -> dict[str, Any]:
        return self._handle.embeddings.remote(body, self.api_key, self.headers).result()

    def models(self) -> dict[str, Any]:
        return self._handle.models.remote().result()

    async def achat(self, **body: Any) -> dict[str, Any]:
        return await self._handle.chat.remote(body, self.api_key, self.headers)

    async def astream_chat(self, **body: Any) -> AsyncIterator[dict[str, Any]]:
        async for chunk in self._stream.chat_stream.remote(body, self.api_key, self.headers):
            yield chunk

    async def aembeddings(self, **body: Any) -> dict[str, Any]:
        return await self._handle.embeddings.remote(body, self.api_key, self.headers)

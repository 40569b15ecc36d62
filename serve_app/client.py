"""Call a deployed raygate from another Ray job or driver, without HTTP.

    import ray                        # with the variables `raygate serve` prints (RAY_ADDRESS=...)
    from serve_app.client import RaygateClient

    ray.init(address="auto")          # RAY_AUTH_MODE=token and the cluster's token, as for any driver
    gw = RaygateClient()              # app "raygate"; api_key from RAYGATE_API_KEY if auth is on
    reply = gw.chat(model="mock", messages=[{"role": "user", "content": "hi"}])
    for chunk in gw.stream_chat(model="mock", messages=[...]):
        print(chunk["choices"][0]["delta"].get("content", ""), end="")
    vectors = gw.embeddings(model="mock", input=["a", "b"])

Prompts (docs/prompts.md), over the same handle (`admin_key`, or RAYGATE_ADMIN_KEY, for writes):

    gw = RaygateClient(admin_key="...")
    gw.prompts.deploy(name="triage", version="1.2.0", prompt=[{"role": "user", "content": "Ticket: {{t}}"}],
                      model="gpt-4o-mini", parameters={"temperature": 0.2}, labels=["production"])
    reply = gw.prompts.render(name="triage", variables={"t": "..."}, test_version="1.3.0-beta")
    reply["prompt"]                   # {"name": "triage", "version": ..., "test": ...}

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

__all__ = ["GatewayError", "PromptsClient", "RaygateClient"]


def _in_event_loop() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class RaygateClient:
    def __init__(self, app_name: str = "raygate", api_key: str | None = None,
                 headers: dict[str, str] | None = None, admin_key: str | None = None) -> None:
        from ray import serve

        self._handle = serve.get_app_handle(app_name)
        if not _in_event_loop() and not self._handle.is_initialized:
            # Serve's throughput mode runs a handle's router on the caller's loop; a plain
            # (synchronous) driver has none, so give the router its own.
            self._handle._init(_run_router_in_separate_loop=True)
        self._stream = self._handle.options(stream=True)
        self.api_key = api_key if api_key is not None else os.environ.get("RAYGATE_API_KEY")
        self.headers = headers or {}
        self.admin_key = admin_key if admin_key is not None else os.environ.get("RAYGATE_ADMIN_KEY")
        self.prompts = PromptsClient(self)

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


def _given(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


class PromptsClient:
    """`RaygateClient.prompts`: the /v1/prompts API (deployments/prompts/api.py) over handle calls to the
    ingress (`Ingress.prompts` / `prompts_stream`), with the same errors as over HTTP."""

    def __init__(self, client: RaygateClient) -> None:
        self._client = client

    def _remote(self, method: str, path: str, body: Any = None, admin: bool = False, query: str = "") -> Any:
        c = self._client
        return c._handle.prompts.remote(method, path, body, c.admin_key if admin else c.api_key, c.headers, query)

    def _call(self, method: str, path: str, body: Any = None, admin: bool = False, query: str = "") -> Any:
        return self._remote(method, path, body, admin, query).result()

    def deploy(self, name: str, version: str, prompt: list[dict[str, Any]] | None = None, *,
               messages: list[dict[str, Any]] | None = None, model: str | None = None,
               parameters: dict[str, Any] | None = None, provider: str | None = None, config: Any = None,
               description: str | None = None, labels: list[str] | None = None) -> dict[str, Any]:
        """Deploy an immutable version (`prompt` is the messages); `labels` move to it."""
        body = _given(version=version, messages=messages if messages is not None else prompt, model=model,
                      parameters=parameters, provider=provider, config=config, description=description,
                      labels=labels)
        return self._call("POST", f"/{name}/versions", body, admin=True)

    async def adeploy(self, name: str, version: str, prompt: list[dict[str, Any]] | None = None,
                      **fields: Any) -> dict[str, Any]:
        messages = fields.pop("messages", prompt)
        return await self._remote("POST", f"/{name}/versions", _given(version=version, messages=messages, **fields),
                                  admin=True)

    def render(self, name: str, variables: dict[str, Any] | None = None, *, stream: bool = False,
               dry_run: bool = False, **fields: Any) -> Any:
        """Render and run as a chat completion (the reply has a `prompt` object); `stream=True` yields
        chunks; `dry_run=True` returns the rendered messages without calling a model. Other fields: version,
        label, test, test_version, split, sticky_key, allow_extra, metadata, cache (docs/prompts.md)."""
        body = _given(variables=variables, **fields)
        if stream:
            c = self._client
            return iter(c._stream.prompts_stream.remote(f"/{name}/render", body, c.api_key, c.headers))
        return self._call("POST", f"/{name}/render", body, query="dry_run=true" if dry_run else "")

    async def arender(self, name: str, variables: dict[str, Any] | None = None, *, dry_run: bool = False,
                      **fields: Any) -> dict[str, Any]:
        return await self._remote("POST", f"/{name}/render", _given(variables=variables, **fields),
                                  query="dry_run=true" if dry_run else "")

    def list(self) -> dict[str, Any]:
        return self._call("GET", "")

    def get(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/{name}")

    def get_version(self, name: str, version: str) -> dict[str, Any]:
        return self._call("GET", f"/{name}/versions/{version}")

    def delete_version(self, name: str, version: str) -> dict[str, Any]:
        return self._call("DELETE", f"/{name}/versions/{version}", admin=True)

    def set_label(self, name: str, label: str, version: str) -> dict[str, Any]:
        return self._call("PUT", f"/{name}/labels/{label}", {"version": version}, admin=True)

    def delete_label(self, name: str, label: str) -> dict[str, Any]:
        return self._call("DELETE", f"/{name}/labels/{label}", admin=True)

    def create_test(self, name: str, test: str, versions: dict[str, float],
                    sticky_key: str | None = None) -> dict[str, Any]:
        return self._call("POST", f"/{name}/tests", _given(name=test, versions=versions, sticky_key=sticky_key),
                          admin=True)

    def test_stats(self, name: str, test: str, since: float | None = None) -> dict[str, Any]:
        return self._call("GET", f"/{name}/tests/{test}", query=f"since={since}" if since is not None else "")

    def delete_test(self, name: str, test: str) -> dict[str, Any]:
        return self._call("DELETE", f"/{name}/tests/{test}", admin=True)

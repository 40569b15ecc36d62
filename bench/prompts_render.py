"""CPU a prompt render adds over the same chat request, without network or Serve: the ASGI app is called
directly with an in-memory upstream, the prompt read from the replica's copy (deployments/prompts/cache.py).

    python bench/prompts_render.py [--n 20000]      # results: bench/results/prompts.md
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.micro_pipeline import BODY, MemoryUpstream  # noqa: E402
from deployments.prompts import attach_prompts  # noqa: E402
from serve_app.config import parse_config  # noqa: E402
from serve_app.http import HttpApp  # noqa: E402
from serve_app.ingress import assemble_gateway  # noqa: E402

RENDER = orjson.dumps({"variables": {"topic": "load testing gateways"}})
VERSION = {"version": "1.0.0", "model": "mock", "parameters": {"max_tokens": 64, "temperature": 0},
           "messages": [{"role": "system", "content": "You are a helpful assistant."},
                        {"role": "user", "content": "Say something short about {{topic}}."}]}


def request(path: str, body: bytes, key: bytes = b"Bearer x") -> tuple[dict, object]:
    scope = {"type": "http", "method": "POST", "path": path, "root_path": "", "query_string": b"",
             "headers": [(b"authorization", key), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}
    state = {"read": False}

    async def receive():  # noqa: ANN202
        if not state["read"]:
            state["read"] = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)

    return scope, (receive, state)


async def cpu_per_request(app: HttpApp, path: str, body: bytes, n: int, key: bytes = b"Bearer x") -> float:
    async def send(message):  # noqa: ANN001, ANN202
        if message["type"] == "http.response.start":
            assert message["status"] in (200, 201), message

    async def one() -> None:
        scope, (receive, state) = request(path, body, key)
        await app(scope, receive, send)

    for _ in range(500):
        await one()
    t0 = time.process_time()
    for _ in range(n):
        await one()
    return (time.process_time() - t0) / n * 1e6


async def main(n: int) -> None:
    where = tempfile.mkdtemp(prefix="raygate-bench-prompts-")
    cfg = parse_config({"gateway": {"api_keys": [{"id": "b", "key": "x"}], "admin_keys": [{"id": "a", "key": "a"}]},
                        "providers": {"up": {"type": "openai", "base_url": "http://127.0.0.1:9999/v1", "api_key": "k"}},
                        "models": {"mock": "up"},
                        "storage": {"enabled": False, "url": f"sqlite:///{where}/raygate.db"}})
    gateway = assemble_gateway(cfg)
    gateway.providers["up"].transport = MemoryUpstream()
    attach_prompts(gateway, cfg, use_ray=False)
    app = HttpApp(gateway, cfg)
    await cpu_per_request(app, "/v1/prompts/bench/versions", orjson.dumps(VERSION), 1, b"Bearer a")
    chat = await cpu_per_request(app, "/v1/chat/completions", BODY, n)
    render = await cpu_per_request(app, "/v1/prompts/bench/render", RENDER, n)
    fetches = gateway.prompts.cache.fetches
    await gateway.close()
    print(f"chat {chat:.1f} us, render {render:.1f} us CPU per request ({n} each); render adds {render - chat:.1f} us;"
          f" store reads during the run: {fetches} (ttl {cfg.prompts.cache_ttl_s:g} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    asyncio.run(main(parser.parse_args().n))

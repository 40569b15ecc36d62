"""CPU cost of raygate's own request path, without network or Serve: the ASGI app is called
directly with an in-memory upstream. Isolates what the gateway's Python adds per request.

    python bench/micro_pipeline.py [--n 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deployments.providers.transport import UpstreamResponse  # noqa: E402
from serve_app.config import parse_config  # noqa: E402
from serve_app.http import HttpApp  # noqa: E402
from serve_app.ingress import assemble_gateway  # noqa: E402

BODY = (b'{"model":"mock","messages":[{"role":"system","content":"You are a helpful assistant."},'
        b'{"role":"user","content":"Say something short about load testing gateways."}],"max_tokens":64,"temperature":0}')
REPLY = (b'{"id":"chatcmpl-x","object":"chat.completion","created":1,"model":"mock","choices":[{"index":0,'
         b'"message":{"role":"assistant","content":"' + b"x" * 300 + b'"},"finish_reason":"stop"}],'
         b'"usage":{"prompt_tokens":25,"completion_tokens":32,"total_tokens":57}}')


class MemoryUpstream:
    def __init__(self, reply: bytes = REPLY) -> None:
        self.reply = reply

    async def request(self, req, timeouts, provider):  # noqa: ANN001, ANN201
        return UpstreamResponse(200, {}, self.reply)


async def cpu_per_request(gateway, cfg, body: bytes, n: int) -> float:  # noqa: ANN001
    """CPU microseconds per request of `gateway`'s ASGI app answering `body` (after 500 warm-up requests)."""
    app = HttpApp(gateway, cfg)
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "root_path": "",
             "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", b"Bearer x"),
                         (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    sent = []

    async def receive_then_wait():  # noqa: ANN202
        if not sent:
            sent.append(1)
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)

    async def send(message):  # noqa: ANN001, ANN202
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message

    for _ in range(500):
        sent.clear()
        await app(dict(scope), receive_then_wait, send)
    t0 = time.process_time()
    for _ in range(n):
        sent.clear()
        await app(dict(scope), receive_then_wait, send)
    return (time.process_time() - t0) / n * 1e6


async def main(n: int) -> None:
    cfg = parse_config({"gateway": {"api_keys": [{"id": "b", "key": "x"}]},
                        "providers": {"up": {"type": "openai", "base_url": "http://127.0.0.1:9999/v1", "api_key": "k"}},
                        "models": {"mock": "up"}})
    gateway = assemble_gateway(cfg)
    gateway.providers["up"].transport = MemoryUpstream()
    us = await cpu_per_request(gateway, cfg, BODY, n)
    print(f"{us:.1f} us CPU per request ({n} requests, gateway pipeline only)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    asyncio.run(main(parser.parse_args().n))

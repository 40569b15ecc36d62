"""CPU cost of raygate's own request path, without network or Serve: the ASGI app is called
directly with an in-memory upstream. Isolates what the gateway's Python adds per request.

    python bench/micro_pipeline.py [--n 20000] [--storage]

`--storage` attaches the storage sink as a replica has it (orjson line appended to the local
spool per request, batches read back and handed to the writer) with a writer that acknowledges
without a database: the replica's share of storing records. The writer actor's own cost per
record is measured separately (bench/results/latest.md).
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
    async def request(self, req, timeouts, provider):  # noqa: ANN001, ANN201
        return UpstreamResponse(200, {}, REPLY)


class AckWriter:
    """Stands in for the writer actor: acknowledges every batch (no database in this process)."""

    async def ready(self) -> int:
        return 1

    async def write(self, lines):  # noqa: ANN001, ANN201
        return len(lines)

    async def close(self) -> None:
        return None


def attach_storage(gateway) -> None:  # noqa: ANN001
    import tempfile

    from deployments.records.sink import StorageSink
    from deployments.records.spool import Spool

    spool = Spool(tempfile.mkdtemp(prefix="raygate-bench-spool-"))
    gateway.attach_records(StorageSink(spool, AckWriter(), gateway.metrics))


async def main(n: int, storage: bool = False) -> None:
    cfg = parse_config({"gateway": {"api_keys": [{"id": "b", "key": "x"}]},
                        "providers": {"up": {"type": "openai", "base_url": "http://127.0.0.1:9999/v1", "api_key": "k"}},
                        "models": {"mock": "up"}})
    gateway = assemble_gateway(cfg)
    gateway.providers["up"].transport = MemoryUpstream()
    if storage:
        attach_storage(gateway)
    app = HttpApp(gateway, cfg)
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "root_path": "",
             "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", b"Bearer x"),
                         (b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]}
    sent = []

    async def receive():  # noqa: ANN202
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def receive_then_wait():  # noqa: ANN202
        if not sent:
            sent.append(1)
            return await receive()
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
    dt = time.process_time() - t0
    what = "with the storage sink" if storage else "no storage sink"
    print(f"{dt / n * 1e6:.1f} us CPU per request ({n} requests, gateway pipeline only, {what})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--storage", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.storage))

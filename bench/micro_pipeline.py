"""CPU cost of raygate's own request path, without network or Serve: the ASGI app is called
directly with an in-memory upstream. Isolates what the gateway's Python adds per request.

    python bench/micro_pipeline.py [--n 20000] [--storage] [--rate-limit requests|tokens]

`--storage` attaches the storage sink as a replica has it (orjson line appended to the local
spool per request, batches read back and handed to the writer) with a writer that acknowledges
without a database: the replica's share of storing records. The writer actor's own cost per
record is measured separately (bench/results/latest.md).
`--rate-limit requests`: a per-key requests_per_minute limit; `tokens`: requests and tokens per
minute (estimate at admission, settle at the end). Limits high enough never to refuse, so this is
the common case: a local allowance, topped up from the in-process board in the background.
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


def chat_caller(app, body: bytes):  # noqa: ANN001, ANN201
    """`one()`: a POST /v1/chat/completions of `body` through the ASGI `app`, asserting a 200.

    The in-memory upstream never suspends, so without a loop turn per request (a server's loop has
    one) the cancelled disconnect watchers pile up as live tasks, gen-2 GC pauses inflate the
    figures and background loops (the sinks' flushes) never run: `one()` ends with that turn.
    """
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "root_path": "",
             "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", b"Bearer x"),
                         (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}

    async def send(message):  # noqa: ANN001, ANN202
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message

    async def one() -> None:
        sent = []

        async def receive_then_wait():  # noqa: ANN202
            if not sent:
                sent.append(1)
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)

        await app(dict(scope), receive_then_wait, send)
        await asyncio.sleep(0)

    return one


async def cpu_per_request(gateway, cfg, body: bytes, n: int) -> float:  # noqa: ANN001
    """CPU microseconds per request of `gateway`'s ASGI app answering `body` (after 500 warm-up requests)."""
    one = chat_caller(HttpApp(gateway, cfg), body)
    for _ in range(500):
        await one()
    t0 = time.process_time()
    for _ in range(n):
        await one()
    return (time.process_time() - t0) / n * 1e6


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


RATE_LIMITS = {
    None: [],
    "requests": [{"scope": "key", "requests_per_minute": 10**9}],
    "tokens": [{"scope": "key", "requests_per_minute": 10**9, "tokens_per_minute": 10**12}],
}


async def main(n: int, storage: bool = False, rate_limit: str | None = None) -> None:
    cfg = parse_config({"gateway": {"api_keys": [{"id": "b", "key": "x"}]},
                        "providers": {"up": {"type": "openai", "base_url": "http://127.0.0.1:9999/v1", "api_key": "k"}},
                        "models": {"mock": "up"}, "rate_limits": RATE_LIMITS[rate_limit]})
    gateway = assemble_gateway(cfg)
    gateway.providers["up"].transport = MemoryUpstream()
    if storage:
        attach_storage(gateway)
    us = await cpu_per_request(gateway, cfg, BODY, n)
    what = "with the storage sink" if storage else "no storage sink"
    print(f"{us:.1f} us CPU per request ({n} requests, gateway pipeline only, {what}, "
          f"rate limit: {rate_limit or 'none'})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--storage", action="store_true")
    parser.add_argument("--rate-limit", choices=["requests", "tokens"], default=None)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.storage, args.rate_limit))

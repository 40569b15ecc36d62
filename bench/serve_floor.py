#!/usr/bin/env python3
"""The floor of Ray Serve's own per-request cost: a raw-ASGI replica that answers from memory.

Starts a local Ray cluster exactly as `raygate serve` does (serve_app/cluster.py: the same Serve
flags — throughput-optimized, HAProxy ingress, token auth, quiet logging — and the same ingress
deployment options: one replica, num_cpus 0, max_ongoing_requests 256, no access log), then
deploys one tiny deployment whose ASGI app reads the request body and answers with a fixed
chat completion (or, when the body asks for `"stream": true`, the same 20 SSE chunk events +
`[DONE]` the shared mock sends). No upstream call, no parsing beyond a substring test, no auth,
no metrics: whatever CPU the Ray process tree spends per request here is Serve's (HAProxy →
direct-ingress replica → ASGI → back) and Ray's background work, i.e. what raygate cannot go
below while it runs inside Serve.

    python bench/serve_floor.py --port 8000        # blocks; SIGTERM/SIGINT stop it cleanly
    # bench/run.py runs it through run_anchor.py as variant (a), pinned to one core like raygate

Payloads come from ../shared/bench/mock_upstream.py, so they are byte-for-byte the mock's.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_BENCH = Path(os.environ.get("RAYGATE_SHARED_BENCH", REPO.parent / "shared" / "bench"))


def payloads(model: str = "mock", chunks: int = 18) -> tuple[bytes, bytes]:
    """(completion JSON, SSE stream bytes) rendered by the shared mock's own functions."""
    spec = importlib.util.spec_from_file_location("bench_mock_upstream", SHARED_BENCH / "mock_upstream.py")
    mock = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mock)
    return mock.build_completion(model), b"".join(mock.build_stream_events(model, chunks))


class FloorApp:
    """Raw ASGI: one dict lookup per request, body read, fixed answer."""

    def __init__(self, completion: bytes, stream: bytes) -> None:
        self.completion = completion
        self.stream = stream
        self.length = str(len(completion)).encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if b'"stream":true' in body or b'"stream": true' in body:
            # fresh message dicts per request: Serve appends to the header list it is given
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
                }
            )
            await send({"type": "http.response.body", "body": self.stream})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", self.length)],
            }
        )
        await send({"type": "http.response.body", "body": self.completion})


class Floor:
    def __init__(self, completion: bytes, stream: bytes) -> None:
        self.asgi = FloorApp(completion, stream)  # not `app`: Serve's wrapper owns that name

    def __serve_build_asgi_app__(self) -> FloorApp:
        return self.asgi

    async def ping(self) -> bool:
        return True


def build(replicas: int = 1):
    from ray import cloudpickle, serve

    from serve_app.builder import QUIET_LOGS

    # bench/ is not importable on the replicas: ship these classes by value.
    module = sys.modules[Floor.__module__]
    if module.__name__ != "__main__":
        cloudpickle.register_pickle_by_value(module)

    completion, stream = payloads()
    deployment = serve.deployment(serve.ingress()(Floor)).options(
        name="Floor",
        num_replicas=replicas,
        max_ongoing_requests=256,
        ray_actor_options={"num_cpus": 0},
        logging_config=QUIET_LOGS,
    )
    return deployment.bind(completion, stream)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--replicas", type=int, default=1)
    a = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from serve_app import cluster

    print("starting a local Ray cluster for the Serve floor ...", flush=True)
    local = cluster.start_local_cluster(log_path=os.environ.get("RAYGATE_RAY_LOG"))
    stop = threading.Event()
    failed = False
    try:
        cluster.connect(local.address)
        cluster.start_serve(a.host, a.port, 900)
        cluster.deploy(build(a.replicas), name="floor")
        url = f"http://{a.host}:{a.port}"
        cluster.wait_http_ready(url)
        print(f"serve floor answering on {url}/v1", flush=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
    except Exception:  # noqa: BLE001
        # Print it ourselves: once the cluster is gone, Ray's excepthook blocks on the dead GCS.
        traceback.print_exc()
        failed = True
    finally:
        try:
            from ray import serve

            serve.shutdown()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
        local.stop()
    if failed:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

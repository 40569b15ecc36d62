"""Serve the gateway in-process (uvicorn, no Ray) in its own process for the cache benchmarks.

    python bench/cache/serve.py --port 18901 --config '{"providers": ...}'
Prints "READY <port>" once the server (and, in semantic mode, the model) is up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--config", required=True)
    args = ap.parse_args()
    import uvicorn

    from serve_app.config import parse_config
    from serve_app.http import HttpApp
    from serve_app.ingress import assemble_gateway

    cfg = parse_config(json.loads(args.config), "<bench>")
    gateway = assemble_gateway(cfg)
    app = HttpApp(gateway, cfg)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning",
                                           access_log=False, lifespan="on"))

    async def run() -> None:
        task = asyncio.ensure_future(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        if gateway.cache is not None and gateway.cache.semantic is not None:
            await gateway.cache.semantic.ready()  # load the model before the clock starts
            for _ in range(3):
                await gateway.cache.semantic.vector(f"warm up the model {time.time()}")
        print(f"READY {args.port}", flush=True)
        await task

    asyncio.run(run())


if __name__ == "__main__":
    main()

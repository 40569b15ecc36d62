"""What cost tracking and budgets add per request, without network or Serve (like micro_pipeline.py),
and the ledger actor's handle hop that a budgeted request pays once.

    python bench/spend_costs.py [--n 20000] [--hop 2000] [--out bench/results/spend.md]

1. CPU per request of the in-process pipeline (ASGI app called directly, upstream answered from
   memory): without the cost stage; with it (a priced model: usage.estimated_cost spliced in, the
   cost fact); with a block budget on an in-process ledger (the reservation logic, no hop); and
   with a budget that does not apply to the request (the scope check only).
2. The reserve() round trip to the real ledger actor from another process (start a local Ray: run
   under the shared Ray lock), sequential, p50 / p99 / mean.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.micro_pipeline import MemoryUpstream, cpu_per_request  # noqa: E402
from serve_app.config import parse_config  # noqa: E402
from serve_app.ingress import assemble_gateway  # noqa: E402

BODY = (b'{"model":"gpt-4o","messages":[{"role":"system","content":"You are a helpful assistant."},'
        b'{"role":"user","content":"Say something short about load testing gateways."}],"max_tokens":64}')
REPLY = (b'{"id":"chatcmpl-x","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,'
         b'"message":{"role":"assistant","content":"' + b"x" * 300 + b'"},"finish_reason":"stop"}],'
         b'"usage":{"prompt_tokens":25,"completion_tokens":32,"total_tokens":57}}')


def _config(budgets: list | None = None) -> object:
    return parse_config({"gateway": {"api_keys": [{"id": "b", "key": "x"}, {"id": "other", "key": "y"}]},
                         "providers": {"up": {"type": "openai", "base_url": "http://127.0.0.1:9999/v1", "api_key": "k"}},
                         "models": {"gpt-4o": "up"}, "storage": {"enabled": False}, "budgets": budgets or []})


async def pipeline_us(n: int, budgets: list | None = None, without_cost: bool = False) -> float:
    cfg = _config(budgets)
    gateway = assemble_gateway(cfg)
    gateway.providers["up"].transport = MemoryUpstream(REPLY)
    if without_cost:
        from serve_app.lifecycle import Chain

        gateway.chain = Chain([s for s in gateway.chain.stages if s.name != "cost"])
    us = await cpu_per_request(gateway, cfg, BODY, n)
    for sink in gateway.sinks:  # the spend sink's loop; nothing to flush in-process
        if hasattr(sink, "close"):
            await sink.close()
    return us


def hop_ms(calls: int) -> tuple[float, float, float]:
    import ray

    from deployments.spend.service import ActorLedger

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        cfg = _config([{"limit": 1e12, "period": "total"}])
        ledger = ActorLedger(cfg)

        async def run() -> list[float]:
            await ledger.reserve("warm", 0.0, [0], 0.0)
            out = []
            for i in range(calls):
                t0 = time.perf_counter()
                await ledger.reserve(f"r{i}", float(i), [0], 0.001)
                out.append((time.perf_counter() - t0) * 1000)
            return out

        samples = sorted(asyncio.run(run()))
        return samples[len(samples) // 2], samples[int(len(samples) * 0.99)], statistics.fmean(samples)
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--hop", type=int, default=2000)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = [
        ("no cost stage (the chain as before this work)", asyncio.run(pipeline_us(args.n, without_cost=True))),
        ("cost stage, priced model (default)", asyncio.run(pipeline_us(args.n))),
        ("+ a block budget for this key (in-process ledger)",
         asyncio.run(pipeline_us(args.n, [{"scope": {"key": "b"}, "limit": 1e12, "period": "total"}]))),
        ("+ a block budget for another key (scope check only)",
         asyncio.run(pipeline_us(args.n, [{"scope": {"key": "other"}, "limit": 1e12, "period": "total"}]))),
    ]
    lines = ["| pipeline | CPU µs / request |", "|---|---|"] + [f"| {name} | {us:.1f} |" for name, us in rows]
    if args.hop:
        p50, p99, mean = hop_ms(args.hop)
        lines += ["", f"ledger actor reserve() round trip, {args.hop} sequential calls from another process: "
                      f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, mean {mean:.2f} ms"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()

"""Speed and size of the response cache: latency per lookup outcome, embedding throughput, memory.

    python bench/cache/bench.py [latency] [embed] [memory] [--out bench/results/cache-bench.md]

- latency: the gateway (raw ASGI app + Gateway, in-process stages, uvicorn, no Ray) runs in its own
  process against the built-in mock provider (0 ms upstream); an aiohttp client in this process
  sends chat completions at concurrency 1 and 16 and measures client-side latency for an exact
  hit, a semantic hit (a reworded question that is found by the vector search and passes
  verification), and a miss (new question: upstream call + store; in semantic mode also the
  embedding and the index insert), beside the same request with no cache in play. Both processes
  share the machine's 2 cores.
- embed: all-MiniLM-L6-v2 sentences/s by batch size, and through the MicroBatcher at concurrency.
- memory: RSS growth of the FAISS index and of the memory store per 100k entries (synthetic
  vectors), Redis memory per entry (10k entries, extrapolated), search latency at 100k vectors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PY = sys.executable
STORED = [
    "How do I install Docker on Ubuntu?", "What is the capital of Australia?", "How do I reverse a list in Python?",
    "Why is the sky blue?", "How do I get red wine out of a carpet?", "What causes the seasons on Earth?",
    "How can I improve my credit score?", "How do I make cold brew coffee at home?",
    "What is the difference between a process and a thread?", "How do I keep basil fresh?",
]
PREFIXES = ["", "Quick question:", "Hey,", "Please tell me:", "I was wondering,", "Can you help?",
            "Hello!", "Question for you:", "Sorry to bother you,", "So,"]
SUFFIXES = ["", " Thanks!", " Thank you.", " Cheers.", " Much appreciated.", " Any ideas?"]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def variants() -> list[str]:
    out = []
    for p in PREFIXES:
        for s in SUFFIXES:
            for q in STORED:
                text = f"{p} {q[0].lower() + q[1:] if p else q}{s}".strip()
                if text not in STORED:
                    out.append(text)
    return out


# -- latency ------------------------------------------------------------------------------------------

class Server:
    def __init__(self, config: dict[str, Any], port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen([PY, str(ROOT / "bench/cache/serve.py"), "--port", str(port),
                                      "--config", json.dumps(config)], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("READY"):
            raise RuntimeError(f"bench server failed to start: {line!r}")
        self.url = f"http://127.0.0.1:{port}/v1/chat/completions"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def drive(url: str, texts: list[str], concurrency: int) -> tuple[list[float], dict[str, int]]:
    import aiohttp

    lat: list[float] = []
    statuses: dict[str, int] = {}
    queue = list(texts)

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            text = queue.pop()
            body = {"model": "mock", "messages": [{"role": "user", "content": text}]}
            t0 = time.perf_counter()
            async with session.post(url, json=body) as resp:
                await resp.read()
                status = resp.headers.get("x-raygate-cache", "none")
            lat.append(time.perf_counter() - t0)
            statuses[status] = statuses.get(status, 0) + 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return lat, statuses


def summary(lat: list[float]) -> tuple[float, float, float]:
    ms = sorted(x * 1000 for x in lat)
    return statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.99))], statistics.mean(ms)


MISS_C1 = [f"Tell me a story about a {w} who learns to {v}" for w in
           ("dragon", "robot", "sailor", "gardener", "wizard", "baker", "pilot", "painter", "clockmaker",
            "lighthouse keeper")
           for v in ("sing", "swim", "dance", "paint", "cook", "fly", "read", "sew", "juggle", "whistle", "knit",
                     "surf", "climb", "skate", "fish")][:150]
MISS_C16 = [f"Describe a {c} {a} that lives in the {h} and eats {f}" for c in ("red", "blue", "green", "tiny", "giant")
            for a in ("fox", "owl", "bear", "frog") for h in ("forest", "desert", "ocean", "city")
            for f in ("berries", "insects", "bread")][:200]
Row = tuple[str, int, list[float], dict[str, int], float]


def run_scenario(rows: list[Row], label: str, url: str, texts: list[str], conc: int) -> None:
    warm = [f"warm-up request {label} {conc} {i}" for i in range(20)]
    asyncio.run(drive(url, warm, conc))  # warm-up (connections, code paths)
    t0 = time.perf_counter()
    lat, statuses = asyncio.run(drive(url, texts, conc))
    rows.append((label, conc, lat, statuses, len(texts) / (time.perf_counter() - t0)))


def scenarios(rows: list[Row], urls: dict[str, str], tag: str = "") -> None:
    """urls: {"off": ..., "exact": ..., "semantic": ...} chat-completions URLs of three gateways."""
    for conc in (1, 16):
        run_scenario(rows, f"{tag}no cache (baseline)", urls["off"], [f"baseline {tag}{conc} {i}" for i in range(400)], conc)
    for conc in (1, 16):
        run_scenario(rows, f"{tag}exact mode: miss", urls["exact"], [f"exact miss {tag}{conc} {i}" for i in range(400)], conc)
        run_scenario(rows, f"{tag}exact mode: hit", urls["exact"], ["exact hit question"] * 400, conc)
    asyncio.run(drive(urls["semantic"], STORED, 1))
    time.sleep(0.5)
    pool = variants()
    for conc in (1, 16):
        run_scenario(rows, f"{tag}semantic mode: exact hit", urls["semantic"], [STORED[0]] * 300, conc)
        run_scenario(rows, f"{tag}semantic mode: semantic hit", urls["semantic"],
                     pool[:300] if conc == 1 else pool[300:], conc)
        run_scenario(rows, f"{tag}semantic mode: miss", urls["semantic"], MISS_C1 if conc == 1 else MISS_C16, conc)


def table(rows: list[Row]) -> list[str]:
    lines = ["| scenario | concurrency | requests | outcome | p50 ms | p99 ms | mean ms | req/s |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]
    for label, conc, lat, statuses, rps in rows:
        p50, p99, mean = summary(lat)
        outcome = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
        lines.append(f"| {label} | {conc} | {len(lat)} | {outcome} | {p50:.2f} | {p99:.2f} | {mean:.2f} | {rps:.0f} |")
    return lines


BASE = {"providers": {"sandbox": {"type": "mock"}}, "default_provider": "sandbox"}
CONFIGS = {"off": BASE, "exact": {**BASE, "cache": {"enabled": True, "mode": "exact"}},
           "semantic": {**BASE, "cache": {"enabled": True, "mode": "semantic"}}}


def bench_latency() -> list[str]:
    rows: list[Row] = []
    servers = {}
    try:
        for i, (name, cfg) in enumerate(CONFIGS.items()):
            servers[name] = Server(cfg, 18911 + i)
        scenarios(rows, {name: srv.url for name, srv in servers.items()})
    finally:
        for srv in servers.values():
            srv.stop()
    return ["## Latency per lookup outcome, in-process gateway (bench/cache/bench.py latency)", "",
            "Client-side latency of a chat completion through the gateway without Ray (uvicorn + the raw ASGI "
            "app + Gateway, in-process semantic stage with the asyncio micro-batcher), mock upstream answering "
            "in 0 ms, memory backend. The client and the gateway processes share the 2 cores. `outcome` is the "
            "x-raygate-cache header seen. Misses in semantic mode include the embedding, the index insert "
            "(background) and the store.", ""] + table(rows) + [""]


def bench_ray() -> list[str]:
    """The same scenarios against a real Ray Serve app: SemanticCache as its own deployment."""

    from serve_app import cluster
    from serve_app.builder import build_app
    from serve_app.config import parse_config

    rows: list[Row] = []
    local = cluster.start_local_cluster()
    try:
        cluster.connect(local.address)
        port = cluster.free_port(18500)
        cluster.start_serve("127.0.0.1", port, 300)
        urls = {}
        for name, cfg in CONFIGS.items():
            cfg = {**cfg, "serve": {"ingress_replicas": 1}}
            cluster.deploy(build_app({"config": parse_config(cfg, f"<bench {name}>")}), name=f"cb{name}",
                           route_prefix=f"/cb{name}")
            cluster.wait_http_ready(f"http://127.0.0.1:{port}/cb{name}", timeout=180)
            urls[name] = f"http://127.0.0.1:{port}/cb{name}/v1/chat/completions"
        scenarios(rows, urls)
    finally:
        cluster.shutdown(local)
    return ["## Latency per lookup outcome, Ray Serve (bench/cache/bench.py ray)", "",
            "The same requests through a real Serve app started like `raygate serve` (HAProxy, one Ingress "
            "replica, the SemanticCache deployment with serve.batch for semantic mode; num_cpus 0 everywhere). "
            "A semantic lookup is one handle hop from the ingress to SemanticCache; exact hits and the replay of "
            "cached streams stay in the ingress.", ""] + table(rows) + [""]


# -- cost when no cache is in play ----------------------------------------------------------------------

def bench_overhead() -> list[str]:
    import timeit

    from serve_app.config import parse_config
    from serve_app.chain import build_chain
    from serve_app.ingress import assemble_gateway
    from serve_app.lifecycle import RequestRecord

    cfg = parse_config(BASE, "<bench>")

    async def cpu_per_request(gw: Any, n: int) -> float:
        t = time.process_time()
        for _ in range(n):
            await gw.chat({"model": "mock", "messages": [{"role": "user", "content": "hi"}]}, RequestRecord("r"))
        return (time.process_time() - t) / n * 1e6

    async def measure() -> tuple[float, float]:
        built = assemble_gateway(cfg)  # the cache object exists (requests may opt in) but is not in play
        bare = assemble_gateway(cfg)
        bare.chain = build_chain(cfg, {"router": bare.router, "cache": None})  # no cache stage at all
        for gw in (built, bare):
            await cpu_per_request(gw, 2000)
        a, b = [], []
        for _ in range(5):
            a.append(await cpu_per_request(built, 20000))
            b.append(await cpu_per_request(bare, 20000))
        return min(a), min(b)

    with_cache, without = asyncio.run(measure())
    gate = assemble_gateway(cfg).cache
    ns = min(timeit.repeat(lambda: gate.applies(None, {}, None), number=200_000, repeat=5)) / 200_000 * 1e9
    return ["## Cost when no cache is in play (bench/cache/bench.py overhead)", "",
            "CPU per request of `Gateway.chat` in-process against the mock provider (no HTTP), best of 5×20k:", "",
            "| gateway | CPU µs per request |", "|---|---:|",
            f"| cache built, not in play (no `cache:` section, no opt-in) | {with_cache:.1f} |",
            f"| no cache object at all | {without:.1f} |", "",
            f"The gate (`ResponseCache.applies`) costs {ns:.0f} ns per request.", ""]


# -- embedding throughput -------------------------------------------------------------------------------

def bench_embed() -> list[str]:
    from deployments.cache.embedder import MicroBatcher, shared_embedder

    import torch

    emb = shared_embedder()
    texts = variants() * 4
    emb.encode(texts[:8])
    lines = ["## Embedding throughput (bench/cache/bench.py embed)", "",
             "all-MiniLM-L6-v2 on CPU, short questions (8–15 words), by torch thread count "
             "(the cache's default is `embed_threads: 1`).", "",
             "| how | torch threads | batch | sentences/s | ms per call |", "|---|---:|---:|---:|---:|"]
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for batch in (1, 8, 32, 64):
            n = 0
            t0 = time.perf_counter()
            calls = 0
            while time.perf_counter() - t0 < 3:
                emb.encode(texts[n % 400:(n % 400) + batch])
                n += batch
                calls += 1
            dt = time.perf_counter() - t0
            lines.append(f"| encode() | {threads} | {batch} | {n / dt:.0f} | {dt / calls * 1000:.1f} |")
    torch.set_num_threads(1)

    async def batched(conc: int, total: int) -> tuple[float, float]:
        mb = MicroBatcher(emb.encode, 32, 0.0)
        queue = list(texts[:total])

        async def worker() -> None:
            while queue:
                await mb.embed(queue.pop())

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        return total / (time.perf_counter() - t0), total / max(1, mb.batches)

    for conc in (1, 16, 64):
        rate, avg = asyncio.run(batched(conc, 200 if conc == 1 else 600))
        lines.append(f"| MicroBatcher, {conc} concurrent callers | 1 | avg {avg:.1f} | {rate:.0f} | — |")
    return lines + ["", "The Serve deployment batches with `serve.batch` the same way (max_batch_size 32, no extra wait: calls that arrive while a batch is encoded form the next one).", ""]


# -- memory ------------------------------------------------------------------------------------------------

def _synthetic(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(n, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs


BODY = (b'{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant",'
        b'"content":"' + b"x" * 700 + b'"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,'
        b'"completion_tokens":150,"total_tokens":160}}')


def memory_probe(which: str, n: int = 100_000) -> None:
    """Run in a fresh process: print the RSS growth (MB) of building one structure."""
    import gc

    from deployments.cache.index import VectorIndex
    from deployments.cache.store import Entry, MemoryStore

    vecs = _synthetic(n)
    gc.collect()
    before = rss_mb()
    extra = ""
    if which in ("index1", "index_many"):
        idx = VectorIndex(384)
        for i in range(n):
            scope = "scope" if which == "index1" else f"scope{i % 10_000}"
            idx.add(scope, f"{i:032x}", vecs[i], f"synthetic question number {i} about some topic", 1e12)
        grown = rss_mb() - before
        if which == "index1":
            q = vecs[:200] + np.random.default_rng(1).normal(scale=0.01, size=(200, 384)).astype(np.float32)
            q /= np.linalg.norm(q, axis=1, keepdims=True)
            times = []
            for v in q:
                t0 = time.perf_counter()
                idx.search("scope", v, 4, 0, 0.83)
                times.append((time.perf_counter() - t0) * 1000)
            extra = f" {statistics.median(times):.1f} {sorted(times)[197]:.1f}"
    else:
        async def fill() -> MemoryStore:
            s = MemoryStore(n)
            now = time.time()
            for i in range(n):
                text = f"synthetic question number {i} about some topic"
                await s.put(Entry(f"{i:032x}", BODY + str(i).encode(), "openai", "gpt-4o-mini", "s" * 32, text,
                                  "You are a helpful assistant.\n" + text, now, now + 3600))
            return s

        store = asyncio.run(fill())
        grown = rss_mb() - before
        del store
    print(f"RESULT {grown:.1f}{extra}", flush=True)


def bench_memory() -> list[str]:
    n = 100_000
    lines = ["## Memory per 100k entries (bench/cache/bench.py memory)", "",
             "Synthetic normalised 384-d vectors; RSS growth of a fresh process while building each structure "
             "(FAISS allocates outside Python).", "",
             "| what | entries | RSS growth MB | bytes per entry |", "|---|---:|---:|---:|"]
    search_line = ""
    for which, label in (("index1", "vector index, 1 scope (IndexFlatIP + key/text per slot)"),
                         ("index_many", "vector index, 10,000 scopes of 10"),
                         ("store", f"memory store, ~{len(BODY)} B responses + prompt text")):
        out = subprocess.run([PY, __file__, "_probe", which], capture_output=True, text=True, cwd=ROOT).stdout
        fields = [line for line in out.splitlines() if line.startswith("RESULT")][0].split()[1:]
        grown = float(fields[0])
        lines.append(f"| {label} | {n:,} | {grown:.0f} | {grown * 2**20 / n:.0f} |")
        if len(fields) == 3:
            search_line = (f"Search in one scope of 100k vectors: p50 {fields[1]} ms, p99 {fields[2]} ms (exact flat "
                           "search; each scope is searched alone, so typical scopes are far smaller).")
    lines += ["", search_line, ""]
    lines += bench_redis_memory(BODY, [f"synthetic question number {i} about some topic" for i in range(10_000)],
                                _synthetic(10_000))
    return lines


def bench_redis_memory(body: bytes, texts: list[str], vecs: np.ndarray) -> list[str]:
    import uuid

    import redis

    from deployments.cache.store import Entry, RedisStore

    url = "redis://127.0.0.1:6379/7"
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except Exception:  # noqa: BLE001
        return ["Redis not running: redis memory not measured.", ""]
    prefix = f"rgbench:cache:{uuid.uuid4().hex[:8]}:"
    n = 10_000

    async def fill() -> float:
        store = RedisStore(url, prefix, 1_000_000)
        now = time.time()
        t0 = time.perf_counter()
        for i in range(n):
            await store.put(Entry(f"{i:032x}", body, "openai", "gpt-4o-mini", "s" * 32, texts[i], texts[i], now,
                                  now + 3600))
            await store.set_vector(f"{i:032x}", vecs[i].tobytes())
        dt = time.perf_counter() - t0
        await store.close()
        return dt

    before = client.info("memory")["used_memory"]
    try:
        dt = asyncio.run(fill())
        grown = client.info("memory")["used_memory"] - before
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i:i + 1000])
    return ["| what | entries | used_memory growth MB | bytes per entry | per 100k (extrapolated) |",
            "|---|---:|---:|---:|---:|",
            f"| redis backend (entry hash with response, prompt, vector; lru/exp zsets; change log) | {n:,} | "
            f"{grown / 2**20:.1f} | {grown / n:.0f} | {grown / n * 100_000 / 2**20:.0f} MB |", "",
            f"Redis insert (put script + vector script, sequential): {dt / n * 1000:.2f} ms per entry.", ""]


def bench_quality() -> list[str]:
    sys.path.insert(0, str(ROOT / "bench/cache"))
    from eval import report  # type: ignore[import-not-found]

    return report(with_test=True, failures=12)


def header() -> list[str]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    load = os.getloadavg()
    return ["# Response cache: quality, latency, throughput, memory", "",
            f"Generated by `python bench/cache/bench.py` at commit {commit}, {time.strftime('%Y-%m-%d %H:%M')} UTC, "
            f"on {os.cpu_count()} cores; load average when it started: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
            "(other sessions share this machine, so latency figures carry their noise).", ""]


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "_probe":
        memory_probe(sys.argv[2])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("parts", nargs="*", default=["quality", "overhead", "latency", "ray", "embed", "memory"])
    ap.add_argument("--out", default=str(ROOT / "bench/results/cache.md"))
    args = ap.parse_args()
    lines: list[str] = header()
    for part in args.parts:
        lines += {"quality": bench_quality, "overhead": bench_overhead, "latency": bench_latency, "ray": bench_ray,
                  "embed": bench_embed, "memory": bench_memory}[part]()
        print("\n".join(lines), flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""How fast `GET /v1/admin/logs` answers over a million stored requests, on SQLite and PostgreSQL.

    python bench/logs_query.py                       # both backends, 1,000,000 rows each
    python bench/logs_query.py --backends sqlite --rows 200000

Generates the rows (never committed: SQLite in a temp dir, PostgreSQL in a throwaway database that
is dropped afterwards), then runs each query shape of the API through the same code the endpoint
uses (`parse_log_query` + `select_logs` on a `Storage`), several times, and writes the medians and
maxima to bench/results/logs_query.md. The rows look like gateway records: 12 providers, 60
models, 40 keys, 20,000 users, sessions of 20 requests, 6% errors, a trace id per request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deployments.observability.log_query import parse_log_query, select_logs  # noqa: E402
from serve_app.storage import Storage, StorageConfig, schema  # noqa: E402

PG_ADMIN = os.environ.get("RAYGATE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
T0 = 1_750_000_000.0
SPAN_S = 30 * 86400  # the rows cover 30 days
BATCH = 5000


def make_record(i: int, rng: random.Random) -> dict[str, Any]:
    provider = f"provider-{rng.randrange(12)}"
    status = 200 if rng.random() > 0.06 else rng.choice((400, 429, 500, 502, 504))
    user = rng.randrange(20_000)
    received = T0 + i * SPAN_S / ARGS.rows + rng.random() * 0.001
    return {
        "request_id": f"req-{i:08d}-{rng.getrandbits(32):08x}",
        "kind": "chat",
        "via": "http",
        "received_at": received,
        "first_byte_at": received + 0.3,
        "done_at": received + 1.2,
        "key_id": f"key-{rng.randrange(40)}",
        "client_ip": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
        "metadata": {"user_id": f"user-{user}", "session_id": f"sess-{i // 20}", "trace_id": f"trace-{i}"},
        "stream": rng.random() < 0.4,
        "requested_model": f"model-{rng.randrange(60)}",
        "provider": provider,
        "model": f"model-{rng.randrange(60)}",
        "route": "default",
        "attempts": [
            {
                "provider": provider,
                "model": "m",
                "route": "default",
                "status": status,
                "error_class": None,
                "duration_ms": 900.0,
            }
        ],
        "cache": rng.choice(("miss", "miss", "exact", None)),
        "usage": {
            "input": rng.randrange(2000),
            "cached_input": 0,
            "cache_write": 0,
            "output": rng.randrange(800),
            "reasoning": 0,
        },
        "status": status,
        "error_type": None if status == 200 else "upstream_error",
        "error_code": None,
        "error_message": None if status == 200 else "upstream failed",
        "latency_ms": 1200.0,
        "ttft_ms": 300.0,
        "facts": {
            "trace": {"trace_id": f"{rng.getrandbits(128):032x}", "span_id": f"{rng.getrandbits(64):016x}"}
        },
    }


async def fill(storage: Storage, rows: int) -> float:
    rng = random.Random(7)
    started = time.perf_counter()
    insert = sa.insert(schema.request_log)
    for start in range(0, rows, BATCH):
        batch = [schema.request_log_row(make_record(i, rng)) for i in range(start, min(rows, start + BATCH))]
        async with storage.engine.begin() as conn:
            await conn.execute(insert, batch)
        if start % 100_000 == 0:
            print(f"  {start:>9,} rows", flush=True)
    async with storage.engine.begin() as conn:  # fresh planner statistics, as autovacuum / a running db has
        await conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - started


async def cursor_after(storage: Storage, params: dict[str, str], pages: int) -> str:
    cursor = None
    for _ in range(pages):
        page = await select_logs(
            storage, parse_log_query({**params, **({"cursor": cursor} if cursor else {})})
        )
        cursor = page["next_cursor"]
    assert cursor is not None
    return cursor


async def measure(storage: Storage, rounds: int) -> list[tuple[str, int, float, float]]:
    day = T0 + 12 * 86400
    deep = await cursor_after(storage, {"limit": "100"}, 100)  # the 101st page
    t = schema.request_log
    async with storage.engine.connect() as conn:  # a user, session and trace that exist, mid-table
        middle = (
            await conn.execute(
                sa.select(t.c.user_id, t.c.session_id, t.c.trace_id)
                .order_by(t.c.received_at)
                .offset(ARGS.rows // 2)
                .limit(1)
            )
        ).one()
    shapes = [
        ("newest 100 (no filter)", {"limit": "100"}),
        ("status=error", {"status": "error", "limit": "100"}),
        ("provider=provider-3", {"provider": "provider-3", "limit": "100"}),
        ("model + key", {"model": "model-7", "key": "key-5", "limit": "100"}),
        ("user_id", {"user_id": middle.user_id, "limit": "100"}),
        ("session_id", {"session_id": middle.session_id, "limit": "100"}),
        ("trace_id", {"trace_id": middle.trace_id}),
        ("since/until: one hour, 12 days ago", {"since": str(day), "until": str(day + 3600), "limit": "100"}),
        ("status=error in one hour", {"status": "error", "since": str(day), "until": str(day + 3600)}),
        ("page 101 via cursor", {"limit": "100", "cursor": deep}),
        ("limit=1000", {"limit": "1000"}),
    ]
    out = []
    for name, params in shapes:
        query = parse_log_query(params)
        await select_logs(storage, query)  # warm the cache: the steady state of an admin browsing logs
        times, n = [], 0
        for _ in range(rounds):
            started = time.perf_counter()
            page = await select_logs(storage, query)
            times.append((time.perf_counter() - started) * 1000)
            n = len(page["data"])
        out.append((name, n, statistics.median(times), max(times)))
    return out


async def run_backend(backend: str) -> dict[str, Any]:
    where = tempfile.mkdtemp(prefix="raygate-bench-logs-")
    pg_url = None
    if backend == "sqlite":
        url = f"sqlite:///{where}/logs.db"
    else:
        import asyncpg

        name = f"raygate_bench_{os.getpid()}"
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        url = pg_url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    storage = Storage(StorageConfig(url=url, spool_dir=f"{where}/spool"))
    await storage.start()
    try:
        print(f"{backend}: writing {ARGS.rows:,} rows", flush=True)
        fill_s = await fill(storage, ARGS.rows)
        results = await measure(storage, ARGS.rounds)
        return {"backend": backend, "fill_s": fill_s, "results": results}
    finally:
        await storage.close()
        if pg_url is not None:
            import asyncpg

            conn = await asyncpg.connect(PG_ADMIN)
            await conn.execute(f'DROP DATABASE IF EXISTS "{pg_url.rsplit("/", 1)[1]}" WITH (FORCE)')
            await conn.close()
        else:
            for f in Path(where).glob("logs.db*"):
                f.unlink()


def report(runs: list[dict[str, Any]]) -> str:
    lines = [
        "# Logs query over a million rows",
        "",
        f"`python bench/logs_query.py --rows {ARGS.rows} --rounds {ARGS.rounds}` on "
        f"{platform.node() and 'this machine'} ({os.cpu_count()} cores, shared with other work; "
        f"Python {platform.python_version()}). Each figure is one `select_logs` call (the query plus "
        "decoding the page's JSON records) in the process that holds the connection, as the writer "
        "actor runs it; the HTTP hop and the actor call add about a millisecond.",
        "",
    ]
    for run in runs:
        lines += [
            f"## {run['backend']}",
            "",
            f"{ARGS.rows:,} rows written in {run['fill_s']:.0f} s "
            f"({ARGS.rows / run['fill_s']:,.0f} rows/s, batches of {BATCH}, all indexes in place).",
            "",
            "| query | rows returned | median ms | max ms |",
            "|---|---:|---:|---:|",
        ]
        lines += [f"| {name} | {n} | {med:.1f} | {mx:.1f} |" for name, n, med, mx in run["results"]]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", default=str(ROOT / "bench/results/logs_query.md"))
    ARGS = parser.parse_args()
    runs = [asyncio.run(run_backend(b)) for b in ARGS.backends.split(",")]
    text = report(runs)
    Path(ARGS.out).write_text(text)
    print(text)


ARGS: argparse.Namespace
if __name__ == "__main__":
    main()

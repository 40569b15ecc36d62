#!/usr/bin/env python3
"""Where raygate's CPU goes on the default path, at a fixed concurrency (default 8).

Starts the shared mock (CPU 0) and `raygate serve --config bench/configs/gateway.yaml` pinned to
CPU 1, as run_anchor.py does, drives it with wrk (CPU 0), and in two back-to-back windows:

1. splits the CPU of the whole Ray process tree by process (ingress replica, HAProxy, raylet,
   GCS, controller, metrics/circuit actors, ...) — CPU ms per request for each;
2. samples the ingress replica with py-spy (`record --gil --threads --nonblocking`, from CPU 0,
   so the profiler does not compete with the gateway) and aggregates the stacks: time by code
   area (raygate's own code, Serve's replica/direct-ingress, uvicorn, aiohttp, asyncio, ...), the
   hottest functions by self time, and raygate's functions by inclusive time.

    /work/venv/bin/python bench/hotpath_profile.py --out bench/results/raw/<stamp>/profile [--conc 8]

Writes profile.json, profile.md (the summary bench/report.py puts into latest.md), py-spy's
raw stacks (pyspy.raw, usable with flamegraph.pl / speedscope) and the processes' logs.
Needs py-spy: installed from PyPI into the bench venv (/tmp/venv-bench) if missing.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SHARED = Path(os.environ.get("RAYGATE_SHARED_BENCH", REPO.parent / "shared" / "bench"))
BENCH_VENV = Path(os.environ.get("BENCH_VENV", "/tmp/venv-bench"))
CLK_TCK = os.sysconf("SC_CLK_TCK")

sys.path.insert(0, str(SHARED))
import loadgen  # noqa: E402
import run_anchor  # noqa: E402

# code areas, by the path of a frame (first match wins)
AREAS = [
    ("raygate: serve_app", re.compile(r"\(serve_app/")),
    ("raygate: deployments", re.compile(r"\(deployments/")),
    ("Serve replica / direct ingress", re.compile(r"\(ray/serve/")),
    ("Ray core (python)", re.compile(r"\(ray/")),
    ("uvicorn (HTTP server in the replica)", re.compile(r"\((uvicorn|httptools|h11)/")),
    ("aiohttp client (+yarl, multidict)", re.compile(r"\((aiohttp|yarl|multidict|aiohappyeyeballs)/")),
    ("asyncio event loop", re.compile(r"\((asyncio|uvloop)/")),
    ("grpc", re.compile(r"\(grpc")),
    ("orjson / json", re.compile(r"\((orjson|json)/")),
    ("pydantic", re.compile(r"\(pydantic")),
    ("logging", re.compile(r"\(logging/")),
    ("threading / concurrent", re.compile(r"\((threading|concurrent/)")),
]


def log(*a: object) -> None:
    print(*a, flush=True)


def py_spy() -> str:
    exe = BENCH_VENV / "bin" / "py-spy"
    if not exe.exists():
        found = shutil.which("py-spy")
        if found:
            return found
        log("installing py-spy (PyPI) into", BENCH_VENV)
        subprocess.run([str(BENCH_VENV / "bin" / "pip"), "install", "-q", "py-spy"], check=True)
    return str(exe)


def cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def proc_label(pid: int) -> str:
    cmd = cmdline(pid)
    if cmd.startswith("ray::"):
        return cmd.split()[0].split(".")[0]  # Ray retitles actors with the running method: ray::Actor.method
    for key, label in (
        ("gcs_server", "gcs_server"),
        ("raylet", "raylet"),
        ("haproxy", "haproxy"),
        ("dashboard/agent.py", "dashboard agent"),
        ("runtime_env/agent", "runtime env agent"),
        ("dashboard.py", "dashboard head"),
        ("log_monitor", "log_monitor"),
        ("monitor.py", "autoscaler monitor"),
        ("ray.util.client.server", "ray client server"),
        ("ray start", "ray start --block"),
        ("raygate serve", "raygate serve (driver)"),
        ("default_worker", "idle ray worker"),
    ):
        if key in cmd:
            return label
    return cmd[:60] or str(pid)


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    out = {}
    for p in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            s = open(f"/proc/{p}/stat", "rb").read()
            rest = s[s.rfind(b")") + 2 :].split()
            out[p] = (int(rest[11]) + int(rest[12])) / CLK_TCK
    return out


def frame_key(frame: str) -> str:
    return re.sub(r":\d+\)$", ")", frame)


def area_of(frame: str) -> str:
    for name, rx in AREAS:
        if rx.search(frame):
            return name
    return "other"


def aggregate(raw: str, top: int = 25) -> dict:
    """py-spy raw stacks (`thread (tid): name;f1;f2;... count`) -> summary tables."""
    total = 0
    by_thread: collections.Counter[str] = collections.Counter()
    self_fn: collections.Counter[str] = collections.Counter()
    self_area: collections.Counter[str] = collections.Counter()
    incl_raygate: collections.Counter[str] = collections.Counter()
    incl_area: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        frames = stack.split(";")
        thread = frames[0]
        frames = frames[1:]
        if thread.startswith("thread ("):
            thread = thread.split(": ", 1)[-1]
        total += count
        by_thread[thread] += count
        if not frames:
            continue
        leaf = frame_key(frames[-1])
        self_fn[leaf] += count
        self_area[area_of(leaf)] += count
        seen_fn, seen_area = set(), set()
        for f in frames:
            k = frame_key(f)
            a = area_of(k)
            if a.startswith("raygate") and k not in seen_fn:
                seen_fn.add(k)
                incl_raygate[k] += count
            if a not in seen_area:
                seen_area.add(a)
                incl_area[a] += count

    def pct(c: collections.Counter[str], n: int | None = None) -> list[list]:
        return [[k, v, round(100.0 * v / total, 1)] for k, v in c.most_common(n)] if total else []

    return {
        "samples": total,
        "threads": pct(by_thread, 10),
        "self_by_area": pct(self_area),
        "incl_by_area": pct(incl_area),
        "self_top": pct(self_fn, top),
        "raygate_inclusive": pct(incl_raygate, top),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--config", default="bench/configs/gateway.yaml")
    ap.add_argument("--conc", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=10, help="length of each window")
    ap.add_argument("--idle-seconds", type=int, default=5, help="idle window before the load")
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--mock-port", type=int, default=9999)
    ap.add_argument("--api-key", default=os.environ.get("BENCH_API_KEY", "x"))
    ap.add_argument("--load-cpu", default="0")
    ap.add_argument("--gw-cpu", default="1")
    ap.add_argument("--stream", action="store_true", help="drive streaming requests instead")
    ap.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for raygate serve (and so for `ray start`), e.g. an experiment flag",
    )
    a = ap.parse_args()
    out = Path(a.out).resolve()
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    os.sched_setaffinity(0, {int(x) for x in a.load_cpu.split(",")})
    spy = py_spy()
    raygate = shutil.which("raygate", path=str(Path(sys.executable).parent)) or "raygate"
    bench_py = BENCH_VENV / "bin" / "python"
    mock_url = f"http://127.0.0.1:{a.mock_port}/v1"
    url = f"http://127.0.0.1:{a.port}/v1"
    body = str(SHARED / "bodies" / ("chat_stream.json" if a.stream else "chat.json"))

    sys.path.insert(0, str(BENCH))
    from run import free_port, reap_leftovers  # noqa: PLC0415 - shared helpers

    stats = free_port(28404)
    metrics_port = free_port(stats + 1)
    ray_log = work / "ray-start.log"
    env = {
        "RAY_SERVE_HAPROXY_STATS_PORT": str(stats),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(metrics_port),
        "RAYGATE_RAY_LOG": str(ray_log),
        "BENCH_API_KEY": a.api_key,
    }
    env.update(dict(kv.split("=", 1) for kv in a.env))
    mock = run_anchor.Proc(
        "mock",
        [
            str(bench_py if bench_py.exists() else sys.executable),
            str(SHARED / "mock_upstream.py"),
            "--port",
            str(a.mock_port),
        ],
        a.load_cpu,
        str(work),
    )
    gw = None
    result: dict = {
        "config": a.config,
        "conc": a.conc,
        "seconds": a.seconds,
        "stream": a.stream,
        "env": a.env,
    }
    try:
        run_anchor.wait_ready(dict(name="mock", url=mock_url, headers=[], api_key="x"), mock, 20)
        gw = run_anchor.Proc(
            "raygate",
            [raygate, "serve", "--config", a.config, "--port", str(a.port)],
            a.gw_cpu,
            str(work),
            env=env,
            cwd=str(REPO),
        )
        run_anchor.wait_ready(dict(name="raygate", url=url, headers=[], api_key=a.api_key), gw, 180)
        log(f"  raygate ready after {time.monotonic() - gw.t_start:.1f}s")
        loadgen.run_wrk(url, a.conc, 3, (), a.api_key, body, a.load_cpu)  # warm-up
        tree = loadgen.proc_tree(gw.pid)
        # window 0: the idle cluster's own burn, by process
        time.sleep(1)
        i0, ti0 = cpu_by_pid(tree), time.monotonic()
        time.sleep(a.idle_seconds)
        i1, ti1 = cpu_by_pid(loadgen.proc_tree(gw.pid)), time.monotonic()
        idle = collections.defaultdict(float)
        for p, c in i1.items():
            idle[proc_label(p)] += 100 * (c - i0.get(p, 0.0)) / (ti1 - ti0)
        ingress = [p for p in tree if cmdline(p).startswith("ray::ServeReplica:") and "Ingress" in cmdline(p)]
        if not ingress:
            raise RuntimeError("no ingress replica process found in the raygate process tree")
        result["ingress_pid"] = ingress[0]

        total = 2 * a.seconds + 4
        wrk_res: dict = {}
        th = threading.Thread(
            target=lambda: wrk_res.update(
                loadgen.run_wrk(url, a.conc, total, (), a.api_key, body, a.load_cpu)
            )
        )
        th.start()
        time.sleep(1.5)
        # window 1: CPU by process, nothing else attached
        c0, t0 = cpu_by_pid(tree), time.monotonic()
        time.sleep(a.seconds)
        c1, t1 = cpu_by_pid(loadgen.proc_tree(gw.pid)), time.monotonic()
        # window 2: py-spy on the ingress replica
        raw_path = out / "pyspy.raw"
        spy_cmd = [
            "taskset",
            "-c",
            a.load_cpu,
            spy,
            "record",
            "-p",
            str(ingress[0]),
            "-d",
            str(a.seconds),
            "-r",
            str(a.rate),
            "-f",
            "raw",
            "--gil",
            "--threads",
            "--nonblocking",
            "-o",
            str(raw_path),
        ]
        r = subprocess.run(spy_cmd, capture_output=True, text=True)
        result["py_spy"] = {"cmd": " ".join(spy_cmd), "rc": r.returncode, "stderr": r.stderr[-500:]}
        th.join()
        rps = wrk_res.get("rps") or 0.0
        result["wrk"] = {k: wrk_res.get(k) for k in ("rps", "p50_ms", "p99_ms", "requests", "errors")}
        wall = t1 - t0
        rows = collections.defaultdict(float)
        for p, c in c1.items():
            rows[proc_label(p)] += c - c0.get(p, 0.0)  # a process born in the window counts from 0
        reqs = rps * wall
        result["by_process"] = sorted(
            (
                [
                    k,
                    round(100 * v / wall, 1),
                    round(1000 * v / reqs, 3) if reqs else None,
                    round(idle.get(k, 0.0), 1),
                ]
                for k, v in rows.items()
                if v > 0
            ),
            key=lambda x: -x[1],
        )
        result["idle_cpu_pct"] = round(sum(idle.values()), 1)
        result["tree_cpu_ms_per_req"] = round(1000 * sum(rows.values()) / reqs, 3) if reqs else None
        if raw_path.exists():
            result["profile"] = aggregate(raw_path.read_text())
    finally:
        if gw is not None:
            gw.stop()
            time.sleep(1)
            left = reap_leftovers(ray_log, [a.port, stats, metrics_port])
            if left:
                log(f"  reaped leftover processes {left}")
        mock.stop()
    (out / "profile.json").write_text(json.dumps(result, indent=1))
    (out / "profile.md").write_text(render(result))
    log(render(result))
    return 0


def render(r: dict) -> str:
    lines = []
    w = r.get("wrk", {})
    kind = "streams" if r.get("stream") else "non-streamed chat completions"
    if r.get("env"):
        lines.append(f"Environment added to `raygate serve`: `{' '.join(r['env'])}`.")
        lines.append("")
    lines.append(
        f"Load: wrk, {kind}, concurrency {r['conc']}, gateway pinned to one core: "
        f"{w.get('rps') or 0:.0f} req/s, p50 {w.get('p50_ms') or 0:.2f} ms, errors {w.get('errors')}. "
        f"Whole Ray tree: **{r.get('tree_cpu_ms_per_req')} ms CPU/request**."
    )
    lines.append("")
    lines.append(
        f"CPU by process under load (window 1, no profiler attached), beside the same process idle "
        f"(the idle cluster burns {r.get('idle_cpu_pct')} % of a core in all):"
    )
    lines.append("")
    lines.append("| process | CPU % of a core, loaded | CPU ms/request | CPU % idle |")
    lines.append("|---|---:|---:|---:|")
    for name, pct_, ms, idle in r.get("by_process", []):
        if pct_ >= 0.5 or idle >= 0.5:
            lines.append(f"| {name} | {pct_} | {ms} | {idle} |")
    prof = r.get("profile")
    if prof:
        lines.append("")
        lines.append(
            f"py-spy on the ingress replica (window 2; {prof['samples']} samples holding the GIL, "
            f"`--gil --nonblocking`; native/C time outside the GIL is not seen):"
        )
        lines.append("")
        lines.append("| code area (inclusive: a frame of it is on the stack) | % of samples | self % |")
        lines.append("|---|---:|---:|")
        selfs = {k: p for k, _, p in prof["self_by_area"]}
        for k, _, p in prof["incl_by_area"]:
            lines.append(f"| {k} | {p} | {selfs.get(k, 0)} |")
        lines.append("")
        lines.append("| thread | % of samples |")
        lines.append("|---|---:|")
        for k, _, p in prof["threads"][:6]:
            lines.append(f"| {k} | {p} |")
        lines.append("")
        lines.append("Hottest functions by self time:")
        lines.append("")
        lines.append("| function | self % |")
        lines.append("|---|---:|")
        for k, _, p in prof["self_top"][:20]:
            lines.append(f"| `{k}` | {p} |")
        lines.append("")
        lines.append("raygate's own functions by inclusive time (includes what they call):")
        lines.append("")
        lines.append("| function | inclusive % |")
        lines.append("|---|---:|")
        for k, _, p in prof["raygate_inclusive"][:20]:
            lines.append(f"| `{k}` | {p} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

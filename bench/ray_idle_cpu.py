"""CPU that a running gateway's Ray processes burn with no traffic: Ray's own background work.

    flock /tmp/raygate-ray.lock env PYTHONPATH=$PWD python bench/ray_idle_cpu.py [--seconds 30] \
        [--env KEY=VALUE ...] [--defaults]

Starts `raygate serve --config bench/configs/gateway.yaml` (its own local Ray cluster, as a child),
waits until it answers, lets it settle, then reads utime+stime of every descendant process from
/proc over `--seconds` and prints ms of CPU per second by process. CPU time, not wall time: it
holds on a busy machine. `--defaults` puts Ray's own values back for raygate's Ray background
settings (serve_app/cluster.py RAY_BACKGROUND); `--env` adds settings.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
RAY_DEFAULTS = {"RAY_enable_metrics_collection": "1", "RAY_event_stats": "1"}  # Ray's own values


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(d))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def name(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(c.decode(errors="replace") for c in cmd if c)
    for key in ("ServeReplica:raygate:Ingress", "ServeController", "ProxyActor", "haproxy", "gcs_server",
                "raylet", "dashboard_agent", "runtime_env", "log_monitor", "MetricsAggregator",
                "ServeReplica", "ray::", "cli serve"):
        if key in text:
            return key
    return text[:40]


def cpu(pid: int) -> float:
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / TICK


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--settle", type=float, default=15)
    ap.add_argument("--port", type=int, default=8137)
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--defaults", action="store_true")
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT), BENCH_API_KEY="x")
    if args.defaults:  # the caller's environment wins over raygate's settings (setdefault)
        env.update(RAY_DEFAULTS)
    for kv in args.env:
        k, v = kv.split("=", 1)
        env[k] = v
    proc = subprocess.Popen([sys.executable, "-m", "serve_app.cli", "serve", "--config",
                             str(ROOT / "bench/configs/gateway.yaml"), "--port", str(args.port)],
                            env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{args.port}/health", timeout=2)
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.time() > deadline or proc.poll() is not None:
                    raise SystemExit("gateway did not come up") from None
                time.sleep(1)
        time.sleep(args.settle)
        pids = descendants(proc.pid)
        start = {p: cpu(p) for p in pids}
        time.sleep(args.seconds)
        per: dict[str, float] = defaultdict(float)
        for p in pids:
            per[name(p)] += cpu(p) - start[p]
        total = sum(per.values())
        label = "Ray defaults" if args.defaults else "raygate settings"
        print(f"idle CPU over {args.seconds:.0f} s, {label} {' '.join(args.env)}: "
              f"{total / args.seconds * 1e3:.1f} ms/s in total")
        print("| process | ms CPU per s |\n|---|---:|")
        for k, v in sorted(per.items(), key=lambda kv: -kv[1]):
            print(f"| {k} | {v / args.seconds * 1e3:.1f} |")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()

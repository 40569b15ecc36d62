#!/usr/bin/env python3
"""raygate's overhead bench: raygate beside the direct-to-mock baseline and Portkey, per-hop
variants, and a profile of the default path. Writes bench/results/latest.md.

Everything is measured with the shared harness (../shared/bench, read-only): run_anchor.py
starts the mock upstream (mock + wrk + ttft client on CPU 0), then each target pinned to CPU 1
with taskset. `raygate serve` starts its local Ray cluster as a child, so every Ray process
(GCS, raylet, agents, controller, HAProxy, replicas, actors) descends from it, is pinned to the
same core and is counted by the CPU sampler.

Steps (--steps, default all, in this order):
  setup    ../shared/bench/setup_anchors.sh (wrk, nginx, uvloop venv, Portkey; LiteLLM skipped)
  main     --rounds × run_anchor --targets direct,portkey,custom  (raygate: bench/configs/gateway.yaml)
  hops     one run_anchor per variant (--variants): floor = bench/serve_floor.py (Serve answering
           from memory), router = placement.router: deployment, providers = placement.providers:
           deployment, ingress2 = two ingress replicas, unpinned (--gw-cpu ''), lean = the default
           with HAProxy's per-request metrics log off and one HAProxy thread (an experiment)
  profile  bench/hotpath_profile.py: py-spy on the ingress replica + per-process CPU split at conc 8:
           non-streamed, streaming, and non-streamed with the `lean` variant's flags
  report   bench/report.py: bench/results/latest.md from the raw results

    /work/venv/bin/python bench/run.py                      # everything, ~16 min
    /work/venv/bin/python bench/run.py --steps main --rounds 1
    /work/venv/bin/python bench/run.py --steps report --out bench/results/raw/<stamp>

Raw results go under bench/results/raw/<stamp>/ (gitignored): one run_anchor folder per run
(results.json, table.md, logs) plus run.json (what ran, machine, load). Timed runs take
/tmp/bench.lock (flock), as the other benches on this machine do; --no-lock skips it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SHARED = Path(os.environ.get("RAYGATE_SHARED_BENCH", REPO.parent / "shared" / "bench"))
PORTKEY_DIR = Path(os.environ.get("PORTKEY_DIR", "/tmp/portkey-gw"))
PORTKEY_JS = PORTKEY_DIR / "node_modules/@portkey-ai/gateway/build/start-server.js"
LOCK = "/tmp/bench.lock"

VARIANTS = {
    # name: (label, command template, pinned to the gateway core?, extra environment)
    "floor": ("serve-floor", "{python} bench/serve_floor.py --port {port}", True, {}),
    "router": (
        "raygate-router-dep",
        "{raygate} serve --config bench/configs/gateway-router-deployment.yaml --port {port}",
        True,
        {},
    ),
    "providers": (
        "raygate-providers-dep",
        "{raygate} serve --config bench/configs/gateway-providers-deployment.yaml --port {port}",
        True,
        {},
    ),
    "ingress2": (
        "raygate-2-ingress-unpinned",
        # run_anchor pins itself to the load core and children inherit that: widen it again.
        "taskset -c 0,1 {raygate} serve --config bench/configs/gateway-2-ingress.yaml --port {port}",
        False,
        {},
    ),
    # Experiment, not a raygate setting: HAProxy without Serve's per-request metrics log line (HAProxy writes
    # one RFC 5424 line per request to a socket that the HAProxyManager actor parses) and with one thread
    # instead of four on the gateway's core. Passed through the environment of `ray start`.
    "lean": (
        "raygate-lean-haproxy",
        "{raygate} serve --config bench/configs/gateway.yaml --port {port}",
        True,
        {"RAY_SERVE_HAPROXY_METRICS_ENABLED": "0", "RAY_SERVE_HAPROXY_NBTHREAD": "1"},
    ),
}


def log(*a: object) -> None:
    print(*a, flush=True)


def free_port(start: int) -> int:
    for port in range(start, start + 500):
        if port == 6379:
            continue
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port from {start}")


def port_busy(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def bench_lock(enabled: bool):
    if not enabled:
        yield
        return
    with open(LOCK, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"  waiting for {LOCK} (another bench is running) ...")
            t0 = time.monotonic()
            fcntl.flock(f, fcntl.LOCK_EX)
            log(f"  got {LOCK} after {time.monotonic() - t0:.0f}s")
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def machine() -> dict:
    info: dict = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "kernel": os.uname().release,
    }
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                info["mem_gib"] = round(int(line.split()[1]) / 2**20, 1)
    info["python"] = sys.version.split()[0]
    for mod in ("ray", "aiohttp", "orjson", "uvicorn"):
        with contextlib.suppress(Exception):
            info[mod] = __import__(mod).__version__
    with contextlib.suppress(Exception):
        pkg = json.loads((PORTKEY_DIR / "node_modules/@portkey-ai/gateway/package.json").read_text())
        info["portkey"] = pkg["version"]
    with contextlib.suppress(Exception):
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    return info


def _own_tree() -> set[int]:
    ppid: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                s = open(f"/proc/{d}/stat", "rb").read()
                ppid[int(d)] = int(s[s.rfind(b")") + 2 :].split()[1])
    tree, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        p = frontier.pop()
        for c, pp in ppid.items():
            if pp == p and c not in tree:
                tree.add(c)
                frontier.append(c)
    return tree


def _cpu_ticks() -> dict[int, int]:
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                s = open(f"/proc/{d}/stat", "rb").read()
                rest = s[s.rfind(b")") + 2 :].split()
                out[int(d)] = int(rest[11]) + int(rest[12])
    return out


def load_snapshot(window: float = 1.0) -> dict:
    """Machine load right now: loadavg, and the other processes busiest over `window` s (noise)."""
    snap: dict = {"loadavg": open("/proc/loadavg").read().split()[:3]}
    mine = _own_tree()
    t0 = _cpu_ticks()
    time.sleep(window)
    t1 = _cpu_ticks()
    tck = os.sysconf("SC_CLK_TCK")
    busy = []
    for pid, ticks in t1.items():
        pct = 100.0 * (ticks - t0.get(pid, ticks)) / tck / window
        if pid not in mine and pct >= 5:
            with contextlib.suppress(OSError):
                cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
                busy.append((pct, cmd.strip()[:80]))
    snap["busy_processes"] = [f"{p:.0f}% {c}" for p, c in sorted(busy, reverse=True)[:6]]
    snap["other_cpu_pct"] = round(sum(p for p, _ in busy), 0)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    snap["ray_clusters_running"] = len(re.findall(r"ray start --head", ps))
    return snap


def ray_temp_dir(ray_log: Path) -> str | None:
    with contextlib.suppress(OSError):
        m = re.search(r"(/tmp/rg[A-Za-z0-9_]+)/session_", ray_log.read_text(errors="replace"))
        if m:
            return m.group(1)
    return None


def reap_leftovers(ray_log: Path, ports: list[int]) -> list[int]:
    """Kill (by pid) processes of the cluster this run started that outlived run_anchor's stop:
    anything whose command line names that cluster's temp dir, or that listens on its ports."""
    temp = ray_temp_dir(ray_log)
    pids: set[int] = set()
    if temp:
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                if temp.encode() in open(f"/proc/{d}/cmdline", "rb").read():
                    pids.add(int(d))
    if ports and shutil.which("ss"):
        out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            local = line.split()[3] if len(line.split()) > 3 else ""
            if any(local.endswith(f":{p}") for p in ports) and '"haproxy"' in line:
                pids.update(int(m) for m in re.findall(r"pid=(\d+)", line))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return sorted(pids)


def run_anchor(
    name: str,
    out: Path,
    a: argparse.Namespace,
    targets: str,
    custom_cmd: str | None,
    custom_name: str = "raygate",
    gw_cpu: str | None = None,
    extra_env: dict | None = None,
) -> dict:
    """One run_anchor.py invocation into out/name; returns its results.json (or an error)."""
    dest = out / name
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        str(SHARED / "run_anchor.py"),
        "--targets",
        targets,
        "--conc",
        a.conc,
        "--duration",
        str(a.duration),
        "--warmup",
        str(a.warmup),
        "--ttft-requests",
        str(a.ttft_requests),
        "--start-timeout",
        "180",
        "--out",
        str(dest),
    ]
    env = dict(os.environ)
    ports: list[int] = []
    ray_log = dest / "ray-start.log"
    if custom_cmd:
        if port_busy(a.port):
            raise SystemExit(f"port {a.port} is already in use; pass --port")
        stats, metrics = free_port(28404), None
        metrics = free_port(stats + 1)
        ports = [a.port, stats, metrics]
        cmd += [
            "--custom-name",
            custom_name,
            "--custom-url",
            f"http://127.0.0.1:{a.port}/v1",
            "--custom-cmd",
            custom_cmd,
            "--custom-api-key",
            a.api_key,
        ]
        # HAProxy's stats/metrics ports are fixed by default (8404/9101); the test suites on this
        # machine start clusters of their own, so move ours out of their way.
        env.update(
            {
                "RAY_SERVE_HAPROXY_STATS_PORT": str(stats),
                "RAY_SERVE_HAPROXY_METRICS_PORT": str(metrics),
                "RAYGATE_RAY_LOG": str(ray_log),
                "BENCH_API_KEY": a.api_key,
            }
        )
        env.update(extra_env or {})
    if gw_cpu is not None:
        cmd += ["--gw-cpu", gw_cpu]
    (dest / "command.txt").write_text(" ".join(repr(c) if " " in c else c for c in cmd) + "\n")
    log(f"\n##### {name}: {' '.join(cmd[1:4])} ... ({custom_cmd or 'no custom target'})")
    before = load_snapshot()
    t0 = time.monotonic()
    with bench_lock(a.lock), open(dest / "run_anchor.log", "w") as logf:
        p = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert p.stdout is not None
        for line in p.stdout:
            logf.write(line)
            if a.verbose or line.startswith(("===", "  conc", "  stream", "  ready", "  FAILED", "  idle")):
                sys.stdout.write("  " + line)
        rc = p.wait()
    wall = time.monotonic() - t0
    if custom_cmd:
        time.sleep(1)
        left = reap_leftovers(ray_log, ports)
        if left:
            log(f"  reaped {len(left)} leftover process(es) of this run's cluster: {left}")
    res: dict = {"rc": rc, "wall_s": wall, "load_before": before, "load_after": load_snapshot()}
    with contextlib.suppress(OSError, ValueError):
        res["results"] = json.loads((dest / "results.json").read_text())
    (dest / "meta.json").write_text(json.dumps(res | {"results": None}, indent=1))
    log(f"  {name}: rc={rc} in {wall:.0f}s, loadavg {before['loadavg']} -> {res['load_after']['loadavg']}")
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", default="setup,main,hops,profile,report")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the main comparison")
    ap.add_argument("--first-round", type=int, default=1, help="number of the first main round (main-rN)")
    ap.add_argument("--variants", default="floor,router,providers,ingress2,lean")
    ap.add_argument("--tag", default="", help="suffix for the hop runs' folders, e.g. -r2 for a second round")
    ap.add_argument("--conc", default="1,8,32")
    ap.add_argument("--duration", type=int, default=8, help="seconds per concurrency level")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--ttft-requests", type=int, default=300)
    ap.add_argument("--port", type=int, default=8000, help="gateway port")
    ap.add_argument("--api-key", default=os.environ.get("BENCH_API_KEY", "x"))
    ap.add_argument("--profile-seconds", type=int, default=10)
    ap.add_argument("--profiles", default="profile,profile-stream,profile-lean")
    ap.add_argument("--out", help="raw results dir (default bench/results/raw/<stamp>)")
    ap.add_argument("--latest", default=str(BENCH / "results" / "latest.md"))
    ap.add_argument("--no-lock", dest="lock", action="store_false")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    steps = [s.strip() for s in a.steps.split(",") if s.strip()]
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(a.out).resolve() if a.out else BENCH / "results" / "raw" / stamp
    out.mkdir(parents=True, exist_ok=True)
    raygate = shutil.which("raygate", path=str(Path(sys.executable).parent)) or shutil.which("raygate")
    if not raygate:
        sys.exit("raygate is not installed in this environment (pip install -e .)")
    meta_path = out / "run.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta.setdefault("runs", {})
    meta["args"] = vars(a)
    t_start = time.monotonic()

    if "setup" in steps:
        log("##### setup: ../shared/bench/setup_anchors.sh (SKIP_LITELLM=1)")
        env = dict(os.environ, SKIP_LITELLM="1")
        r = subprocess.run(
            ["bash", str(SHARED / "setup_anchors.sh")], env=env, capture_output=True, text=True
        )
        (out / "setup.log").write_text(r.stdout + r.stderr)
        log(f"  setup rc={r.returncode}; " + " | ".join(r.stdout.strip().splitlines()[-4:]))
        meta["setup_rc"] = r.returncode
    portkey_ok = PORTKEY_JS.exists() and shutil.which("node") is not None
    meta["portkey_available"] = portkey_ok
    if not portkey_ok:
        log(f"  Portkey is not installed ({PORTKEY_JS} missing): measuring direct + raygate only")
    meta["machine"] = machine()
    meta_path.write_text(json.dumps(meta, indent=1))

    raygate_cmd = f"{raygate} serve --config bench/configs/gateway.yaml --port {a.port}"
    if "main" in steps:
        targets = "direct,portkey,custom" if portkey_ok else "direct,custom"
        for r in range(a.first_round, a.first_round + a.rounds):
            res = run_anchor(f"main-r{r}", out, a, targets, raygate_cmd)
            meta["runs"][f"main-r{r}"] = {k: v for k, v in res.items() if k != "results"}
            meta_path.write_text(json.dumps(meta, indent=1))

    if "hops" in steps:
        for v in [x.strip() for x in a.variants.split(",") if x.strip()]:
            label, template, pinned, extra_env = VARIANTS[v]
            cmd = template.format(python=sys.executable, raygate=raygate, port=a.port)
            res = run_anchor(
                f"hop-{v}{a.tag}",
                out,
                a,
                "custom",
                cmd,
                custom_name=label,
                gw_cpu=None if pinned else "",
                extra_env=extra_env,
            )
            meta["runs"][f"hop-{v}{a.tag}"] = {k: v2 for k, v2 in res.items() if k != "results"}
            meta_path.write_text(json.dumps(meta, indent=1))

    if "profile" in steps:
        lean = [f"--env={k}={v}" for k, v in VARIANTS["lean"][3].items()]
        for kind, extra in (("profile", []), ("profile-stream", ["--stream"]), ("profile-lean", lean)):
            if kind not in a.profiles.split(","):
                continue
            log(
                f"\n##### {kind}: bench/hotpath_profile.py {' '.join(extra)} (py-spy on the ingress replica, conc 8)"
            )
            cmd = [
                sys.executable,
                str(BENCH / "hotpath_profile.py"),
                "--out",
                str(out / kind),
                "--seconds",
                str(a.profile_seconds),
                "--port",
                str(a.port),
                "--api-key",
                a.api_key,
            ] + extra
            with bench_lock(a.lock):
                r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
            (out / f"{kind}.log").write_text(r.stdout + r.stderr)
            log(f"  rc={r.returncode}; " + " ".join(r.stdout.strip().splitlines()[:1]))
            meta["runs"][kind] = {"rc": r.returncode}
            meta_path.write_text(json.dumps(meta, indent=1))

    meta["wall_s"] = meta.get("wall_s", 0) + (time.monotonic() - t_start)
    meta_path.write_text(json.dumps(meta, indent=1))
    if "report" in steps:
        r = subprocess.run(
            [sys.executable, str(BENCH / "report.py"), str(out), "--latest", a.latest], cwd=REPO
        )
        if r.returncode:
            return r.returncode
        log(f"\nwrote {a.latest} (raw results: {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

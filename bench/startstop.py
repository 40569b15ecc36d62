"""Time `raygate serve` from launch to the first 200 on /ready, its idle memory, and Ctrl-C to exit.

    flock /tmp/raygate-ray.lock env PYTHONPATH=$PWD python bench/startstop.py --runs 3 \
        [--baseline DIR] [--append]

Each run starts `raygate serve --config <config> --port <free port>` as a user would, polls
`/ready` every 50 ms, waits `--idle` seconds, sums RSS and PSS over the whole process tree (the
CLI, Ray's processes, the replicas, HAProxy), lists its listening sockets, sends SIGINT and times
the exit. It also reports the start-up output lines that look alarming (WARNING/ERROR/Traceback),
processes still alive after the exit and files left in the temporary directory. `--append` adds
the summary as a section of bench/results/latest.md; the raw figures go to bench/results/raw/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serve_app.cluster import free_port, is_running  # noqa: E402
from tests.support import proctree  # noqa: E402

RAYGATE = str(Path(sys.executable).with_name("raygate"))
ALARMING = re.compile(r"WARNING|ERROR|Traceback|Exception|failed", re.IGNORECASE)
# The one warning a default start is expected to print: dev.yaml has client auth off on purpose.
EXPECTED = re.compile(r"client authentication is OFF")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/ready", timeout=1) as resp:  # noqa: S310 - loopback
            return resp.status == 200
    except OSError:
        return False


def one_run(config: str, idle_s: float, code: Path = ROOT) -> dict:
    port = free_port(18600)
    load_before = os.getloadavg()[0]
    shared_hap = Path(tempfile.gettempdir()) / "haproxy-serve"  # Ray's default HAProxy dir
    hap_before = set(os.listdir(shared_hap)) if shared_hap.is_dir() else set()
    env = dict(os.environ, PYTHONPATH=str(code))
    env.pop("RAY_ADDRESS", None)
    t0 = time.monotonic()
    proc = subprocess.Popen([RAYGATE, "serve", "--config", config, "--port", str(port)], cwd=code, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.monotonic() - t0, line.rstrip()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}"
    ready_s = None
    while time.monotonic() - t0 < 120 and proc.poll() is None:
        if _ready(url):
            ready_s = time.monotonic() - t0
            break
        time.sleep(0.05)
    if ready_s is None:
        proc.kill()
        raise RuntimeError("raygate serve did not become ready:\n" + "\n".join(l for _, l in lines))
    start_lines = len(lines)
    time.sleep(idle_s)
    pids = proctree.tree(proc.pid)
    temp_dirs = {m.group(1) for pid in pids for m in [re.search(r"--temp-dir=(\S+)", _cmdline(pid))] if m}
    per_process = sorted(((proctree.name(p), *proctree.memory_kb(p)) for p in pids), key=lambda r: -r[1])
    sockets = [(s.host, s.port, s.process) for s in proctree.listening(pids)]
    t_stop = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
    stop_s = time.monotonic() - t_stop
    reader.join(5)
    time.sleep(0.5)
    alive = [proctree.name(p) for p in pids if is_running(p)]
    hap_after = set(os.listdir(shared_hap)) if shared_hap.is_dir() else set()
    left = sorted([d for d in temp_dirs if os.path.exists(d)] +
                  [str(shared_hap / n) for n in hap_after - hap_before])
    return {
        "code": str(code),
        "load_before": round(load_before, 2),
        "ready_s": round(ready_s, 2),
        "stop_s": round(stop_s, 2),
        "exit_code": proc.returncode,
        "processes": len(pids),
        "rss_mb": round(sum(r for _, r, _ in per_process) / 1024),
        "pss_mb": round(sum(p for _, _, p in per_process) / 1024),
        "per_process": [(n, round(r / 1024), round(p / 1024)) for n, r, p in per_process],
        "listening": sockets,
        "alarming_start_lines": [l for _, l in lines[:start_lines]
                                 if ALARMING.search(l) and not EXPECTED.search(l)],
        "alarming_stop_lines": [l for _, l in lines[start_lines:] if ALARMING.search(l)],
        "alive_after_stop": alive,
        "tmp_left": left,
        "output": [f"{t:6.2f}s {l}" for t, l in lines],
    }


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def summary(config: str, runs: list[dict], title: str = "") -> str:
    def fig(key: str) -> str:
        values = [r[key] for r in runs]
        return f"{median(values)} (runs: {', '.join(str(v) for v in values)})"

    last = runs[-1]
    off_loopback = [f"{h}:{p} ({n})" for h, p, n in last["listening"] if not proctree.is_loopback(h)]
    lines = [
        f"### {title or 'raygate serve'}: `raygate serve --config {config}` ({len(runs)} runs)",
        "",
        f"{os.cpu_count()} cores; 1-minute load average before each run: "
        f"{', '.join(str(r['load_before']) for r in runs)} (other sessions' tests share the machine).",
        "",
        "| figure | median (each run) |",
        "|---|---|",
        f"| launch → first 200 on `/ready` (s) | {fig('ready_s')} |",
        f"| SIGINT → exit, idle gateway (s) | {fig('stop_s')} |",
        f"| processes in the tree, idle | {fig('processes')} |",
        f"| idle RSS of the tree, summed (MB) | {fig('rss_mb')} |",
        f"| idle PSS of the tree (MB, shared pages counted once) | {fig('pss_mb')} |",
        "",
        f"Exit codes: {sorted({r['exit_code'] for r in runs})}. Alarming start-up lines: "
        f"{sorted({l for r in runs for l in r['alarming_start_lines']}) or 'none'}. Alarming stop lines: "
        f"{sorted({l for r in runs for l in r['alarming_stop_lines']}) or 'none'}. Processes alive after exit: "
        f"{sorted({p for r in runs for p in r['alive_after_stop']}) or 'none'}. Left in the temp dir: "
        f"{sorted({p for r in runs for p in r['tmp_left']}) or 'nothing'}. Listening off loopback "
        f"(last run, {len(off_loopback)} of {len(last['listening'])} sockets): "
        f"{', '.join(off_loopback) or 'nothing'}.",
        "",
        "Idle memory per process (last run, MB RSS / PSS):",
        "",
        "| process | RSS | PSS |",
        "|---|---|---|",
        *[f"| `{n}` | {r} | {p} |" for n, r, p in last["per_process"]],
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/dev.yaml")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle", type=float, default=10, help="seconds idle before measuring memory")
    parser.add_argument("--baseline", type=Path,
                        help="another checkout (e.g. the code before a change), run alternately with this one")
    parser.add_argument("--append", action="store_true", help="append the summary to bench/results/latest.md")
    args = parser.parse_args()
    codes = [ROOT] + ([args.baseline.resolve()] if args.baseline else [])
    runs: dict[Path, list[dict]] = {code: [] for code in codes}
    for i in range(args.runs):
        for code in codes:  # alternate, so both see the same machine load
            r = one_run(args.config, args.idle, code)
            runs[code].append(r)
            print(f"run {i + 1} {code}: ready {r['ready_s']} s, stop {r['stop_s']} s, "
                  f"{r['processes']} processes, "
                  f"RSS {r['rss_mb']} MB, PSS {r['pss_mb']} MB (load {r['load_before']})", flush=True)
    raw = ROOT / "bench" / "results" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / f"startstop-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(
        json.dumps({str(code): rs for code, rs in runs.items()}, indent=1))
    parts = [f"## Start and stop ({time.strftime('%Y-%m-%d')}, bench/startstop.py)", ""]
    parts += [summary(args.config, rs, "this branch" if code == ROOT else f"baseline {code}")
              for code, rs in runs.items()]
    text = "\n".join(parts)
    print(text)
    if args.append:
        with open(ROOT / "bench" / "results" / "latest.md", "a") as f:
            f.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The README's quickstart, run as written: its code blocks are extracted and run in order.

The install line is the one step not re-run: the test reuses the venv it runs in (its `bin/`
stands for the README's `.venv/bin/`) and checks that line is the documented one. The rest runs
as written: `pip install openai==...` (a no-op when present), `raygate serve --config
configs/dev.yaml` (with `--port` added only when 8000 is taken on this machine), the Python
snippet against the URL the gateway printed, then Ctrl-C. While it runs, the listening sockets of
its whole process tree are listed: nothing but the gateway's own port may be off loopback. Needs
the Ray lock (`flock /tmp/raygate-ray.lock ...`).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from serve_app.cli import port_in_use
from serve_app.cluster import free_port, is_running
from serve_app.config import parse_config
from tests.support import proctree

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent
INSTALL = "python3 -m venv .venv && .venv/bin/pip install -e ."


def blocks(section: str) -> list[tuple[str, str]]:
    """(language, code) of each fenced block under the `## <section>` heading, in order."""
    body = README.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", body, re.S)


def commands(code: str) -> list[str]:
    return [line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def in_venv(command: str) -> list[str]:
    """The README's `.venv/bin/x` is this test's venv."""
    return [str(BIN / arg[len(".venv/bin/"):]) if arg.startswith(".venv/bin/") else arg
            for arg in shlex.split(command)]


QUICKSTART = blocks("Quickstart")


@dataclass
class Gateway:
    proc: subprocess.Popen[str]
    base_url: str
    lines: list[str] = field(default_factory=list)


def test_quickstart_has_the_documented_shape() -> None:
    langs = [lang for lang, _ in QUICKSTART]
    assert langs == ["bash", "bash", "python", "bash"], langs
    install, serve = commands(QUICKSTART[0][1])
    assert install == INSTALL
    assert serve == ".venv/bin/raygate serve --config configs/dev.yaml"
    # The last block is the test suite itself: what CI runs, word for word (not run from here).
    assert commands(QUICKSTART[3][1]) == [(ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]]


def test_client_install_line_runs_and_pins_what_the_project_pins() -> None:
    (line,) = commands(QUICKSTART[1][1])
    pin = re.search(r"openai==[\d.]+", line).group(0)
    assert pin in (ROOT / "pyproject.toml").read_text()
    done = subprocess.run(in_venv(line), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_configuration_example_validates() -> None:
    (yaml_block,) = [code for lang, code in blocks("Configuration") if lang == "yaml"]
    import yaml

    env = {"GATEWAY_API_KEY": "k1", "GATEWAY_ADMIN_KEY": "k2", "OPENAI_API_KEY": "k3"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        cfg = parse_config(yaml.safe_load(yaml_block), "README.md")
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert cfg.default_provider == "sandbox" and "openai-primary" in cfg.providers


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    command = in_venv(commands(QUICKSTART[0][1])[1])
    if port_in_use("127.0.0.1", 8000):  # someone else's service on this machine: the one deviation
        command += ["--port", str(free_port(18700))]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    gw = Gateway(proc, "")
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            gw.lines.append(line)
            if m := re.search(r"serving on (http://\S+/v1)", line):
                gw.base_url = m.group(1)
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    ready.wait(150)
    try:
        assert gw.base_url, "raygate serve did not print its URL:\n" + "".join(gw.lines)
        yield gw
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_snippet_runs_against_the_printed_url(gateway: Gateway) -> None:
    (_, snippet), = [b for b in QUICKSTART if b[0] == "python"]
    done = subprocess.run([str(BIN / "python"), "-"], input=snippet, capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, RAYGATE_BASE_URL=gateway.base_url))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Mock reply to: hi"


def test_only_the_gateway_listens_off_loopback(gateway: Gateway) -> None:
    pids = proctree.tree(gateway.proc.pid)
    sockets = proctree.listening(pids)
    names = {s.process for s in sockets}
    assert {"gcs_server", "raylet", "haproxy"} <= names, names  # the listing sees the whole tree
    assert any(n.startswith("ray::ServeReplica") for n in names), names
    gateway_port = int(gateway.base_url.rsplit(":", 1)[1].split("/")[0])
    exposed = [s for s in sockets if not proctree.is_loopback(s.host) and s.port != gateway_port]
    assert not exposed, exposed
    assert all(s.port != 6379 for s in sockets), "Ray must never listen on Redis' port"


def test_start_up_prints_nothing_alarming(gateway: Gateway) -> None:
    start = "".join(gateway.lines)
    bad = [line for line in gateway.lines if re.search(r"ERROR|Traceback|will not be applied|failed", line)]
    assert not bad, start
    warnings = [line for line in gateway.lines if "WARNING" in line]
    assert len(warnings) == 1 and "client authentication is OFF" in warnings[0], start  # dev.yaml: auth off


def test_ctrl_c_stops_everything_and_leaves_nothing(gateway: Gateway) -> None:
    pids = proctree.tree(gateway.proc.pid)
    temp_dirs = {m.group(1) for pid in pids for m in [re.search(r"--temp-dir=(\S+)", _cmdline(pid))] if m}
    assert temp_dirs, "found no Ray temp dir in the process tree"
    gateway.proc.send_signal(signal.SIGINT)
    assert gateway.proc.wait(60) == 0, "".join(gateway.lines)
    time.sleep(0.2)
    out = "".join(gateway.lines)
    assert "stopped" in out and not re.search(r"Traceback|graceful_shutdown failed|ERROR", out), out
    alive = [proctree.name(p) for p in pids if is_running(p)]
    assert not alive, alive
    assert not [d for d in temp_dirs if os.path.exists(d)], temp_dirs


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


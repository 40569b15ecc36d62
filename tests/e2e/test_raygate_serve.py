"""`raygate serve` as a user runs it: start on configs/dev.yaml, answer the openai SDK, run the
quickstart notebook against it (HTTP and a handle call), then stop cleanly on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import openai
import pytest
from nbclient import NotebookClient

from serve_app.cluster import free_port

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]
RAYGATE = str(Path(sys.executable).with_name("raygate"))


class Running:
    def __init__(self, proc: subprocess.Popen[str], base_url: str, ray_address: str, lines: list[str]) -> None:
        self.proc, self.base_url, self.ray_address, self.lines = proc, base_url, ray_address, lines


@pytest.fixture(scope="module")
def raygate() -> Iterator[Running]:
    port = free_port(18500)
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env["RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S"] = "1"
    proc = subprocess.Popen([RAYGATE, "serve", "--config", "configs/dev.yaml", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    base_url = address = ""
    deadline = time.time() + 150
    assert proc.stdout is not None
    while time.time() < deadline and not (base_url and address):
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        lines.append(line)
        if m := re.search(r"serving on (\S+/v1)", line):
            base_url = m.group(1)
        if m := re.search(r"RAY_ADDRESS=(\S+)", line):
            address = m.group(1)
    try:
        assert base_url and address, "raygate serve did not come up:\n" + "".join(lines)
        yield Running(proc, base_url, address, lines)
    finally:
        if proc.poll() is None:  # Ctrl-C first: a killed raygate would orphan its Ray cluster
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_openai_sdk_against_raygate_serve(raygate: Running) -> None:
    client = openai.OpenAI(base_url=raygate.base_url, api_key="none", _strict_response_validation=True)
    reply = client.chat.completions.create(model="mock", messages=[{"role": "user", "content": "e2e"}])
    assert reply.choices[0].message.content == "Mock reply to: e2e"
    # configs/dev.yaml maps gpt-4o-mini to the sandbox provider
    resp = client.chat.completions.with_raw_response.create(model="gpt-4o-mini",
                                                           messages=[{"role": "user", "content": "x"}])
    assert resp.headers["x-raygate-provider"] == "sandbox"
    text = "".join(c.choices[0].delta.content or "" for c in
                   client.chat.completions.create(model="mock", messages=[{"role": "user", "content": "s"}],
                                                  stream=True))
    assert text == "Mock reply to: s"


def test_quickstart_notebook_runs(raygate: Running) -> None:
    nb = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "store the notebook without outputs"
    env_before = dict(os.environ)
    # The variables `raygate serve` printed for other drivers, as a user would export them.
    printed = next(line for line in raygate.lines if "RAY_ADDRESS=" in line).split("(")[0].split()
    os.environ.update(dict(item.split("=", 1) for item in printed), RAYGATE_BASE_URL=raygate.base_url,
                      PYTHONPATH=str(ROOT))
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "Mock reply to: What is raygate?" in outputs
    assert "Mock reply to: Hello from a Ray job" in outputs


def test_ctrl_c_shuts_down_cleanly(raygate: Running) -> None:
    raygate.proc.send_signal(signal.SIGINT)
    try:
        rest, _ = raygate.proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        raygate.proc.kill()
        pytest.fail("raygate serve did not stop within 90 s of Ctrl-C")
    assert raygate.proc.returncode == 0, "".join(raygate.lines) + rest
    assert "stopping" in rest
    gcs_port = raygate.ray_address.rsplit(":", 1)[1]
    left = subprocess.run(["pgrep", "-f", f"--port={gcs_port}"], capture_output=True, text=True).stdout.strip()
    assert not left, f"processes of the stopped cluster are still running: {left}"

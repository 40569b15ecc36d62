"""Fixtures of the newcomer suite: the official `openai` Node SDK as a subprocess, and a recording
OpenAI-compatible upstream (`upstream`, per module: it sees whether a request went upstream).

`node_sdk(url, command, args)` runs tests/newcomer/node/sdk.mjs against the gateway at `url` and
returns its JSON output. Without Node, or without the SDK installed (`npm ci` in
tests/newcomer/node, which .ci/run does), the Node tests are skipped with that reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.mockservers.recording_openai import RecordingUpstream

NODE_DIR = Path(__file__).resolve().parent / "node"


@pytest.fixture(scope="session")
def node_sdk() -> Callable[..., dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the openai Node SDK checks need Node 20+")
    if not (NODE_DIR / "node_modules" / "openai").is_dir():
        pytest.skip("the openai Node SDK is not installed: run `npm ci` in tests/newcomer/node")

    def run(url: str, command: str, args: dict[str, Any], key: str = "none") -> dict[str, Any]:
        proc = subprocess.run(
            [node, str(NODE_DIR / "sdk.mjs"), command, json.dumps(args)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "RAYGATE_URL": url, "RAYGATE_KEY": key},
        )
        assert proc.returncode == 0, f"node sdk.mjs {command} failed: {proc.stdout} {proc.stderr}"
        return json.loads(proc.stdout)

    return run


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingUpstream]:
    with RecordingUpstream() as up:
        yield up
